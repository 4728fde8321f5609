"""The `watcher` app and what every command shares: consoles, options, one-line errors.

Every failure a user can cause is a WatcherError and becomes one line on stderr
and a non-zero exit; anything else is reported as an internal error without a
traceback unless WATCHER_DEBUG is set.

Everything a command shows goes through `out` and `err`, which never let a character
steer the terminal: log lines and titles are written by whoever can write a log, and
`\\e]0;...\\a\\e[2J` would retitle and clear the SRE's terminal. Control characters
(but newline and tab), bidirectional overrides and line separators are shown as
escapes (`\\x1b`), after every view has rendered, so a new view is safe without
thinking about it. JSON output escapes them itself.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.text import Span, Text

from watcher import __version__, config
from watcher.errors import ConfigError, WatcherError

app = typer.Typer(
    name="watcher",
    help="Proves 'zero errors in the watched logs for 15 minutes' in event time.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
_STEERING = [
    *(c for c in range(0x20) if c not in (0x09, 0x0A)),
    *range(0x7F, 0xA0),  # DEL and the C1 controls (0x9b is a one-byte CSI on some terminals)
    0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A),  # bidirectional controls
    0x2028, 0x2029,  # line and paragraph separators
]  # fmt: skip
_ESCAPED = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _STEERING}


def printable(text: str) -> str:
    """`text` with every character that could steer a terminal written as an escape (`\\x1b`)."""
    return text.translate(_ESCAPED)


def _printable_text(text: Text) -> Text:
    """`text` through `printable`, its styles kept on the same characters."""
    plain = text.plain
    safe = printable(plain)
    if safe == plain:
        return text
    at = [0]
    for c in plain:
        at.append(at[-1] + len(_ESCAPED.get(ord(c), c)))
    return Text(
        safe,
        text.style,
        justify=text.justify,
        overflow=text.overflow,
        no_wrap=text.no_wrap,
        end=text.end,
        tab_size=text.tab_size,
        spans=[Span(at[s.start], at[s.end], s.style) for s in text.spans],
    )


class SafeConsole(Console):
    """A rich Console that shows every character it is given instead of letting it act.

    Text is made printable before it is laid out (so it wraps with its escapes), and
    every segment once more on the way out, whatever renderable produced it.
    """

    def render_str(self, text: str, **kwargs: Any) -> Text:
        """Every str becomes Text here (printed, or a table cell measured): made printable first."""
        return super().render_str(printable(text), **kwargs)

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterable[Segment]:
        if isinstance(renderable, Text):
            renderable = _printable_text(renderable)
        for segment in super().render(renderable, options):
            # Control segments are rich's own cursor moves (status --watch); styles are added later.
            yield segment if segment.control else segment._replace(text=printable(segment.text))


out = SafeConsole(highlight=False, soft_wrap=True, emoji=False)
err = SafeConsole(stderr=True, highlight=False, soft_wrap=True, emoji=False)

P = ParamSpec("P")
R = TypeVar("R")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config (default: $WATCHER_CONFIG, ./config/watcher.toml)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
RedactOpt = Annotated[
    bool,
    typer.Option(
        "--redact/--no-redact",
        help="Hide credentials in log text (default); --no-redact needs the API token, like a change.",
    ),
]


def fail(kind: str, message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]{kind}[/red]: {message}", markup=True, highlight=False)
    return typer.Exit(code)


def command(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn every failure into one clear line per problem and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            for problem in exc.problems:
                err.print(f"[red]ConfigError[/red]: {escape(problem)}")
            raise typer.Exit(1) from None
        except WatcherError as exc:
            raise fail(type(exc).__name__, escape(str(exc))) from None
        except BrokenPipeError:
            # `watcher classify --show | head`: the reader left; not an error worth a message.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if os.environ.get("WATCHER_DEBUG"):
                raise
            raise fail(
                "internal error",
                f"{type(exc).__name__}: {escape(str(exc))} (WATCHER_DEBUG=1 shows it)",
                70,
            ) from None

    return wrapper


def escape(text: str) -> str:
    return text.replace("[", "\\[")


def config_path(given: Path | None) -> Path | None:
    if given is not None:
        return given
    env = os.environ.get("WATCHER_CONFIG")
    if env:
        return Path(env)
    for candidate in (config.DEFAULT_CONFIG, Path("/etc/novavms-watcher/watcher.toml")):
        if candidate.exists():
            return candidate
    return None


def load_settings(given: Path | None) -> config.Settings:
    return config.load(config_path(given))


@app.callback(invoke_without_command=True)
def _main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        out.print(f"novavms-watcher {__version__}")
        raise typer.Exit(0)
