"""A docker source: the stdout and stderr of every selected container on one Docker engine.

Each container reads into a sub-source (`cloud/api`, see docker_names). The events
stream is subscribed before the containers are listed, so a container started in
between is not missed. A sub-source reads its containers one after another in
creation order: an old container to its last line, then its successor from its
first, so a recreate or rollback loses nothing and keeps the name.

Resuming: each sub-source's cursor (docker_cursor) names its container and the
nanosecond stamp of the last line delivered; reading restarts with that exact
`since` and drops the lines already delivered at that nanosecond. A `docker restart`,
a reconnect, a dockerd restart and a watcher restart therefore all deliver each line
once. Without a cursor, a container running when the watcher starts is read from its
current run (from the end of its previous run), one created later from its first line.

Watermarks (every WATERMARK_EVERY seconds): the source itself advances to now while
its events stream is attached (the engine is reachable); a sub-source advances to now
while its current container's stream is attached and caught up, or while it has
nothing left to read (its containers stopped and read to the end, or all removed).
A sub-source whose containers are gone therefore keeps advancing while the engine is
reachable (it cannot hide errors: there is nothing to read) and freezes with the rest
when the engine is not. When the engine is lost, the source and every sub-source are
reported down. A container removed before it was read to its end is a gap from the
last line read to its removal. The events stream may lag behind the engine (a busy
watcher or host): a container can be created, run and removed before its `create` is
handled. It cannot be read any more, so if it started it is a gap from its creation
to when that was found out; if it never started it wrote nothing.

Blocking SDK calls run in this source's own thread pool: every attached container
keeps one read pending, which would exhaust asyncio.to_thread's default pool
(min(32, cores + 4) threads) with a handful of containers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import socket
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import docker
import requests
from docker.errors import DockerException, NotFound

from watcher.config import DockerSourceConfig
from watcher.details import RecreatedDetail
from watcher.events import Chunk, Gap, Kind, Note, SourceDown, SourceEvent, Stopped, Watermark
from watcher.names import parent
from watcher.sources import Counters, ScanOptions
from watcher.sources.docker.cursor import Boundary, Cursor, since_param
from watcher.sources.docker.follow import LogStream
from watcher.sources.docker.host import describe, open_client
from watcher.sources.docker.lane import GAP_REASON, Container, Lane, time_ns
from watcher.sources.docker.names import list_filters, selected, sub_source
from watcher.sources.docker.snapshot import container_job
from watcher.sources.docker.stream import STREAMS, Lines

log = logging.getLogger(__name__)

WATERMARK_EVERY = 0.25
DEAD_STREAM_GRACE = 2.0
"""Seconds a follow stream may stay open after its container died before it is cut."""
MAX_STREAMS = 512
"""Containers followed at once (each holds a connection and a worker thread)."""
STOP_ACTIONS = ("kill", "stop", "die")
_T = TypeVar("_T")
_Lost = (DockerException, OSError, requests.RequestException)


class DockerSource:
    """Containers of one engine, each read into `<name>/<service or container>`.

    `read(after)` takes a JSON object of the sub-sources' cursors (`after()` builds it).
    """

    def __init__(
        self,
        cfg: DockerSourceConfig,
        *,
        max_line_bytes: int,
        clock: Callable[[], float] = time.time,
        retry: float = 1.0,
        max_retry: float = 30.0,
    ) -> None:
        self.name = cfg.name
        self.cfg = cfg
        self._max = max_line_bytes
        self._clock = clock
        self._retry, self._max_retry = retry, max_retry
        self.scan = ScanOptions("docker", rules=None if cfg.rules is None else tuple(cfg.rules))
        self._pool = ThreadPoolExecutor(max_workers=MAX_STREAMS, thread_name_prefix=f"docker-{cfg.name}")
        self._connected_at: float | None = None

    def owns(self, name: str) -> bool:
        return parent(name) == self.name and name != self.name

    def after(self, cursors: Mapping[str, str]) -> str | None:
        owned = {name: cursor for name, cursor in cursors.items() if self.owns(name)}
        return json.dumps(owned) if owned else None

    def counters(self) -> Counters:
        return Counters()

    async def read(self, after: str | None) -> AsyncGenerator[SourceEvent, None]:
        lanes: dict[str, Lane] = {}
        for sub, text in (json.loads(after) if after else {}).items():
            lanes[sub] = Lane(sub, Cursor.loads(text))
        out: asyncio.Queue[SourceEvent | BaseException] = asyncio.Queue(256)
        runner = asyncio.create_task(self._run(lanes, out), name=f"docker {self.name}")
        try:
            while True:
                item = await out.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def _call(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    async def _api(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """An SDK request. On a unix socket the engine is probed first: the SDK leaks the
        socket of a refused connect (a ResourceWarning per retry while dockerd is down)."""
        path = self.cfg.docker_host.removeprefix("unix://")
        if path != self.cfg.docker_host:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.setblocking(False)
                probe.connect(path)  # refused or missing: OSError, handled as "engine lost"
        return await self._call(fn, *args, **kwargs)

    async def _run(self, lanes: dict[str, Lane], out: asyncio.Queue[SourceEvent | BaseException]) -> None:
        delay = self._retry
        try:
            while True:
                self._connected_at = None
                try:
                    await self._connected(lanes, out)
                    reason = "Docker events stream ended"
                except _Lost as exc:
                    reason = f"{self.cfg.docker_host}: {describe(exc)}"
                if self._connected_at is not None:  # it was up: start the backoff over
                    delay = self._retry
                log.warning("%s: engine unreachable: %s", self.name, reason)
                for name in (self.name, *lanes):
                    await out.put(SourceDown(name, reason))
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self._max_retry)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: end the source loudly instead of hanging the daemon
            await out.put(exc)

    async def _connected(
        self, lanes: dict[str, Lane], out: asyncio.Queue[SourceEvent | BaseException]
    ) -> None:
        """Follow the engine until it is lost (raises, or returns when the events stream ends)."""
        client = await self._call(open_client, self.cfg.docker_host, timeout=30, max_pool_size=MAX_STREAMS)
        tasks: dict[str, asyncio.Task[None]] = {}  # hard references, cancelled on the way out
        events: Any = None
        try:
            await self._api(client.ping)
            filters: dict[str, Any] = {"type": "container", **list_filters(self.cfg)}
            events = await self._api(client.api.events, decode=True, filters=filters)
            listing = await self._api(client.api.containers, all=True, filters=list_filters(self.cfg))
            for lane in lanes.values():
                lane.containers.clear()
            for row in listing:
                name = row["Names"][0] if row.get("Names") else row["Id"]
                if selected(self.cfg, name, row.get("Labels") or {}):
                    await self._add(client, lanes, row["Id"], fresh=False)
            self._connected_at = time.monotonic()
            for lane in lanes.values():
                self._reading(client, lane, tasks, out)
            tasks[""] = asyncio.create_task(self._ticker(lanes, out), name=f"{self.name} watermarks")
            stopping: set[str] = set()
            ghosts: dict[str, tuple[str, float]] = {}
            while True:
                ev = await self._call(next, events, None)
                if ev is None:
                    return
                await self._on_event(client, lanes, tasks, stopping, ghosts, ev, out)
        finally:
            if events is not None:
                with contextlib.suppress(*_Lost):
                    events.close()
            for task in tasks.values():
                task.cancel()
            if tasks:
                # As in _follow: `await` + suppress(CancelledError) would also swallow this task's
                # own cancellation arriving now, and _run would go on reconnecting after shutdown.
                await asyncio.wait(tasks.values())
                for task in tasks.values():
                    lost = None if task.cancelled() else task.exception()
                    if lost is not None and not isinstance(lost, _Lost):
                        raise lost
            client.close()

    async def _add(
        self, client: docker.DockerClient, lanes: dict[str, Lane], cid: str, *, fresh: bool
    ) -> tuple[Lane, str | None]:
        """Inspect and file a container under its sub-source; also returns the image it had before."""
        attrs = await self._api(client.api.inspect_container, cid)
        cfg, state = attrs.get("Config") or {}, attrs.get("State") or {}
        sub = sub_source(self.name, attrs.get("Name", cid), cfg.get("Labels") or {})
        c = Container(
            id=attrs["Id"],
            sub=sub,
            image=str(cfg.get("Image", "")),
            tty=bool(cfg.get("Tty")),
            created_ns=time_ns(attrs["Created"]),
            run_ns=time_ns(state.get("FinishedAt") or "") if state.get("Running") else 0,
            running=bool(state.get("Running")),
            fresh=fresh,
        )
        lane = lanes.setdefault(sub, Lane(sub, None))
        lane.containers[c.id] = c
        previous, lane.last_image = lane.last_image, c.image
        lane.wake.set()
        return lane, previous

    async def _on_event(
        self,
        client: docker.DockerClient,
        lanes: dict[str, Lane],
        tasks: dict[str, asyncio.Task[None]],
        stopping: set[str],
        ghosts: dict[str, tuple[str, float]],
        ev: dict[str, Any],
        out: asyncio.Queue[SourceEvent | BaseException],
    ) -> None:
        """`ghosts`: selected containers removed before their `create` was handled (sub-source,
        created at), until their `start` (a gap) or `destroy` (never started: nothing lost)."""
        action = str(ev.get("Action") or ev.get("status") or "")
        actor = ev.get("Actor") or {}
        cid, attrs = str(actor.get("ID") or ev.get("id") or ""), actor.get("Attributes") or {}
        at = int(ev.get("timeNano") or 0) / 1e9 or self._clock()
        if action == "create":
            await self._created(client, lanes, tasks, ghosts, cid, attrs, at, out)
            return
        if cid in ghosts and action in ("start", "destroy"):
            sub, created = ghosts.pop(cid)
            if action == "start":
                # A lane with nothing to read: it advances its sub-source, or the gap would
                # leave that sub-source without a watermark, unresolvable.
                self._reading(client, lanes.setdefault(sub, Lane(sub, None)), tasks, out)
                await self._gap(Gap(sub, created, max(created, self._clock()), GAP_REASON), out)
            return
        owner = next((ln for ln in lanes.values() if cid in ln.containers), None)
        if owner is None:
            return
        c = owner.containers[cid]
        if action == "start":
            c.running = True
            c.starts += 1
            c.died.clear()
            stopping.discard(cid)
        elif action in STOP_ACTIONS:
            c.running = c.running and action == "kill"  # a kill may be a signal the container survives
            if not c.running:
                c.died.set()
            if cid not in stopping:
                stopping.add(cid)
                job = container_job(client, owner.sub, cid, None, None)
                await out.put(Stopped(owner.sub, cid, action, at, job))
        elif action == "destroy":
            c.removed_at = at
        owner.wake.set()

    async def _created(
        self,
        client: docker.DockerClient,
        lanes: dict[str, Lane],
        tasks: dict[str, asyncio.Task[None]],
        ghosts: dict[str, tuple[str, float]],
        cid: str,
        attrs: Mapping[str, str],
        at: float,
        out: asyncio.Queue[SourceEvent | BaseException],
    ) -> None:
        """A selected container was created: file it, note a recreate, start its lane."""
        if not selected(self.cfg, attrs.get("name", ""), attrs):
            return
        if any(cid in ln.containers for ln in lanes.values()):
            return  # created while the listing ran, and filed by it: not a recreate
        try:
            lane, old = await self._add(client, lanes, cid, fresh=True)
        except NotFound:  # removed already: whether it ran (and wrote) is in the events to come
            ghosts[cid] = (sub_source(self.name, attrs.get("name", cid), attrs), at)
            return
        if old is not None:
            new = lane.containers[cid].image
            text = f"{lane.sub} recreated: image {old} → {new}"
            await out.put(Note(lane.sub, at, Kind.RECREATED, text, RecreatedDetail(lane.sub, text, old, new)))
        self._reading(client, lane, tasks, out)

    def _reading(
        self,
        client: docker.DockerClient,
        lane: Lane,
        tasks: dict[str, asyncio.Task[None]],
        out: asyncio.Queue[SourceEvent | BaseException],
    ) -> None:
        """Start the lane's task unless it runs already."""
        if lane.sub not in tasks:
            tasks[lane.sub] = asyncio.create_task(self._lane(client, lane, out), name=lane.sub)

    async def _ticker(self, lanes: dict[str, Lane], out: asyncio.Queue[SourceEvent | BaseException]) -> None:
        while True:
            now, mono = self._clock(), time.monotonic()
            await out.put(Watermark(self.name, now))
            for lane in list(lanes.values()):
                if lane.caught_up(mono):
                    await out.put(Watermark(lane.sub, now))
            await asyncio.sleep(WATERMARK_EVERY)

    # ---- one sub-source ----------------------------------------------------------

    async def _lane(self, client: docker.DockerClient, lane: Lane, out: asyncio.Queue[Any]) -> None:
        while True:
            lane.wake.clear()
            target, gap = lane.choose(self._clock())
            if gap is not None:
                await self._gap(gap, out)
            if target is None:
                lane.idle = True
                await lane.wake.wait()
                lane.idle = False
                continue
            c, cursor = target
            complete = ended = False
            starts = c.starts
            try:
                # The engine's word before and after the read, not the events' (they may lag):
                # following or not, and whether a run began meanwhile.
                running, run = await self._state(client, c)
                with contextlib.suppress(NotFound):  # removed before attaching: settled below
                    complete = await self._follow(client, lane, c, cursor, out, follow=running)
                running, run_after = await self._state(client, c)
                ended = not running and run_after == run
                if c.starts == starts:  # else this answer may predate that start: the event's word stands
                    c.running = running
                c.read_starts = starts
            except NotFound:
                c.removed_at = c.removed_at or self._clock()
            except _Lost as exc:
                # The engine may be going away (then this task is cancelled), or one request failed.
                log.warning("%s: reading %s: %s; retrying", lane.sub, c.id[:12], exc)
                await asyncio.sleep(self._retry)
                continue
            # Finished only when removed, or stopped and read to the end; a stream cut short,
            # or one a run began during, is read again from the cursor.
            if c.removed_at is not None or (complete and ended):
                gap = lane.finished(c, complete=complete)
                if gap is not None:
                    await self._gap(gap, out)
                assert lane.cursor is not None
                await out.put(Chunk(lane.sub, b"", lane.cursor.dumps()))

    async def _state(self, client: docker.DockerClient, c: Container) -> tuple[bool, str]:
        """Whether `c` runs, and when its latest run started (a run's identity)."""
        state = (await self._api(client.api.inspect_container, c.id)).get("State") or {}
        return bool(state.get("Running")), str(state.get("StartedAt", ""))

    async def _gap(self, gap: Gap, out: asyncio.Queue[Any]) -> None:
        log.warning("%s: a container was removed before it was read to its end", gap.source)
        await out.put(gap)

    async def _follow(
        self,
        client: docker.DockerClient,
        lane: Lane,
        c: Container,
        cursor: Cursor,
        out: asyncio.Queue[Any],
        *,
        follow: bool,
    ) -> bool:
        """Read `c` from `cursor` until its stream ends; True when Docker ended it (read to the end)."""
        # A stopped container is read without following (Docker serves that faster); if
        # it starts meanwhile, the lane finds a new run afterwards and reads on from the cursor.
        since = since_param(cursor.ns) if cursor.ns else None
        stream = LogStream(client.api, c.id, since=since, tty=c.tty, follow=follow, max_line_bytes=self._max)
        boundary = Boundary(cursor if cursor.hashes else None)
        watchdog = asyncio.create_task(self._cut_when_dead(c, stream)) if follow else None
        try:
            await self._api(stream.open)
            lane.attached, lane.behind, lane.last_data = True, True, time.monotonic()
            while data := await self._call(stream.read):
                lane.last_data = time.monotonic()
                await self._deliver(lane, boundary, stream.decoder.feed(data), out)
                if stream.decoder.done:
                    break
            if not stream.complete:
                return False  # cut short: an unfinished line is read again from the cursor
            await self._deliver(lane, boundary, stream.decoder.flush(), out)
            return True
        finally:
            lane.attached = False
            stream.close()
            if watchdog is not None:
                watchdog.cancel()
                # Not `await` + suppress(CancelledError): that would also swallow this task's own
                # cancellation if it came now, and the lane would outlive its source (hang).
                await asyncio.wait([watchdog])

    async def _cut_when_dead(self, c: Container, stream: LogStream) -> None:
        """A follow stream normally ends when its container stops; one that does not is cut."""
        await c.died.wait()
        await asyncio.sleep(DEAD_STREAM_GRACE)
        log.info("%s: the log stream of stopped %s did not end; reading it again", c.sub, c.id[:12])
        stream.close()

    async def _deliver(
        self, lane: Lane, boundary: Boundary, runs: list[Lines], out: asyncio.Queue[Any]
    ) -> None:
        assert lane.cursor is not None
        for run in boundary.filter(runs):
            lane.cursor = lane.cursor.after(run)
            await out.put(Chunk(lane.sub, run.data, lane.cursor.dumps(), STREAMS[run.stream]))
