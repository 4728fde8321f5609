"""The daemon's container-stop snapshots: taken the moment Docker reports kill/stop/die.

Each runs `snapshot_containers` in a worker thread while the pipeline goes on; a
container that keeps dying is snapshotted at most once per `every` seconds, so a
crash loop cannot fill the disk.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import docker
from docker.errors import DockerException

from watcher.details import Detail
from watcher.errors import WatcherError
from watcher.events import ContainerStopped, Kind, Trigger
from watcher.metrics import Metrics
from watcher.sources.docker.snapshot import snapshot_containers

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
        client_for: Callable[[str], docker.DockerClient | None],
        covering: Callable[[str], list[str]],
        note: Note,
        every: float = EVERY,
    ) -> None:
        self._state_dir = state_dir
        self._metrics = metrics
        self._client_for = client_for
        self._covering = covering
        self._note = note
        self._every = every
        self._tasks: set[asyncio.Task[None]] = set()  # hard references until each is done
        self._last: dict[str, float] = {}  # container id -> monotonic time of its last snapshot

    def container_stopped(self, event: ContainerStopped) -> None:
        now = time.monotonic()
        last = self._last.get(event.container)
        if last is not None and now - last < self._every:
            log.info("%s: %s again; snapshotted %.0fs ago", event.source, event.action, now - last)
            return
        self._last[event.container] = now
        task = asyncio.create_task(self._take(event), name=f"snapshot {event.source}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _take(self, event: ContainerStopped) -> None:
        log.info("%s: container %s got %s: snapshot", event.source, event.container[:12], event.action)
        client = self._client_for(event.source)
        if client is None:
            log.error("%s: no snapshot of %s: the engine is unreachable", event.source, event.container[:12])
            return
        incidents = self._covering(event.source)
        reason = f"container {event.action}"
        try:
            result = await asyncio.to_thread(
                snapshot_containers,
                client,
                [(event.source, event.container)],
                state_dir=self._state_dir,
                incident=incidents[0] if incidents else None,
                reason=reason,
                since=None,
                until=None,
                trigger=Trigger.CONTAINER_STOP,
            )
        except (WatcherError, DockerException, OSError) as exc:
            log.error("%s: snapshot of %s failed: %s", event.source, event.container[:12], exc)
            return
        self._metrics.snapshot(Trigger.CONTAINER_STOP)
        detail = result.note(reason=reason, trigger=Trigger.CONTAINER_STOP, source=event.source)
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
