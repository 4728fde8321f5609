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
current start (StartedAt), one created later from its first line.

Watermarks (every WATERMARK_EVERY seconds): the source itself advances to now while
its events stream is attached (the engine is reachable); a sub-source advances to now
while its current container's stream is attached and caught up, or while it has
nothing left to read (its containers stopped and read to the end, or all removed).
A sub-source whose containers are gone therefore keeps advancing while the engine is
reachable (it cannot hide errors: there is nothing to read) and freezes with the rest
when the engine is not. When the engine is lost, the source and every sub-source are
reported down. A container removed before it was read to its end is a gap from the
last line read to its removal.

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
import time
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import docker
import requests
from docker.errors import DockerException, NotFound

from watcher.config import DockerSourceConfig
from watcher.events import Chunk, ContainerStopped, Gap, Note, SourceDown, SourceEvent, Watermark
from watcher.sources.docker_cursor import Boundary, Cursor, since_param
from watcher.sources.docker_follow import LogStream
from watcher.sources.docker_names import list_filters, selected, sub_source
from watcher.sources.docker_stream import STREAMS, Lines

log = logging.getLogger(__name__)

WATERMARK_EVERY = 0.25
CAUGHT_UP_IDLE = 0.1
"""Seconds without data after attaching that mean the backlog has been read."""
STOP_ACTIONS = ("kill", "stop", "die")
_T = TypeVar("_T")
_Lost = (DockerException, OSError, requests.RequestException)


def _ns(rfc3339: str) -> int:
    """Docker's `Created`/`StartedAt` (RFC 3339 with up to 9 fractional digits) -> ns."""
    head, _, frac = rfc3339.rstrip("Z").partition(".")
    secs = int(datetime.fromisoformat(head + "+00:00").timestamp())
    return secs * 1_000_000_000 + int(frac.ljust(9, "0")[:9] or "0")


@dataclass
class _Container:
    id: str
    sub: str
    image: str
    tty: bool
    created_ns: int
    started_ns: int
    running: bool
    fresh: bool
    """Created while the watcher was watching: read from its first line."""
    removed_at: float | None = None


@dataclass
class _Lane:
    """One sub-source: its containers, its cursor, and whether it is caught up."""

    sub: str
    cursor: Cursor | None
    containers: dict[str, _Container] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    attached: bool = False
    behind: bool = True
    idle: bool = False
    last_data: float = 0.0
    last_image: str | None = None

    def caught_up(self, mono: float) -> bool:
        if self.attached:
            if self.behind and mono - self.last_data >= CAUGHT_UP_IDLE:
                self.behind = False
            return not self.behind
        return self.idle


