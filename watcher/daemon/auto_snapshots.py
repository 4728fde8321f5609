"""The daemon's own evidence snapshots: taken the moment a source reports something stopped.

A `Stopped` event (Docker's kill/stop/die of a watched container) carries the job
that collects its evidence; each runs in a worker thread while the pipeline goes
on. A subject that keeps stopping is snapshotted at most once per `every` seconds,
so a crash loop cannot fill the disk.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from docker.errors import DockerException

from watcher.details import Detail
from watcher.errors import WatcherError
from watcher.events import Kind, Trigger
from watcher.metrics import Metrics
from watcher.names import default_user
from watcher.snapshot.collect import take
from watcher.snapshot.manifest import Meta
from watcher.sources import Stopped

log = logging.getLogger(__name__)

EVERY = 300.0
GRACE = 30.0
"""Seconds shutdown waits for snapshots in progress: they are evidence."""

Note = Callable[[str, float, Kind, Detail], None]


class AutoSnapshots:
    def __init__(
        self,
        state_dir: Path,
        *,
        metrics: Metrics,
        covering: Callable[[str], list[str]],
        note: Note,
        every: float = EVERY,
    ) -> None:
        self._state_dir = state_dir
        self._metrics = metrics
        self._covering = covering
        self._note = note
        self._every = every
        self._tasks: set[asyncio.Task[None]] = set()  # hard references until each is done
        self._last: dict[str, float] = {}  # subject -> monotonic time of its last snapshot

    def stopped(self, event: Stopped) -> None:
        now = time.monotonic()
        last = self._last.get(event.subject)
        if last is not None and now - last < self._every:
            log.info("%s: %s again; snapshotted %.0fs ago", event.source, event.action, now - last)
            return
        self._last[event.subject] = now
        task = asyncio.create_task(self._take(event), name=f"snapshot {event.source}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _take(self, event: Stopped) -> None:
        log.info("%s: %s got %s: snapshot", event.source, event.subject[:12], event.action)
        incidents = self._covering(event.source)
        reason = f"container {event.action}"
        meta = Meta(
            created_at=time.time(),
            by=default_user(),
            trigger=Trigger.CONTAINER_STOP,
            incident=incidents[0] if incidents else None,
            reason=reason,
            scope=[event.source],
            since=None,
            until=None,
        )
        try:
            result = await asyncio.to_thread(take, self._state_dir, [event.job], meta)
        except (WatcherError, DockerException, OSError) as exc:
            log.error("%s: snapshot of %s failed: %s", event.source, event.subject[:12], exc)
            return
        self._metrics.snapshot(Trigger.CONTAINER_STOP)
        detail = result.note(reason=reason, trigger=Trigger.CONTAINER_STOP, by=meta.by, source=event.source)
        self._note(event.source, event.at, Kind.SNAPSHOT, detail)

    async def drain(self, grace: float = GRACE) -> None:
        """Let snapshots in progress finish within `grace` seconds; cancel the rest."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(self._tasks, timeout=grace)
        for task in late:
            log.error("shutdown: %s did not finish within %.0fs; abandoned", task.get_name(), grace)
            task.cancel()
        if late:
            await asyncio.wait(late)
