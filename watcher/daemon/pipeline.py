"""The record pipeline: source events -> scanners -> engine -> one store commit.

The daemon's one consumer calls `handle` for every event the sources queued, then
`flush_lines` and `persist` once per batch. Everything the engine concluded is
committed together with the resume points of the lines that led to it, so a kill
at any instant restarts from a consistent place and re-reads, exactly once, what
the engine had not yet made durable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from watcher.classify.rules import RuleSet
from watcher.classify.stream import StreamScanner
from watcher.daemon.auto_snapshots import AutoSnapshots
from watcher.daemon.source_state import SourceState
from watcher.details import Detail, Note, SourceDownDetail, Transition
from watcher.engine import Engine, IncidentStatus
from watcher.errors import StoreError
from watcher.events import Chunk, ErrorEvent, Gap, Kind, SourceDown, Watermark
from watcher.metrics import Metrics
from watcher.notify.announce import Announcement, Announcer
from watcher.notify.sender import Sender
from watcher.sources import Source, SourceEvent, Stopped
from watcher.store import Store

log = logging.getLogger(__name__)

PERSIST_EVERY = 1.0
"""Seconds between commits of resume points when nothing else happened."""


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
    ) -> None:
        self.store = store
        self.engine = engine
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
        self._last_persist = 0.0

    # ---- sources --------------------------------------------------------------------

    def add_reader(self, src: Source, cursors: dict[str, str]) -> str | None:
        """Track a configured source and the sub-sources its stored cursors name; its read() start."""
        self.readers.append(src)
        self.sources[src.name] = SourceState(src, self._scanner(src.name, src), cursor=cursors.get(src.name))
        for name in cursors:
            if src.owns(name):
                self._register(name, src)
        return src.after(cursors)

    def _register(self, name: str, parent: Source) -> SourceState:
        """A sub-source (a container of a docker source): seen in a resume point or for the first time."""
        self.engine.add_source(name)
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
        )

    # ---- events ---------------------------------------------------------------------

    def handle(self, name: str, event: SourceEvent) -> None:
        st = self._state(name)
        if isinstance(event, Chunk):
            if event.data:
                self._errors(name, st.scanner_for(event.stream).feed(event.data))
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
                self.note(name, self.clock(), Kind.SOURCE_DOWN, SourceDownDetail(name, event.reason))
            st.up, st.reason = False, event.reason
            self.metrics.source_up(name, False)
        elif isinstance(event, Note):
            log.info("%s: %s", name, event.text)
            self.note(name, event.at, event.kind, event.detail)
        elif isinstance(event, Stopped) and self.auto_snapshots is not None:
            self.auto_snapshots.stopped(event)

    def _errors(self, name: str, events: Sequence[ErrorEvent]) -> None:
        for event in events:
            if event.at is None:  # a source without timestamps of its own: receive time
                event = replace(event, at=self.clock())
            self.metrics.error(name, event.rule)
            self._pending += self.engine.observe(event)

    def note(self, source: str, at: float, kind: Kind, detail: Detail) -> None:
        """Something about `source` on the timeline of each open incident covering it (next commit)."""
        for incident in self.engine.covering(source):
            self._notes.append((incident, at, kind, detail))

    def transitions(self, transitions: list[Transition]) -> None:
        """Transitions decided outside the event stream (incident commands, the ticker): next commit."""
        self._pending += transitions

    def announce(self, announcements: list[Announcement]) -> None:
        self._outgoing += announcements

    def flush_lines(self) -> None:
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

    # ---- commit ---------------------------------------------------------------------

    def persist(self, *, force: bool = False) -> None:
        """One commit: transitions, their announcements, engine state and the resume points behind them."""
        now = time.monotonic()
        due = force or self._pending or self._notes or self._outgoing
        if not due and now - self._last_persist < PERSIST_EVERY:
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
                    self.store.outbox.enqueue(a.channel, a.kind, a.news.to_json(), created)
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
            self.refresh_incident_metrics()

    def _record(self, transitions: Sequence[Transition]) -> list[Announcement]:
        """Write transitions to the timeline; return what to announce about them."""
        if not transitions:
            return []
        self.store.append_timeline(transitions)
        for t in transitions:
            log.info("%s %s at %.3f -> %s", t.incident, t.kind, t.at, t.state)
        return self.announcer.transitions(transitions, self.engine.status)

    def refresh_incident_metrics(self) -> list[IncidentStatus]:
        """Every incident's status into the metrics; returned for the ticker's other uses."""
        statuses = [self.engine.status(i) for i in self.engine.incident_ids()]
        for s in statuses:
            self.metrics.incident(
                s.id, state=str(s.state), clean_streak=s.clean_streak, resolved_at=s.resolved_at
            )
        return statuses