class DockerSource:
    """Containers of one engine, each read into `<name>/<service or container>`."""

    subsources = True
    """`read(after)` gets a JSON object of the sub-sources' cursors (see the daemon)."""

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
        self._pool = ThreadPoolExecutor(max_workers=512, thread_name_prefix=f"docker-{cfg.name}")
        self.client: docker.DockerClient | None = None
        """The connected client while the engine is reachable (snapshots use it)."""
        self.connected_at: float | None = None

    async def read(self, after: str | None) -> AsyncGenerator[SourceEvent, None]:
        lanes: dict[str, _Lane] = {}
        for sub, text in (json.loads(after) if after else {}).items():
            lanes[sub] = _Lane(sub, Cursor.loads(text))
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

    async def _run(self, lanes: dict[str, _Lane], out: asyncio.Queue[SourceEvent | BaseException]) -> None:
        delay = self._retry
        try:
            while True:
                self.connected_at = None
                try:
                    await self._connected(lanes, out)
                    reason = "Docker events stream ended"
                except _Lost as exc:
                    reason = f"{self.cfg.docker_host}: {exc}"
                if self.connected_at is not None:  # it was up: start the backoff over
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
        self, lanes: dict[str, _Lane], out: asyncio.Queue[SourceEvent | BaseException]
    ) -> None:
        """Follow the engine until it is lost (raises, or returns when the events stream ends)."""
        client = await self._call(docker.DockerClient, base_url=self.cfg.docker_host, timeout=30)
        tasks: dict[str, asyncio.Task[None]] = {}  # hard references, cancelled on the way out
        events: Any = None
        try:
            await self._call(client.ping)
            filters: dict[str, Any] = {"type": "container", **list_filters(self.cfg)}
            events = await self._call(client.api.events, decode=True, filters=filters)
            listing = await self._call(client.api.containers, all=True, filters=list_filters(self.cfg))
            for lane in lanes.values():
                lane.containers.clear()
            for row in listing:
                name = row["Names"][0] if row.get("Names") else row["Id"]
                if selected(self.cfg, name, row.get("Labels") or {}):
                    await self._add(client, lanes, row["Id"], fresh=False)
            self.client = client
            self.connected_at = time.monotonic()
            for lane in lanes.values():
                tasks[lane.sub] = asyncio.create_task(self._lane(client, lane, out), name=lane.sub)
            tasks[""] = asyncio.create_task(self._ticker(lanes, out), name=f"{self.name} watermarks")
            stopping: set[str] = set()
            while True:
                ev = await self._call(next, events, None)
                if ev is None:
                    return
                await self._on_event(client, lanes, tasks, stopping, ev, out)
        finally:
            self.client = None
            if events is not None:
                with contextlib.suppress(*_Lost):
                    events.close()
            for task in tasks.values():
                task.cancel()
            for task in tasks.values():
                with contextlib.suppress(asyncio.CancelledError, *_Lost):
                    await task
            client.close()

    async def _add(
        self, client: docker.DockerClient, lanes: dict[str, _Lane], cid: str, *, fresh: bool
    ) -> tuple[_Lane, str | None]:
        """Inspect and file a container under its sub-source; also returns the image it had before."""
        attrs = await self._call(client.api.inspect_container, cid)
        cfg, state = attrs.get("Config") or {}, attrs.get("State") or {}
        sub = sub_source(self.name, attrs.get("Name", cid), cfg.get("Labels") or {})
        c = _Container(
            id=attrs["Id"],
            sub=sub,
            image=str(cfg.get("Image", "")),
            tty=bool(cfg.get("Tty")),
            created_ns=_ns(attrs["Created"]),
            started_ns=_ns(state.get("StartedAt") or attrs["Created"]),
            running=bool(state.get("Running")),
            fresh=fresh,
        )
        lane = lanes.setdefault(sub, _Lane(sub, None))
        lane.containers[c.id] = c
        previous, lane.last_image = lane.last_image, c.image
        lane.wake.set()
        return lane, previous

    async def _on_event(
        self,
        client: docker.DockerClient,
        lanes: dict[str, _Lane],
        tasks: dict[str, asyncio.Task[None]],
        stopping: set[str],
        ev: dict[str, Any],
        out: asyncio.Queue[SourceEvent | BaseException],
    ) -> None:
        action = str(ev.get("Action") or ev.get("status") or "")
        actor = ev.get("Actor") or {}
        cid, attrs = str(actor.get("ID") or ev.get("id") or ""), actor.get("Attributes") or {}
        at = int(ev.get("timeNano") or 0) / 1e9 or self._clock()
        if action == "create":
            if not selected(self.cfg, attrs.get("name", ""), attrs):
                return
            try:
                lane, old = await self._add(client, lanes, cid, fresh=True)
            except NotFound:
                return  # created and removed already: it never started, so it wrote nothing
            if old is not None:
                new = lane.containers[cid].image
                text = f"{lane.sub} recreated: image {old} → {new}"
                await out.put(Note(lane.sub, at, "recreated", text, {"old_image": old, "new_image": new}))
            if lane.sub not in tasks:
                tasks[lane.sub] = asyncio.create_task(self._lane(client, lane, out), name=lane.sub)
            return
        owner = next((ln for ln in lanes.values() if cid in ln.containers), None)
        if owner is None:
            return
        c = owner.containers[cid]
        if action == "start":
            c.running = True
            stopping.discard(cid)
        elif action in STOP_ACTIONS:
            c.running = c.running and action == "kill"  # a kill may be a signal the container survives
            if cid not in stopping:
                stopping.add(cid)
                await out.put(ContainerStopped(owner.sub, cid, action, at))
        elif action == "destroy":
            c.removed_at = at
        owner.wake.set()

    async def _ticker(self, lanes: dict[str, _Lane], out: asyncio.Queue[SourceEvent | BaseException]) -> None:
        while True:
            now, mono = self._clock(), time.monotonic()
            await out.put(Watermark(self.name, now))
            for lane in list(lanes.values()):
                if lane.caught_up(mono):
                    await out.put(Watermark(lane.sub, now))
            await asyncio.sleep(WATERMARK_EVERY)

    # ---- one sub-source ----------------------------------------------------------

    async def _lane(self, client: docker.DockerClient, lane: _Lane, out: asyncio.Queue[Any]) -> None:
        while True:
            lane.wake.clear()
            target = await self._next(lane, out)
            if target is None:
                lane.idle = True
                await lane.wake.wait()
                lane.idle = False
                continue
            c, cursor = target
            complete = False
            with contextlib.suppress(NotFound):  # removed before attaching: settled below
                complete = await self._follow(client, lane, c, cursor, out)
            try:
                attrs = await self._call(client.api.inspect_container, c.id)
                c.running = bool((attrs.get("State") or {}).get("Running"))
            except NotFound:
                c.removed_at = c.removed_at or self._clock()
            if c.removed_at is not None or not c.running:
                cur = lane.cursor or Cursor(c.id, 0)
                if c.removed_at is not None and not complete and not cur.done:
                    await self._gap(lane, cur, c.removed_at, out)
                lane.cursor = Cursor(c.id, cur.ns, cur.hashes, done=True)
                await out.put(Chunk(lane.sub, b"", lane.cursor.dumps()))
                if c.removed_at is not None:
                    del lane.containers[c.id]

    async def _next(self, lane: _Lane, out: asyncio.Queue[Any]) -> tuple[_Container, Cursor] | None:
        """The container to read now and from where, or None when there is nothing to read."""
        ordered = sorted(lane.containers.values(), key=lambda c: c.created_ns)
        cur = lane.cursor
        if cur is not None and cur.container in lane.containers:
            c = lane.containers[cur.container]
            if not (cur.done and not c.running):
                return c, cur
            newer = [x for x in ordered if x.created_ns > c.created_ns]
            if c.removed_at is not None:
                del lane.containers[c.id]
            if not newer:
                return None
            lane.cursor = Cursor(newer[0].id, 0)
            return newer[0], lane.cursor
        if cur is not None:
            # The cursor's container is gone (removed while the watcher was not reading it).
            if not cur.done:
                await self._gap(lane, cur, self._clock(), out)
                lane.cursor = cur = Cursor(cur.container, cur.ns, cur.hashes, done=True)
            newer = [x for x in ordered if x.created_ns > cur.ns]
            if not newer:
                return None
            lane.cursor = Cursor(newer[0].id, 0)
            return newer[0], lane.cursor
        fresh = [x for x in ordered if x.fresh]
        if fresh:
            lane.cursor = Cursor(fresh[0].id, 0)
            return fresh[0], lane.cursor
        running = [x for x in ordered if x.running]
        if not running:
            return None  # stopped before the watcher first saw them: nothing new will come
        c = running[-1]
        lane.cursor = Cursor(c.id, c.started_ns - 1)
        return c, lane.cursor

    async def _gap(self, lane: _Lane, cur: Cursor, end: float, out: asyncio.Queue[Any]) -> None:
        start = cur.ns / 1e9
        log.warning("%s: container %s removed before it was read to its end", lane.sub, cur.container[:12])
        await out.put(Gap(lane.sub, start, max(start, end), "container removed before its logs were read"))

    async def _follow(
        self, client: docker.DockerClient, lane: _Lane, c: _Container, cursor: Cursor, out: asyncio.Queue[Any]
    ) -> bool:
        """Read `c` from `cursor` until its stream ends; True when Docker ended it (read to the end)."""
        stream = LogStream(
            client.api, c.id, since=since_param(cursor.ns) if cursor.ns else None, tty=c.tty,
            max_line_bytes=self._max,
        )  # fmt: skip
        boundary = Boundary(cursor if cursor.hashes else None)
        try:
            await self._call(stream.open)
            lane.attached, lane.behind, lane.last_data = True, True, time.monotonic()
            while data := await self._call(stream.read):
                lane.last_data = time.monotonic()
                await self._deliver(lane, boundary, stream.decoder.feed(data), out)
                if stream.decoder.done:
                    break
            await self._deliver(lane, boundary, stream.decoder.flush(), out)
            return stream.decoder.done
        finally:
            lane.attached = False
            stream.close()

    async def _deliver(
        self, lane: _Lane, boundary: Boundary, runs: list[Lines], out: asyncio.Queue[Any]
    ) -> None:
        assert lane.cursor is not None
        for run in boundary.filter(runs):
            lane.cursor = lane.cursor.after(run)
            await out.put(Chunk(lane.sub, run.data, lane.cursor.dumps(), STREAMS[run.stream]))
