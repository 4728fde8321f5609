"""`watcher run`: wiring and lifecycle (startup, run, shutdown). The only TaskGroup in the program.

One task per configured source feeds a bounded queue (backpressure: a burst waits in
the log file, not in memory); one consumer hands each event to the record pipeline
(pipeline.py), which commits what the engine concluded; the HTTP API serves the
commands (commands.py); one sender per webhook drains the outbox beside it all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import aiohttp
from prometheus_client import CollectorRegistry

from watcher import __version__
from watcher.classify.rules import RuleSet
from watcher.config import Settings
from watcher.config.endpoint import remove_run_file, write_run_file
from watcher.daemon import sdnotify
from watcher.daemon.api import ApiServer
from watcher.daemon.auto_snapshots import AutoSnapshots
from watcher.daemon.commands import Commands
from watcher.daemon.lock import StateLock
from watcher.daemon.pipeline import Pipeline
from watcher.daemon.readiness import readiness, report
from watcher.daemon.retention import PRUNE_EVERY, prune
from watcher.daemon.runbook import RunbookClock
from watcher.daemon.token import load_or_create_token
from watcher.engine import Engine
from watcher.engine.impact import ImpactPolicy
from watcher.errors import StoreError
from watcher.events import HEARTBEAT, Expectation
from watcher.metrics import Metrics
from watcher.notify.announce import Announcement, Announcer
from watcher.notify.channels import build_senders, lane_names, lanes
from watcher.notify.news import HeartbeatNews, news_from_json
from watcher.notify.sender import Sender
from watcher.runbook.escalation import Policy
from watcher.sources import BuildContext, Source, SourceEvent
from watcher.sources.registry import build_sources
from watcher.store import Store

log = logging.getLogger(__name__)

REPORT_AFTER = 10.0
"""Seconds the start-up report waits for slow sources (an SSH handshake) before it is logged."""
QUEUE_SIZE = 8192
BATCH = 4096
TICK = 1.0


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry | None = None,
        config_file: Path | None = None,
    ) -> None:
        self.settings = settings
        self.config_file = config_file
        """The config it was started with: its run file tells the CLI where this daemon really is."""
        self._run_file: Path | None = None
        self.clock = clock
        self.registry = registry if registry is not None else CollectorRegistry()
        self.should_exit = asyncio.Event()
        self.ready = asyncio.Event()
        self._queue: asyncio.Queue[tuple[str, SourceEvent]] = asyncio.Queue(QUEUE_SIZE)
        self._reads: list[tuple[Source, str | None]] = []
        self.senders: list[Sender] = []
        self._commit_later: asyncio.TimerHandle | None = None

    # ---- lifecycle ------------------------------------------------------------------

    async def startup(self) -> None:
        s = self.settings
        self._lock = StateLock.acquire(s.state_dir)  # before the store: one daemon per state_dir
        self.store = store = Store.open(s.state_dir)
        prune(s.retention, store, s.state_dir, self.clock())
        self._next_prune = time.monotonic() + PRUNE_EVERY
        opened = [inc.opened_at for inc in store.incidents()]
        ctx = BuildContext(
            s.max_line_bytes,
            self.clock,
            since=min(opened, default=None),
            rules=tuple(s.rules),
            ignore=tuple(s.ignore),
        )
        built = build_sources(s, ctx)
        names = [src.name for src in built]
        ruleset = RuleSet.compile(s.rules, s.ignore)
        self.metrics = metrics = Metrics(
            self.registry, sources=names, rules=ruleset.rule_names, channels=lane_names(s.notify), site=s.site
        )
        engine = self._engine({src.name: src.expectation(src.name) for src in built})
        for name, mark in engine.sources().items():
            if mark is not None:
                metrics.watermark(name, mark)
        self.pipeline = pipeline = Pipeline(
            store=store,
            engine=engine,
            metrics=metrics,
            ruleset=ruleset,
            announcer=self._announcer(),
            max_line_bytes=s.max_line_bytes,
            clock=self.clock,
            skew_tolerance=s.resolution.skew_tolerance,
        )
        cursors = {n: p.cursor for n, p in store.resume_points().items() if p.cursor is not None}
        self._reads = [(src, pipeline.add_reader(src, cursors)) for src in built]
        pipeline.auto_snapshots = AutoSnapshots(
            s.state_dir, metrics=metrics, covering=pipeline.engine.covering, note=pipeline.note
        )
        for inc in store.incidents():
            metrics.add_incident(inc.id, inc.window)
        pipeline.refresh_incident_metrics()
        self.runbook = RunbookClock(
            pipeline, Policy(s.runbook.no_hypothesis_after, s.runbook.failed_mitigations)
        )
        self.commands = Commands(s, pipeline)
        token = load_or_create_token(s.state_dir)
        self.api = ApiServer(
            self.commands,
            metrics,
            listen=s.http.listen,
            token=token,
            health=self._health,
            alerts=s.alertmanager,
            ready=self._ready,
            secrets=s.notify.secrets(),
        )
        await self.api.start()
        # Only once nothing else in startup can fail: shutdown() is what closes the session.
        self.http = aiohttp.ClientSession()
        self.senders = build_senders(
            s.notify,
            self.http,
            outbox=store.outbox,
            slack_messages=store.slack_messages,
            metrics=metrics,
            clock=self.clock,
        )
        pipeline.senders = self.senders
        if self.config_file is not None:
            self._run_file = write_run_file(
                self.config_file, listen=self.api.address, state_dir=s.state_dir.resolve(), pid=os.getpid()
            )
        log.info(
            "novavms-watcher %s: API and /metrics on http://%s, state in %s; %d sources, first states follow",
            __version__,
            self.api.address,
            s.state_dir,
            len(self._reads),
        )

    def _engine(self, expect: dict[str, Expectation]) -> Engine:
        r, book = self.settings.resolution, self.settings.runbook
        impact = ImpactPolicy(book.max_orgs, book.confirm_records, book.confirm_over, book.impact_lookback)
        args = {"blind_after": r.blind_after, "skew_tolerance": r.skew_tolerance}
        snap = self.store.engine_state()
        try:
            if not snap:
                return Engine(sources=expect, expectations=expect, impact=impact, **args)
            marks = {n: p.watermark for n, p in self.store.resume_points().items()}
            engine = Engine.restore(
                snap, sources=expect, expectations=expect, watermarks=marks, impact=impact, **args
            )
        except ValueError as exc:
            raise StoreError(f"{self.store.path}: {exc}; use the watcher that wrote it") from None
        for incident in engine.incident_ids():
            engine.load_impact(incident, self.store.impact.load(incident))
        return engine

    def _announcer(self) -> Announcer:
        notify = self.settings.notify
        hooks = notify.webhooks()
        extra = lanes(notify)
        for channel in ("incident", "oncall"):
            if channel not in hooks and not any(lane.channel == channel for lane in extra):
                log.warning("no %s_webhook configured: nothing is announced to that channel", channel)
        last = self.store.outbox.last_enqueued(HEARTBEAT)
        held = [
            Announcement(h.channel, news_from_json(h.kind, h.payload), held_until=h.due_at)
            for h in self.store.outbox.held()
        ]
        return Announcer(
            channels=hooks,
            lanes=extra,
            routes=notify.routes,
            reset_every=notify.reset_every,
            heartbeat=notify.heartbeat,
            # Dated when it was queued: the announcer's memory of the last heartbeat.
            last_heartbeat=None if last is None else replace(HeartbeatNews.from_json(last[1]), at=last[0]),
            held=held,
            clock=self.clock,
        )

    async def run(self) -> None:
        tasks: list[asyncio.Task[None]] = []  # hard references: tasks are not garbage collected
        try:
            async with asyncio.TaskGroup() as tg:
                for src, after in self._reads:  # one reader per configured source; sub-sources share it
                    tasks.append(tg.create_task(self._read(src, after), name=f"source {src.name}"))
                tasks.append(tg.create_task(self._consume(), name="consumer"))
                tasks.append(tg.create_task(self._ticker(), name="ticker"))
                tasks.append(tg.create_task(self._watchdog(), name="watchdog"))
                tasks.append(tg.create_task(self._report_sources(), name="start-up report"))
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
            self.pipeline.handle(*self._queue.get_nowait())
        self.pipeline.flush_lines()
        if self._commit_later is not None:
            self._commit_later.cancel()
        self.pipeline.persist(force=True)
        if self.pipeline.auto_snapshots is not None:
            await self.pipeline.auto_snapshots.drain()
        await self.api.stop()
        if self._run_file is not None:
            remove_run_file(self._run_file, os.getpid())
        await self.http.close()
        self.store.close()
        self._lock.release()

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

    async def _read(self, src: Source, after: str | None) -> None:
        async for event in src.read(after):
            await self._queue.put((event.source, event))

    async def _consume(self) -> None:
        while True:
            name, event = await self._queue.get()
            self.pipeline.handle(name, event)
            for _ in range(BATCH):
                try:
                    name, event = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                self.pipeline.handle(name, event)
            self.pipeline.flush_lines()
            self._persist()

    def _persist(self) -> None:
        """Commit, or make sure what is due is committed once the pace allows (no later batch may come)."""
        wait = self.pipeline.persist()
        if wait is not None and self._commit_later is None:
            self._commit_later = asyncio.get_running_loop().call_later(wait, self._persist_held)

    def _persist_held(self) -> None:
        self._commit_later = None
        self._persist()

    async def _ticker(self) -> None:
        p = self.pipeline
        while True:
            await asyncio.sleep(TICK)
            self.commands.take_spooled()
            p.retire_closed(self.clock() - self.settings.retention.closed_metrics)
            if time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + PRUNE_EVERY
                prune(self.settings.retention, self.store, self.settings.state_dir, self.clock())
            p.transitions(p.engine.tick(self.clock()))
            p.announce(p.announcer.tick(p.refresh_incident_metrics()))
            self.metrics.outbox_pending(self.store.outbox.pending_count())
            self._persist()
            self.runbook.tick(self.clock())  # after the commit: it judges what the store holds

    async def _watchdog(self) -> None:
        interval = sdnotify.watchdog_interval()
        if interval is None:
            return
        while True:  # sent from the event loop itself: a stuck loop stops the pings
            sdnotify.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    async def _report_sources(self) -> None:
        """Once every source said whether it is up (or after REPORT_AFTER s): one line each."""
        p = self.pipeline
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REPORT_AFTER):
                await p.first_states.wait()
        lines = report(p.readers, p.sources)
        for line in lines[:-1]:
            (log.info if line.endswith(": up") else log.warning)("%s", line)
        log.info("%s", lines[-1])
        p.startup_reported = True

    def _ready(self) -> tuple[bool, str]:
        return readiness(self.ready.is_set(), self.pipeline.sources)

    def _health(self) -> tuple[bool, str]:
        if not self.ready.is_set():
            return False, "starting"
        return True, "ok"
