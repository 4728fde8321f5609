"""`watcher status --watch`: the status redrawn every 2 s, through daemon restarts, until Ctrl-C.

A daemon that stops answering (restarted by systemd, upgraded, or killed) is shown
as "daemon unreachable since T, retrying" above the last status it gave, and the
view carries on when it answers again: an SRE watching a streak during an incident
must never find the watch gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Group, RenderableType
from rich.live import Live
from rich.text import Text

from watcher.cli.base import out
from watcher.cli.client import Client
from watcher.cli.status_view import status_view
from watcher.errors import DaemonError
from watcher.schema import StatusDoc
from watcher.times import format_time

EVERY = 2.0


def watch_status(
    client: Client,
    *,
    every: float = EVERY,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> None:
    """Redraw until interrupted (KeyboardInterrupt propagates: the command exits 130)."""
    last: StatusDoc | None = None
    down_since: float | None = None
    with Live(console=out, auto_refresh=False, redirect_stderr=False) as live:
        while True:
            try:
                last = client.status()
                down_since = None
                live.update(status_view(last), refresh=True)
            except DaemonError as exc:
                down_since = down_since or clock()
                live.update(_unreachable(last, down_since, str(exc)), refresh=True)
            sleep(every)


def _unreachable(last: StatusDoc | None, since: float, reason: str) -> RenderableType:
    head = Text(f"daemon unreachable since {format_time(since)}, retrying every {EVERY:g}s", style="bold red")
    parts: list[RenderableType] = [head, Text(f"  {reason}", style="red")]
    if last is not None:
        parts += [Text("last status it gave:", style="dim"), status_view(last)]
    return Group(*parts)
