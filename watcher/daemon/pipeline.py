"""The record pipeline: source events -> scanners -> engine -> one store commit.

The daemon's one consumer calls `handle` for every event the sources queued, then
`flush_lines` and `persist` once per batch. Everything the engine concluded is
committed together with the resume points of the lines that led to it, so a kill
at any instant restarts from a consistent place and re-reads, exactly once, what
the engine had not yet made durable.

The engine's snapshot is written only when an incident or a source's evidence in it
changed: watermarks
move every second, but they are also in the resume points written beside it, which
is where a restart takes them from (Engine.restore). Its messages are clipped
(events.clip), so a commit stays a few KiB per incident whatever the log lines hold.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from watcher.classify.impact import ImpactKey
from watcher.classify.rules import RuleSet
from watcher.classify.stream import StreamScanner
from watcher.daemon.auto_snapshots import AutoSnapshots
from watcher.daemon.pace import Pace, urgent
from watcher.daemon.readiness import first_states_known
from watcher.daemon.source_state import STARTING, SourceState
from watcher.details import (
    CannotResolveDetail,
    ClockSkewDetail,
    Detail,
    EscalatedDetail,
    Note,
    NotRunningDetail,
    SourceDownDetail,
    Transition,
)
from watcher.engine import Engine, IncidentStatus
from watcher.errors import StoreError
from watcher.events import Chunk, ErrorEvent, Gap, Kind, Liveness, SourceDown, State, Watermark
from watcher.metrics import Metrics
from watcher.notify.announce import Announcement, Announcer
from watcher.notify.news import TransitionNews
from watcher.notify.sender import Sender
from watcher.sources import Source, SourceEvent, Stopped
from watcher.store import Store
from watcher.store.db import dumps
from watcher.times import format_time

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(
        self,
        *,
        store: Store,
        engine: Engine,
        metrics: Metrics,
        ruleset: RuleSet,
        announcer: Announcer,
        max_line_bytes: int,
        clock: Callable[[], float],
        skew_tolerance: float = 60.0,
    ) -> None:
        self.store = store
        self.engine = engine
        self.skew_tolerance = skew_tolerance
        self.metrics = metrics
        self.ruleset = ruleset
        self.announcer = announcer
        self.clock = clock
        self.max_line_bytes = max_line_bytes
        self.sources: dict[str, SourceState] = {}
        self.readers: list[Source] = []
        self.senders: list[Sender] = []
        """Woken when a commit queued announcements (set by the daemon once it has them)."""
        self.auto_snapshots: AutoSnapshots | None = None
        self._pending: list[Transition] = []
        self._notes: list[tuple[str, float, Kind, Detail]] = []
        self._outgoing: list[Announcement] = []
        """Announcements decided outside a transition (heartbeats, held resets), committed next."""
        self._pace = Pace()
        self.first_states = asyncio.Event()
        """Set once every configured source has said whether it is up (or why not)."""
        self.startup_reported = False
        """Set once the daemon has logged every source's first state (watcher.daemon.readiness)."""
        self._blocked: dict[str, tuple[str, ...]] = {}
        """Per incident, the reasons it could not resolve when last put on its timeline."""
        self._active: set[str] = set()
        """Sources with events since the last flush_lines."""
        self.touched: set[str] = set()
        """Incidents whose timeline got transitions or notes since the runbook's clock last looked."""
        self._saved_incidents: str | None = None
        """The incidents of the engine snapshot last committed, as JSON: unchanged ones are not rewritten."""

    # ---- sources --------------------------------------------------------------------

    def add_reader(self, src: Source, cursors: dict[str, str]) -> str | None:
        """Track a configured source and the sub-sources its stored cursors name; its read() start."""
        self.readers.append(src)
        self.engine.add_source(src.name, src.expectation(src.name))
        st = SourceState(src, self._scanner(src.name, src), cursor=cursors.get(src.name))
        st.new_scanner = lambda stream: self._scanner(src.name, src, stream)
        self.sources[src.name] = st
        for name in cursors:
            if src.owns(name):
                self._register(name, src)
        return src.after(cursors)

    def _register(self, name: str, parent: Source) -> SourceState:
        """A sub-source (a container of a docker source): seen in a resume point or for the first time."""
        self.engine.add_source(name, parent.expectation(name))
        self.metrics.add_source(name)
        st = SourceState(parent, self._scanner(name, parent))
        st.new_scanner = lambda stream: self._scanner(name, parent, stream)
        self.sources[name] = st
        return st

    def _state(self, name: str) -> SourceState:
        st = self.sources.get(name)
        if st is not None:
            return st
        parent = next((src for src in self.readers if src.owns(name)), None)
        if parent is None:
            raise KeyError(f"event for unknown source {name}")
        return self._register(name, parent)

    def _scanner(self, name: str, src: Source, stream: str = "") -> StreamScanner:
        """`stream`: a further byte stream of the source (stderr), named in its error events."""
        opts = src.scan
        return StreamScanner(
            name,
            self.ruleset.for_source(name, opts.rules),
            fmt=opts.fmt,
            timestamp_field=opts.timestamp_field,
            timestamp_format=opts.timestamp_format,
            max_line_bytes=self.max_line_bytes,
            stream=stream,
            expect_match=opts.expect_match,
            impact=ImpactKey.of(opts.impact_field, opts.impact_regex),
        )

    # ---- events ---------------------------------------------------------------------

    def handle(self, name: str, event: SourceEvent) -> None:
        st = self._state(name)
        self._active.add(name)
        if isinstance(event, Chunk):
            if event.data:
                self._chunk(name, st, event)
            st.cursor = event.cursor
            st.dirty = True
        elif isinstance(event, Liveness):
            self._liveness(event)
        elif isinstance(event, Watermark):
            if not st.up:
                self._set_state(name, st, None)
            self.metrics.watermark(name, event.at)
            self._pending += self.engine.advance(name, event.at)
            st.dirty = True
        elif isinstance(event, Gap):
            self.metrics.gap(name)
            self._pending += self.engine.gap(event)
        elif isinstance(event, SourceDown):
            if st.up or st.reason != event.reason:
                self.note(name, self.clock(), Kind.SOURCE_DOWN, SourceDownDetail(name, event.reason))
                self._set_state(name, st, event.reason)
        elif isinstance(event, Note):
            log.info("%s: %s", name, event.text)
            self.note(name, event.at, event.kind, event.detail)
        elif isinstance(event, Stopped) and self.auto_snapshots is not None:
            self.auto_snapshots.stopped(event)

    def _set_state(self, name: str, st: SourceState, down: str | None) -> None:
        """Up (`down` None) or down with that reason: logged, except a first state, which the
        start-up report tells (watcher.daemon.readiness)."""
        if st.reason != STARTING or self.startup_reported:
            if down is None:
                log.info("source %s: up", name)
            else:
                log.warning("source %s: DOWN: %s", name, down)
        st.up, st.reason = down is None, down
        self.metrics.source_up(name, down is None)
        if not self.first_states.is_set() and first_states_known(self.readers, self.sources):
            self.first_states.set()

    def _chunk(self, name: str, st: SourceState, chunk: Chunk) -> None:
        """Its errors to the engine (a live one's with its arrival), and when it has records."""
        arrived = self.clock()
        scanned = st.scanner_for(chunk.stream).feed(chunk.data, now=arrived)
        self._errors(name, scanned.errors, arrived if chunk.live else None)
        if scanned.times:
            self._pending += self.engine.seen(name, scanned.times)
        if chunk.live and scanned.newest is not None:
            self._skew(name, st, scanned.newest - arrived)

    def _errors(self, name: str, events: Sequence[ErrorEvent], arrived: float | None) -> None:
        for event in events:
            if event.at is None:  # a record without a timestamp of its own: receive time
                event = replace(event, at=self.clock())
            if arrived is not None:
                event = replace(event, arrived=arrived)
            self.metrics.error(name, event.rule)
            self._pending += self.engine.observe(event)

    def _skew(self, name: str, st: SourceState, skew: float) -> None:
        """How far a live line's own stamp is from its arrival: a metric, status, and a timeline
        note when it goes beyond the tolerance (records then count at their arrival)."""
        st.skew = skew
        self.metrics.clock_skew(name, skew)
        beyond = abs(skew) > self.skew_tolerance
        if beyond and not st.skewed:
            log.warning("%s: live lines stamped %+.1fs from their arrival", name, skew)
            self.note(name, self.clock(), Kind.CLOCK_SKEW, ClockSkewDetail(name, skew, self.skew_tolerance))
        st.skewed = beyond

    def _liveness(self, event: Liveness) -> None:
        """Whether what a source reads runs; its stop goes on the timeline of incidents covering it."""
        was = self.engine.down(event.source)
        self._pending += self.engine.liveness(event)
        now = self.engine.down(event.source)
        self.metrics.running(event.source, now is None)
        if now is not None and (was is None or was.reason != now.reason):
            log.warning("%s: %s", event.source, now.reason)
            since = now.since if now.since > float("-inf") else None
            self.note(
                event.source, event.at, Kind.NOT_RUNNING, NotRunningDetail(event.source, now.reason, since)
            )

    def note(self, source: str, at: float, kind: Kind, detail: Detail) -> None:
        """Something about `source` on the timeline of each open incident covering it (next commit)."""
        for incident in self.engine.covering(source):
            self._notes.append((incident, at, kind, detail))

    def transitions(self, transitions: list[Transition]) -> None:
        """Transitions decided outside the event stream (incident commands, the ticker): next commit."""
        self._pending += transitions

    def announce(self, announcements: list[Announcement]) -> None:
        self._outgoing += announcements

    def record_notes(self, incident: str, notes: Sequence[tuple[float, Kind, Detail]]) -> None:
        """Notes about an open incident on its timeline and in the outbox, in one commit now rather
        than with the next batch: a person's note, the runbook's decisions. StoreError: none is.

        An escalation also pages, where a lane pages on it (PagerDuty's escalation key): in the
        same commit as the note, so once per cause like the note itself."""
        created = self.clock()
        with self.store.transaction():
            for at, kind, detail in notes:
                self.store.add_note(incident, at, kind, detail)
                queued = self.announcer.note(incident, kind, at, detail, self.engine.status)
                if isinstance(detail, EscalatedDetail):
                    title = self.engine.status(incident).title
                    queued += self.announcer.escalation(incident, title, at, detail.cause)
                for a in queued:
                    self._queue(a, created)
        self.touched.add(incident)
        for sender in self.senders:
            sender.wake()

    def flush_lines(self) -> None:
        """Pass the lines read since the last batch on to the metrics and the engine's evidence
        (of the sources that had events: a fleet has a thousand, a batch a few)."""
        active, self._active = self._active, set()
        for name in active:
            st = self.sources.get(name)
            if st is None or st.lines() == st.reported["lines"]:
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

    # ---- commit ---------------------------------------------------------------------

    def persist(self, *, force: bool = False) -> float | None:
        """One commit: transitions, their announcements, engine state and the resume points behind
        them, if it is time (watcher.daemon.pace); else in how many seconds what is due may be
        committed (None: nothing is due)."""
        started = time.monotonic()
        force = force or urgent(t.kind for t in self._pending)
        wait = self._pace.wait(started, due=self._due, force=force)
        if wait != 0.0:
            return wait
        try:
            self._commit()
        finally:
            self._pace.committed(started, time.monotonic())
        return None

    def settle(self) -> None:
        """Commit what is due now, whatever the pace: before a read of the record, so that
        `watcher timeline` right after `watcher status` said RESOLVED shows the resolution."""
        if self._due:
            self.persist(force=True)

    @property
    def _due(self) -> bool:
        """Whether anything decided waits for a commit."""
        return bool(self._pending or self._notes or self._outgoing)

    def _commit(self) -> None:
        pending, self._pending = self._pending, []
        notes, self._notes = self._notes, []
        outgoing, self._outgoing = self._outgoing, []
        announce: list[Announcement] = []
        try:
            with self.store.transaction():
                announce = outgoing + self._record(pending)
                created = self.clock()
                for a in announce:
                    self._queue(a, created)
                for incident, at, kind, detail in notes:
                    self.store.add_note(incident, at, kind, detail)
                for name, st in self.sources.items():
                    if st.dirty:
                        self.store.save_resume(name, st.cursor, self.engine.watermark(name))
                self.store.impact.save(self.engine.impact_changes())
                saved = self._save_engine_state()
        except StoreError as exc:
            # Keep the transitions for the next attempt: the engine has already moved on.
            self._pending = pending + self._pending
            self._notes = notes + self._notes
            self._outgoing = outgoing + self._outgoing
            log.error("cannot commit state, will retry: %s", exc)
            return
        self.engine.impact_saved()
        self._saved_incidents = saved
        for st in self.sources.values():
            st.dirty = False
        if announce:
            for sender in self.senders:
                sender.wake()
        if pending:
            self.refresh_incident_metrics()

    def _queue(self, a: Announcement, created: float) -> None:
        """Into the outbox, or kept back; a streak reset sent sums up, and so replaces, what was held."""
        outbox, payload = self.store.outbox, a.news.to_json()
        incident = a.news.incident if isinstance(a.news, TransitionNews) else None
        if a.held_until is not None and incident is not None:
            outbox.hold(a.channel, incident, a.kind, payload, a.held_until)
            return
        if incident is not None and a.kind == Kind.STREAK_RESET:
            outbox.release(a.channel, incident)
        outbox.enqueue(a.channel, a.kind, payload, created)

    def _save_engine_state(self) -> str:
        """Write the engine snapshot if an incident or a track in it changed; what was compared."""
        state = self.engine.snapshot()
        # Tracks hold evidence (when a source ran, had records) that the resume points do not.
        incidents = dumps({"incidents": state["incidents"], "tracks": state["tracks"]}, "the engine state")
        if incidents != self._saved_incidents:
            self.store.save_engine_state(state)
        return incidents

    def _record(self, transitions: Sequence[Transition]) -> list[Announcement]:
        """Write transitions to the timeline; return what to announce about them."""
        if not transitions:
            return []
        self.store.append_timeline(transitions)
        for t in transitions:
            log.info("%s %s at %s -> %s", t.incident, t.kind, format_time(t.at), t.state)
            self.touched.add(t.incident)
        return self.announcer.transitions(transitions, self.engine.status)

    def retire_closed(self, before: float) -> None:
        """Incidents closed before `before` leave the metrics and the engine (the store keeps them)."""
        for incident in self.engine.closed_before(before):
            self.metrics.remove_incident(incident)
            self.engine.forget(incident)

    def refresh_incident_metrics(self) -> list[IncidentStatus]:
        """Every incident's status into the metrics (and why it cannot resolve, when that changed,
        onto its timeline); returned for the ticker's other uses."""
        statuses = [self.engine.status(i) for i in self.engine.incident_ids()]
        for s in statuses:
            self.metrics.incident(
                s.id,
                state=str(s.state),
                clean_streak=s.clean_streak,
                resolved_at=s.resolved_at,
                streak_start=s.streak_start,
                verified_to=s.verified_to,
            )
            self.metrics.impact(s.id, s.impact.orgs, s.impact.affected, s.impact.untracked)
            self._cannot_resolve(s)
        return statuses

    def _cannot_resolve(self, s: IncidentStatus) -> None:
        """A timeline note when the reasons an incident cannot resolve change (by source and kind
        of reason, not by the times in them)."""
        reasons = tuple(b.text() for b in s.blockers)
        key = tuple(f"{b.source}: {b.reason}" for b in s.blockers)
        if key == self._blocked.get(s.id, ()):
            return
        self._blocked[s.id] = key
        if not key and s.state in (State.RESOLVED, State.CLOSED):
            return  # the resolution (or the close) says it already
        self._notes.append((s.id, self.clock(), Kind.CANNOT_RESOLVE, CannotResolveDetail(reasons)))
