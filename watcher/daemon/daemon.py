"""`watcher run`: startup, run, shutdown. The only TaskGroup in the program.

One task per source feeds a bounded queue (backpressure: a burst waits in the
log file, not in memory); one consumer runs rules -> engine -> store, metrics
and the outbox. Everything the engine concluded is committed to the store
together with the resume points of the lines that led to it, so a kill at any
instant restarts from a consistent place and re-reads, exactly once, what the
engine had not yet made durable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import aiohttp
from prometheus_client import CollectorRegistry

from watcher.classify.lines import Format
from watcher.classify.rules import RuleSet
from watcher.classify.stream import StreamScanner
from watcher.config import DockerSourceConfig, FileSourceConfig, JournalSourceConfig, Settings, SourceConfig
from watcher.daemon import sdnotify
from watcher.daemon.api import ApiServer
from watcher.daemon.auto_snapshots import AutoSnapshots
from watcher.daemon.source_state import SourceState
from watcher.daemon.status import incident_json, outbox_json, source_json, timeline_json
from watcher.daemon.token import load_or_create_token
from watcher.details import Detail, SourceDownDetail
from watcher.engine import Engine, IncidentStatus
from watcher.errors import StoreError, WatcherError
from watcher.events import (
    HEARTBEAT,
    Chunk,
    ContainerStopped,
    ErrorEvent,
    Gap,
    Kind,
    Note,
    SourceDown,
    SourceEvent,
    Transition,
    Watermark,
)
from watcher.metrics import Metrics
from watcher.notify.announce import Announcement, Announcer
from watcher.notify.channels import build_senders
from watcher.notify.news import HeartbeatNews
from watcher.notify.sender import Sender
from watcher.snapshot.command import Request, take_configured
from watcher.snapshot.manifest import verify
from watcher.sources import Source, build_sources
from watcher.store import Store

log = logging.getLogger(__name__)

QUEUE_SIZE = 8192
BATCH = 4096
PERSIST_EVERY = 1.0  # seconds between commits of resume points when nothing else happened
TICK = 1.0


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.registry = registry if registry is not None else CollectorRegistry()
        self.should_exit = asyncio.Event()
        self.ready = asyncio.Event()
        self._queue: asyncio.Queue[tuple[str, SourceEvent]] = asyncio.Queue(QUEUE_SIZE)
        self._pending: list[Transition] = []
        self._notes: list[tuple[str, float, Kind, Detail]] = []
        self._outgoing: list[Announcement] = []
        """Announcements decided outside a transition (heartbeats, held resets), committed next."""
        self._last_persist = 0.0
        self.senders: list[Sender] = []
        self._after: dict[str, str | None] = {}
        self._configs: dict[str, SourceConfig] = {}

    # ---- lifecycle ------------------------------------------------------------------

    async def startup(self) -> None:
        s = self.settings
        self.store = Store.open(s.state_dir)
        self.ruleset = RuleSet.compile(s.rules, s.ignore)
        opened = [inc.opened_at for inc in self.store.incidents()]
        built = build_sources(s, clock=self.clock, since=min(opened, default=None))
        names = [src.name for src, _ in built]
        snap = self.store.engine_state()
        try:
            self.engine = (
                Engine.restore(snap, blind_after=s.resolution.blind_after, sources=names)
                if snap
                else Engine(blind_after=s.resolution.blind_after, sources=names)
            )
        except ValueError as exc:
            raise StoreError(f"{self.store.path}: {exc}; use the watcher that wrote it") from None
        self.metrics = Metrics(self.registry, sources=names, rules=self.ruleset.rule_names)
        resume = self.store.resume_points()
        self.sources: dict[str, SourceState] = {}
        self._parents: dict[str, Source] = {}
        for src, cfg in built:
            point = resume.get(src.name)
            self._configs[src.name] = cfg
            self.sources[src.name] = SourceState(
                src, self._scanner(src.name, cfg), cursor=point.cursor if point else None
            )
            self._after[src.name] = self.sources[src.name].cursor
            if getattr(src, "subsources", False):
                self._parents[src.name] = src
                subs = {n: p.cursor for n, p in resume.items() if n.startswith(f"{src.name}/") and p.cursor}
                self._after[src.name] = json.dumps(subs) if subs else None
                for sub in subs:
                    self._register(sub)
        self.auto_snapshots = AutoSnapshots(
            s.state_dir,
            metrics=self.metrics,
            client_for=lambda name: getattr(self._parents.get(name.partition("/")[0]), "client", None),
            covering=self.engine.covering,
            note=self._note,
        )
        for inc in self.store.incidents():
            self.metrics.add_incident(inc.id, inc.window)
        self._refresh_incident_metrics()
        hooks = s.notify.webhooks()
        for channel in ("incident", "oncall"):
            if channel not in hooks:
                log.warning("no %s_webhook configured: nothing is announced to that channel", channel)
        self.announcer = Announcer(
            channels=hooks,
            routes=s.notify.routes,
            reset_every=s.notify.reset_every,
            heartbeat=s.notify.heartbeat,
            last_heartbeat=self._last_heartbeat(),
            clock=self.clock,
        )
        self.api = ApiServer(
            self,
            self.metrics,
            listen=s.http.listen,
            token=load_or_create_token(s.state_dir),
            health=self._health,
        )
        await self.api.start()
        # Only once nothing else in startup can fail: shutdown() is what closes the session.
        self.http = aiohttp.ClientSession()
        self.senders = build_senders(
            s.notify, self.http, store=self.store, metrics=self.metrics, clock=self.clock
        )
        log.info("listening on %s; %d sources", s.http.listen, len(self.sources))

    async def run(self) -> None:
        tasks: list[asyncio.Task[None]] = []  # hard references: tasks are not garbage collected
        try:
            async with asyncio.TaskGroup() as tg:
                for name in self._after:  # one reader per configured source; sub-sources share it
                    tasks.append(tg.create_task(self._read(self.sources[name]), name=f"source {name}"))
                tasks.append(tg.create_task(self._consume(), name="consumer"))
                tasks.append(tg.create_task(self._ticker(), name="ticker"))
                tasks.append(tg.create_task(self._watchdog(), name="watchdog"))
                # Senders run beside the pipeline: log reading never waits for a webhook.
                sending = [tg.create_task(s.run(), name=f"sender {s.channel}") for s in self.senders]
                sdnotify.notify("READY=1")
                self.ready.set()
                await self.should_exit.wait()
                sdnotify.notify("STOPPING=1")
                cancelled = [t.get_name() for t in tasks if not t.done()]
                for t in tasks:
                    t.cancel()
                log.info("stopping: cancelled %s", ", ".join(cancelled))
                await self._flush(sending)
        except* asyncio.CancelledError:
            pass

    async def _flush(self, sending: Sequence[asyncio.Task[None]]) -> None:
        """A short grace for announcements already due; the rest stay in the outbox for next time."""
        if not sending:
            return
        for sender in self.senders:
            sender.finish()
        _done, late = await asyncio.wait(sending, timeout=self.settings.notify.shutdown_grace)
        for t in late:
            t.cancel()
        if late:
            log.info(
                "stopping: %s still had announcements due; they stay queued",
                ", ".join(t.get_name() for t in late),
            )

    async def shutdown(self) -> None:
        """Drain what was already read (the queue is bounded, so this is quick), commit, close."""
        while not self._queue.empty():
            self._handle(*self._queue.get_nowait())
        self._flush_lines()
        self._persist(force=True)
        await self.auto_snapshots.drain()
        await self.api.stop()
        await self.http.close()
        self.store.close()

    async def serve(self) -> None:
        """startup -> run -> shutdown, with SIGTERM/SIGINT turned into a graceful stop."""
        await self.startup()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.should_exit.set)
        try:
            await self.run()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self.shutdown()

    # ---- tasks ----------------------------------------------------------------------

    async def _read(self, st: SourceState) -> None:
        async for event in st.source.read(self._after[st.source.name]):
            await self._queue.put((event.source, event))

    async def _consume(self) -> None:
        while True:
            name, event = await self._queue.get()
            self._handle(name, event)
            for _ in range(BATCH):
                try:
                    name, event = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                self._handle(name, event)
            self._flush_lines()
            self._persist()

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            self._pending += self.engine.tick(self.clock())
            statuses = self._refresh_incident_metrics()
            self._outgoing += self.announcer.tick(statuses)
            self.metrics.outbox_pending(self.store.pending_count())
            self._persist()

    async def _watchdog(self) -> None:
        interval = sdnotify.watchdog_interval()
        if interval is None:
            return
        while True:  # sent from the event loop itself: a stuck loop stops the pings
            sdnotify.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    # ---- the pipeline ---------------------------------------------------------------

    def _handle(self, name: str, event: SourceEvent) -> None:
        st = self.sources.get(name) or self._register(name)
        if isinstance(event, Chunk):
            if event.data:
                st.scanner_for(event.stream).feed(event.data)
            st.cursor = event.cursor
            st.dirty = True
        elif isinstance(event, Watermark):
            if not st.up:
                st.up, st.reason = True, None
                self.metrics.source_up(name, True)
            self.metrics.watermark(name, event.at)
            self._pending += self.engine.advance(name, event.at)
            st.dirty = True
        elif isinstance(event, Gap):
            self.metrics.gap(name)
            self._pending += self.engine.gap(event)
        elif isinstance(event, SourceDown):
            if st.up or st.reason != event.reason:
                log.warning("source %s down: %s", name, event.reason)
                self._note(name, self.clock(), Kind.SOURCE_DOWN, SourceDownDetail(name, event.reason))
            st.up, st.reason = False, event.reason
            self.metrics.source_up(name, False)
        elif isinstance(event, Note):
            log.info("%s: %s", name, event.text)
            self._note(name, event.at, event.kind, event.detail)
        elif isinstance(event, ContainerStopped):
            self.auto_snapshots.container_stopped(event)

    def _note(self, source: str, at: float, kind: Kind, detail: Detail) -> None:
        """Something about `source` on the timeline of each open incident covering it (next commit)."""
        for incident in self.engine.covering(source):
            self._notes.append((incident, at, kind, detail))

    def _register(self, name: str) -> SourceState:
        """A sub-source seen for the first time (a new container of a docker source)."""
        parent = self._parents.get(name.partition("/")[0])
        if parent is None:
            raise KeyError(f"event for unknown source {name}")
        self.engine.add_source(name)
        self.metrics.add_source(name)
        cfg = self._configs[parent.name]
        st = SourceState(parent, self._scanner(name, cfg))
        st.new_scanner = lambda stream: self._scanner(name, cfg, stream)
        self.sources[name] = st
        return st

    def _scanner(self, name: str, cfg: SourceConfig, stream: str = "") -> StreamScanner:
        """`stream`: a further byte stream of the source (stderr), named in its error events."""
        fmt: Format = "auto"
        field = layout = None
        if isinstance(cfg, FileSourceConfig):
            fmt, field, layout = cfg.format, cfg.timestamp_field, cfg.timestamp_format
        elif isinstance(cfg, DockerSourceConfig):
            fmt = "docker"
        elif isinstance(cfg, JournalSourceConfig):
            fmt = "journal"

        def emit(event: ErrorEvent) -> None:
            if event.at is None:  # a source without timestamps of its own: receive time
                event = replace(event, at=self.clock())
            if stream:
                event = replace(event, stream=stream)
            self.metrics.error(name, event.rule)
            self._pending += self.engine.observe(event)

        return StreamScanner(
            name,
            self.ruleset.for_source(name, cfg.rules),
            fmt=fmt,
            timestamp_field=field,
            timestamp_format=layout,
            max_line_bytes=self.settings.max_line_bytes,
            emit=emit,
        )

    def _flush_lines(self) -> None:
        """Pass the lines read since the last batch on to the metrics and the engine's evidence."""
        for name, st in self.sources.items():
            if st.lines() == st.reported["lines"]:
                continue
            for what, total in st.totals().items():
                n = total - st.reported[what]
                if not n:
                    continue
                st.reported[what] = total
                if what == "lines":
                    self.metrics.lines(name, n)
                    self.engine.count_lines(name, n)
                else:
                    self.metrics.bad_line(name, what, n)

    def _persist(self, *, force: bool = False) -> None:
        """One commit: transitions, their announcements, engine state and the resume points behind them."""
        now = time.monotonic()
        if not (
            force
            or self._pending
            or self._notes
            or self._outgoing
            or now - self._last_persist >= PERSIST_EVERY
        ):
            return
        self._last_persist = now
        pending, self._pending = self._pending, []
        notes, self._notes = self._notes, []
        outgoing, self._outgoing = self._outgoing, []
        announce: list[Announcement] = []
        try:
            with self.store.transaction():
                announce = outgoing + self._record(pending)
                created = self.clock()
                for a in announce:
                    self.store.enqueue(a.channel, a.kind, a.news.to_json(), created)
                for incident, at, kind, detail in notes:
                    self.store.add_note(incident, at, kind, detail)
                for name, st in self.sources.items():
                    if st.dirty:
                        self.store.save_resume(name, st.cursor, self.engine.watermark(name))
                self.store.save_engine_state(self.engine.snapshot())
        except StoreError as exc:
            # Keep the transitions for the next attempt: the engine has already moved on.
            self._pending = pending + self._pending
            self._notes = notes + self._notes
            self._outgoing = outgoing + self._outgoing
            log.error("cannot commit state, will retry: %s", exc)
            return
        for st in self.sources.values():
            st.dirty = False
        if announce:
            for sender in self.senders:
                sender.wake()
        if pending:
            self._refresh_incident_metrics()

    def _record(self, transitions: Sequence[Transition]) -> list[Announcement]:
        """Write transitions to the timeline; return what to announce about them."""
        if not transitions:
            return []
        self.store.append_timeline(transitions)
        for t in transitions:
            log.info("%s %s at %.3f -> %s", t.incident, t.kind, t.at, t.state)
        return self.announcer.transitions(transitions, lambda i: self.engine.status(i).title)

    def _refresh_incident_metrics(self) -> list[IncidentStatus]:
        """Every incident's status into the metrics; returned for the ticker's other uses."""
        statuses = [self.engine.status(i) for i in self.engine.incident_ids()]
        for s in statuses:
            self.metrics.incident(
                s.id, state=str(s.state), clean_streak=s.clean_streak, resolved_at=s.resolved_at
            )
        return statuses

    def _last_heartbeat(self) -> HeartbeatNews | None:
        """The newest heartbeat queued, dated when it was queued (the announcer's memory)."""
        last = self.store.last_enqueued(HEARTBEAT)
        return None if last is None else replace(HeartbeatNews.from_json(last[1]), at=last[0])

    def _health(self) -> tuple[bool, str]:
        if not self.ready.is_set():
            return False, "starting"
        return True, "ok"

    # ---- Control: what the HTTP API calls -------------------------------------------

    def status(self) -> dict[str, object]:
        now = self.clock()
        return {
            "now": now,
            "incidents": [incident_json(self.engine.status(i)) for i in self.engine.incident_ids()],
            "sources": [
                source_json(name, st.up, st.reason, self.engine.watermark(name), now, st.stats())
                for name, st in self.sources.items()
            ],
            "outbox": outbox_json(self.store.outbox_channels()),
        }

    # The bodies below never await: each runs to its commit without interleaving.

    async def open_incident(
        self, incident: str, title: str, scope: list[str], window: float | None, by: str
    ) -> dict[str, object]:
        if self.store.incident(incident) is not None:
            raise FileExistsError(f"incident {incident} already exists")
        span = window if window is not None else self.settings.resolution.window
        self.metrics.add_incident(incident, span)
        return self._command(
            incident,
            lambda now: self.store.create_incident(incident, title, scope or ["*"], span, now, by),
            lambda now: self.engine.open(incident, title, scope or ["*"], span, now),
        )

    async def mitigate(self, incident: str, action: str, by: str) -> dict[str, object]:
        self._require_open(incident)
        return self._command(
            incident,
            lambda now: self.store.add_mitigation(incident, now, action, by),
            lambda now: self.engine.mitigate(incident, action, now),
        )

    async def close(self, incident: str, reason: str, by: str) -> dict[str, object]:
        self._require_open(incident)
        return self._command(
            incident,
            lambda now: self.store.close_incident(incident, now, reason, by),
            lambda now: self.engine.close(incident, reason, now),
        )

    def _command(
        self,
        incident: str,
        record: Callable[[float], object],
        apply: Callable[[float], list[Transition]],
    ) -> dict[str, object]:
        """Store the command and what the engine made of it in one commit, then answer."""
        now = self.clock()
        with self.store.transaction():
            record(now)
            self._pending += apply(now)
            self._persist(force=True)
        return incident_json(self.engine.status(incident))

    def timeline(self, incident: str) -> dict[str, object]:
        row = self.store.incident(incident)
        if row is None:
            raise KeyError(f"no incident {incident}")
        return timeline_json(row, self.store.timeline(incident))

    async def snapshot(self, req: Request, by: str) -> dict[str, object]:
        """`watcher snapshot --via-daemon`: the same collection as the CLI's, in a worker thread."""
        if req.incident is not None and self.store.incident(req.incident) is None:
            raise KeyError(f"no incident {req.incident}")
        try:
            result = await asyncio.to_thread(take_configured, self.settings, req, by=by)
        except WatcherError as exc:
            raise ValueError(str(exc)) from None
        checked = await asyncio.to_thread(verify, result.path)
        self.metrics.snapshot(req.trigger)
        if req.incident is not None:
            self.store.add_note(
                req.incident, self.clock(), Kind.SNAPSHOT, result.note(reason=req.reason, trigger=req.trigger)
            )
        return {**result.as_json(), "verified": checked.ok, "problems": checked.problems}

    def _require_open(self, incident: str) -> None:
        row = self.store.incident(incident)
        if row is None:
            raise KeyError(f"no incident {incident}")
        if row.closed_at is not None:
            raise ValueError(f"incident {incident} is closed")
