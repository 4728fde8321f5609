"""`watcher status --watch`: the status redrawn every 2 s, through daemon restarts, until Ctrl-C.

A daemon that stops answering (restarted by systemd, upgraded, killed) is shown as
"daemon unreachable since T, retrying" above the last status it gave, and the view
carries on when it answers again, wherever it came back (the CLI looks for it anew
each time): an SRE watching a streak during an incident must never find the watch gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar

from rich.console import Group, RenderableType
from rich.live import Live
from rich.text import Text

from watcher.cli.base import out
from watcher.cli.status_view import status_view
from watcher.errors import DaemonError
from watcher.schema import StatusDoc
from watcher.times import format_duration, format_time

EVERY = 2.0


_S = TypeVar("_S", bound=StatusDoc)
_S_co = TypeVar("_S_co", bound=StatusDoc, covariant=True)


class Polled(Protocol[_S_co]):
    """What is watched: a daemon's client, or the fleet (watcher.cli.fleet.Fleet)."""

    def status(self, *, redact: bool = True) -> _S_co: ...


def watch_status(
    connect: Callable[[], Polled[_S]],
    *,
    view: Callable[[_S], RenderableType] = status_view,
    redact: bool = True,
    every: float = EVERY,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> None:
    """Redraw until interrupted (KeyboardInterrupt propagates: the command exits 130)."""
    last: _S | None = None
    down_since: float | None = None
    client = connect()
    with live_view() as live:
        while True:
            try:
                last = client.status(redact=redact)
                down_since = None
                shown: RenderableType = Group(_header(clock(), every), view(last))
            except DaemonError as exc:
                down_since = down_since or clock()
                shown = _unreachable(None if last is None else view(last), down_since, clock(), str(exc))
                client = connect()
            live.update(shown, refresh=True)
            sleep(every)


@contextmanager
def live_view() -> Iterator[Live]:
    """A view redrawn in place that wraps long lines at the terminal's width. Printed output
    soft-wraps (the terminal folds it, and a copied line stays whole), which in a live view
    would cut them instead."""
    soft = out.soft_wrap
    out.soft_wrap = False
    try:
        with Live(console=out, auto_refresh=False, redirect_stderr=False) as live:
            yield live
    finally:
        out.soft_wrap = soft


def _header(now: float, every: float) -> Text:
    return Text(f"watcher status at {format_time(now)}, every {every:g}s (Ctrl-C to stop)", style="dim")


def _unreachable(last: RenderableType | None, since: float, now: float, reason: str) -> RenderableType:
    gone = format_duration(round(now - since))
    head = Text(
        f"daemon unreachable since {format_time(since)} ({gone}), retrying every {EVERY:g}s",
        style="bold red",
    )
    parts: list[RenderableType] = [head, Text(f"  {reason}", style="red")]
    if last is not None:
        parts += [Text("the last status it gave:", style="dim"), last]
    return Group(*parts)
