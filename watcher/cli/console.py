"""`out` and `err`: every character a command shows is shown, none steers the terminal.

Log lines and titles are written by whoever can write a log, and `\\e]0;...\\a\\e[2J`
would retitle and clear the SRE's terminal. Control characters (but newline and tab),
bidirectional overrides and line separators are shown as escapes (`\\x1b`), after every
view has rendered (watcher.cli.safe_console), so a new view is safe without thinking
about it. JSON output escapes them itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from watcher.cli.safe_console import SafeConsole

_STEERING = [
    *(c for c in range(0x20) if c not in (0x09, 0x0A)),
    *range(0x7F, 0xA0),  # DEL and the C1 controls (0x9b is a one-byte CSI on some terminals)
    0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A),  # bidirectional controls
    0x2028, 0x2029,  # line and paragraph separators
]  # fmt: skip
ESCAPED = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _STEERING}


def printable(text: str) -> str:
    """`text` with every character that could steer a terminal written as an escape (`\\x1b`)."""
    return text.translate(ESCAPED)


class _Deferred:
    """A SafeConsole made when first used: importing rich costs 30 ms, which a command that
    never prints through it (`classify --json`, `replay --json`) need not pay. Whoever is
    given it (rich's Live, Progress) reads attributes and enters it as a context manager;
    `status --watch` sets one."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: SafeConsole | None = None

    def _made(self) -> SafeConsole:
        if self._console is None:
            from watcher.cli.safe_console import SafeConsole

            self._console = SafeConsole(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._made(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._made(), name, value)

    def __enter__(self) -> SafeConsole:
        console = self._made()
        console.__enter__()
        return console

    def __exit__(self, *exc: object) -> None:
        self._made().__exit__(*exc)


def deferred_console(**options: Any) -> SafeConsole:
    """A SafeConsole with `options`, made on first use."""
    return cast("SafeConsole", _Deferred(**options))
