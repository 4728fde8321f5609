"""A docker source: the stdout and stderr of every selected container on one Docker engine.

Each container reads into a sub-source (`cloud/api`, see names.py). The events
stream is subscribed before the containers are listed, so a container started in
between is not missed. A sub-source reads its containers one after another in
creation order: an old container to its last line, then its successor from its
first, so a recreate or rollback loses nothing and keeps the name.

Resuming: each sub-source's cursor (cursor.py) names its container and the
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

Liveness (DESIGN §2.1): a sub-source runs while one of its containers runs (not
paused); it reports each change as `Liveness`, dated by Docker's events (start, die,
stop, pause, unpause), by the engine's own word when its log stream ends (so the stop
is in the stream before the watermark that passes it), and after each listing. The
source itself runs while at least one container matches the selection. Sub-sources
named in `one_shot` (migrations) report nothing and may stay silent.

The engine is reached through transport.py: an ssh:// host through one SSH connection
per attempt, whose loss is reported with the SSH reason and whose last proof of life
caps the watermarks. Blocking SDK calls run in this source's own thread pool
(calls.py); each sub-source is read by a LaneReader (reader.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import docker
from docker.errors import NotFound

from watcher.config import DockerSourceConfig
from watcher.details import Note, RecreatedDetail
from watcher.errors import SourceError
from watcher.events import Expectation, Gap, Kind, Liveness, SourceDown, Watermark
from watcher.names import parent
from watcher.sources import Counters, SourceEvent, Stopped, expectation, scan_options
from watcher.sources.docker.calls import LOST, MAX_STREAMS, EngineCalls
from watcher.sources.docker.cursor import Cursor
from watcher.sources.docker.host import describe, open_client
from watcher.sources.docker.lane import GAP_REASON, Container, Lane, time_ns
from watcher.sources.docker.names import list_filters, one_shot, selected, sub_source
from watcher.sources.docker.reader import LaneReader, report_gap
from watcher.sources.docker.snapshot import container_job
from watcher.sources.docker.transport import Link, Transport

log = logging.getLogger(__name__)

WATERMARK_EVERY = 0.25
STOP_ACTIONS = ("kill", "stop", "die")


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
        self.scan = scan_options(cfg, "docker")
        self._calls = EngineCalls(cfg.name)
        self._transport = Transport(cfg, clock)
        self._connected_at: float | None = None
        self._matches: bool | None = None
        """Whether a container matched the selection, as last reported."""

    def owns(self, name: str) -> bool:
        return parent(name) == self.name and name != self.name

    def after(self, cursors: Mapping[str, str]) -> str | None:
        owned = {name: cursor for name, cursor in cursors.items() if self.owns(name)}
        return json.dumps(owned) if owned else None

    def expectation(self, name: str) -> Expectation:
        if name == self.name:  # the engine connection: it writes nothing, and runs while a container matches
            return Expectation(quiet_ok=True, liveness=True)
        exempt = one_shot(self.cfg, name)
        return expectation(self.cfg, liveness=not exempt, quiet=exempt)

    def counters(self) -> Counters:
        return Counters()

    def describe(self) -> str:
        cfg = self.cfg
        chosen = [f"compose project {cfg.compose_project}"] if cfg.compose_project else []
        chosen += [f"containers {', '.join(cfg.containers)}"] if cfg.containers else []
        chosen += [f"labels {', '.join(f'{k}={v}' for k, v in cfg.labels.items())}"] if cfg.labels else []
        return f"docker {cfg.docker_host}, {' and '.join(chosen)}"

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
            self._calls.close()
            self._transport.close()

    async def _run(self, lanes: dict[str, Lane], out: asyncio.Queue[SourceEvent | BaseException]) -> None:
        delay, logged = self._retry, None
        try:
            while True:
                self._connected_at = None
                reason = await self._attempt(lanes, out)
                if self._connected_at is not None:  # it was up: start the backoff over
                    delay, logged = self._retry, None
                if reason != logged:  # once per outage and reason, not once per retry
                    log.warning("%s: engine unreachable: %s", self.name, reason)
                    logged = reason
                for name in (self.name, *lanes):
                    await out.put(SourceDown(name, reason))
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # never past reconnect_max
                delay = min(delay * 2, self._max_retry)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: end the source loudly instead of hanging the daemon
            await out.put(exc)

    async def _attempt(self, lanes: dict[str, Lane], out: asyncio.Queue[SourceEvent | BaseException]) -> str:
        """Reach the engine and follow it until it is lost; why it was lost."""
        try:
            async with self._transport.link() as link:
                self._calls.use(link)
                try:
                    await self._connected(link, lanes, out)
                    reason = f"{self.cfg.docker_host}: Docker events stream ended"
                except LOST as exc:
                    reason = f"{self.cfg.docker_host}: {describe(exc)}"
                return link.lost() or reason  # a lost SSH link ends the streams: say so, not how
        except SourceError as exc:  # the SSH link could not be opened
            return str(exc)

    async def _connected(
        self, link: Link, lanes: dict[str, Lane], out: asyncio.Queue[SourceEvent | BaseException]
    ) -> None:
        """Follow the engine until it is lost (raises, or returns when the events stream ends)."""
        client = await self._calls.call(open_client, link.url, timeout=30, max_pool_size=MAX_STREAMS)
        tasks: dict[str, asyncio.Task[None]] = {}  # hard references, cancelled on the way out
        events: Any = None
        try:
            await self._calls.api(client.ping)
            filters: dict[str, Any] = {"type": "container", **list_filters(self.cfg)}
            events = await self._calls.api(client.api.events, decode=True, filters=filters)
            listing = await self._calls.api(client.api.containers, all=True, filters=list_filters(self.cfg))
            for lane in lanes.values():
                lane.containers.clear()
            for row in listing:
                name = row["Names"][0] if row.get("Names") else row["Id"]
                if selected(self.cfg, name, row.get("Labels") or {}):
                    await self._add(client, lanes, row["Id"], fresh=False)
            self._matches = None
            await self._report_matches(lanes, out)
            for lane in lanes.values():
                await self._report(lane.listed(self._clock()), out)
            self._connected_at = time.monotonic()
            for lane in lanes.values():
                self._reading(client, lane, tasks, out)
            tasks[""] = asyncio.create_task(self._ticker(link, lanes, out), name=f"{self.name} watermarks")
            stopping: set[str] = set()
            ghosts: dict[str, tuple[str, float]] = {}
            while True:
                ev = await self._calls.call(next, events, None)
                if ev is None:
                    return
                await self._on_event(client, lanes, tasks, stopping, ghosts, ev, out)
        finally:
            if events is not None:
                with contextlib.suppress(*LOST):
                    events.close()
            for task in tasks.values():
                task.cancel()
            if tasks:
                # As in _follow: `await` + suppress(CancelledError) would also swallow this task's
                # own cancellation arriving now, and _run would go on reconnecting after shutdown.
                await asyncio.wait(tasks.values())
                for task in tasks.values():
                    lost = None if task.cancelled() else task.exception()
                    if lost is not None and not isinstance(lost, LOST):
                        raise lost
            client.close()

    async def _add(
        self, client: docker.DockerClient, lanes: dict[str, Lane], cid: str, *, fresh: bool
    ) -> tuple[Lane, str | None]:
        """Inspect and file a container under its sub-source; also returns the image it had before."""
        attrs = await self._calls.api(client.api.inspect_container, cid)
        cfg, state = attrs.get("Config") or {}, attrs.get("State") or {}
        sub = sub_source(self.name, attrs.get("Name", cid), cfg.get("Labels") or {})
        c = Container(
            id=attrs["Id"],
            sub=sub,
            image=str(cfg.get("Image", "")),
            tty=bool(cfg.get("Tty")),
            created_ns=time_ns(attrs["Created"]),
            run_ns=time_ns(state.get("FinishedAt") or "") if state.get("Running") else 0,
            running=bool(state.get("Running")) and not state.get("Restarting"),
            fresh=fresh,
            paused=bool(state.get("Paused")),
            started=time_ns(state.get("StartedAt") or "") / 1e9,
            finished=time_ns(state.get("FinishedAt") or "") / 1e9,
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
                await report_gap(out, Gap(sub, created, max(created, self._clock()), GAP_REASON))
            return
        owner = next((ln for ln in lanes.values() if cid in ln.containers), None)
        if owner is None:
            return
        c = owner.containers[cid]
        if action == "start":
            c.running, c.paused, c.started = True, False, at
            c.starts += 1
            c.died.clear()
            stopping.discard(cid)
        elif action in STOP_ACTIONS:
            c.running = c.running and action == "kill"  # a kill may be a signal the container survives
            if not c.running:
                c.died.set()
                c.finished = at
            if cid not in stopping:
                stopping.add(cid)
                job = container_job(client, owner.sub, cid, None, None)
                await out.put(Stopped(owner.sub, cid, action, at, job))
        elif action in ("pause", "unpause"):
            c.paused = action == "pause"
        elif action == "destroy":
            c.removed_at = at
        await self._report(owner.liveness(at), out)
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

    async def _report(self, reports: list[Liveness], out: asyncio.Queue[SourceEvent | BaseException]) -> None:
        for report in reports:
            if not one_shot(self.cfg, report.source):
                await out.put(report)

    async def _report_matches(
        self, lanes: dict[str, Lane], out: asyncio.Queue[SourceEvent | BaseException]
    ) -> None:
        """The source runs while at least one container matches its selection."""
        matches = any(lane.containers for lane in lanes.values())
        if matches != self._matches:
            self._matches = matches
            reason = "" if matches else "no container matches the selection"
            await out.put(Liveness(self.name, self._clock(), matches, reason))

    def _reading(
        self,
        client: docker.DockerClient,
        lane: Lane,
        tasks: dict[str, asyncio.Task[None]],
        out: asyncio.Queue[SourceEvent | BaseException],
    ) -> None:
        """Start the lane's task unless it runs already."""
        if lane.sub not in tasks:
            reader = LaneReader(
                self._calls,
                client,
                out,
                clock=self._clock,
                retry=self._retry,
                max_line_bytes=self._max,
                report=lambda reports: self._report(reports, out),
            )
            tasks[lane.sub] = asyncio.create_task(reader.run(lane), name=lane.sub)

    async def _ticker(
        self, link: Link, lanes: dict[str, Lane], out: asyncio.Queue[SourceEvent | BaseException]
    ) -> None:
        while True:
            # An SSH link vouches only up to its last heartbeat: a dead one is not noticed at once.
            now, mono = min(self._clock(), link.alive_at()), time.monotonic()
            await self._report_matches(lanes, out)
            await out.put(Watermark(self.name, now))
            for lane in list(lanes.values()):
                if lane.caught_up(mono):
                    await out.put(Watermark(lane.sub, now))
            await asyncio.sleep(WATERMARK_EVERY)
