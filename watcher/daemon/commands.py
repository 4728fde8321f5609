"""The commands the daemon's HTTP API serves: the incident's life (open, mitigate, note,
hypothesis, change, close, reopen), status and timeline, snapshots, and Alertmanager's
notifications (alerts.py); the documents read from the record (list, statuspage, postmortem)
are in records.py.

Each incident command records itself in the store and hands what the engine made
of it to the pipeline, in one commit, before it answers. Whether an incident exists
and is open is the store's to say (`Store.require_open`), nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from watcher.config import Settings
from watcher.daemon import records, requests
from watcher.daemon.alert_payload import Notification
from watcher.daemon.alerts import AlertIntake
from watcher.daemon.pipeline import Pipeline
from watcher.daemon.status import incident_doc, outbox_doc, source_doc, timeline_doc
from watcher.details import SnapshotDetail, TextDetail, Transition
from watcher.errors import IncidentExists, IncidentNotClosed, IncidentNotFound, InputError
from watcher.events import Kind
from watcher.evidence import Request, take_configured
from watcher.facts import UNREAD, facts
from watcher.schema import (
    AlertDoc,
    IncidentDoc,
    IncidentListDoc,
    PostmortemDoc,
    RecordedDoc,
    SnapshotDoc,
    StatusDoc,
    StatuspageDoc,
    TimelineDoc,
)
from watcher.snapshot.manifest import verify
from watcher.snapshot.spool import queued, reject
from watcher.times import format_time

log = logging.getLogger(__name__)


class Commands:
    def __init__(self, settings: Settings, pipeline: Pipeline) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.alerts = AlertIntake(settings.alertmanager, self)

    def status(self) -> StatusDoc:
        p = self.pipeline
        now = p.clock()
        return {
            "now": now,
            "incidents": [incident_doc(p.engine.status(i)) for i in p.engine.incident_ids()],
            "sources": [
                source_doc(
                    name,
                    st.up,
                    st.reason,
                    p.engine.watermark(name),
                    now,
                    st.stats(),
                    liveness=(st.source.expectation(name).liveness, p.engine.down(name)),
                    skew=st.skew,
                )
                for name, st in p.sources.items()
            ],
            "outbox": outbox_doc(p.store.outbox.backlog()),
        }

    # The bodies below never await before their commit: each runs to it without interleaving.

    async def open_incident(
        self,
        incident: str,
        title: str,
        scope: list[str],
        window: float | None,
        by: str,
        orgs: Sequence[str] = (),
    ) -> IncidentDoc:
        return self.open_now(incident, title, scope, window, by, orgs)

    def open_now(
        self,
        incident: str,
        title: str,
        scope: list[str],
        window: float | None,
        by: str,
        orgs: Sequence[str] = (),
    ) -> IncidentDoc:
        """`open_incident` for a caller that must not await (inside its own transaction)."""
        p = self.pipeline
        if p.store.incident(incident) is not None:
            raise IncidentExists(f"incident {incident} already exists")
        span = window if window is not None else self.settings.resolution.window
        p.metrics.add_incident(incident, span)
        return self._command(
            incident,
            lambda now: p.store.create_incident(incident, title, scope or ["*"], span, now, by, orgs),
            lambda now: p.engine.open(incident, title, scope or ["*"], span, now, orgs=orgs),
        )

    async def mitigate(self, incident: str, action: str, by: str, at: float | None = None) -> IncidentDoc:
        """A mitigation made now, or at `at`: in the past, after the incident (re)opened."""
        p = self.pipeline
        p.store.require_open(incident)
        if at is not None:
            self._check_past(incident, at)
        return self._command(
            incident,
            lambda now: p.store.add_mitigation(incident, now if at is None else at, action, by),
            lambda now: p.engine.mitigate(incident, action, now if at is None else at),
        )

    def _check_past(self, incident: str, at: float) -> None:
        now, opened = self.pipeline.clock(), self.pipeline.engine.status(incident).opened_at
        if at > now:
            raise InputError(
                f"the mitigation time {format_time(at)} is in the future (now {format_time(now)}): "
                "leave --at out for a mitigation made now"
            )
        if at < opened:
            raise InputError(
                f"the mitigation time {format_time(at)} is before {incident} (re)opened at "
                f"{format_time(opened)}: the watcher has no record of it there"
            )

    async def change(
        self,
        incident: str,
        by: str,
        scope: Sequence[str] | None = None,
        window: float | None = None,
        orgs: Sequence[str] | None = None,
    ) -> IncidentDoc:
        """A new scope, window or set of named orgs for an open incident, on its timeline."""
        p = self.pipeline
        row = p.store.require_open(incident)
        if scope is None and window is None and orgs is None:
            raise InputError("nothing to change: give a new scope, window or orgs")
        new = (scope or row.scope, window or row.window, row.orgs if orgs is None else orgs)
        p.metrics.add_incident(incident, new[1])
        return self._command(
            incident,
            lambda now: p.store.change_incident(incident, *new),
            lambda now: p.engine.change(incident, now, scope=scope, window=window, orgs=orgs, by=by),
        )

    async def note(self, incident: str, kind: Kind, text: str, by: str) -> IncidentDoc:
        """A person's note or hypothesis (`kind`) on the timeline, announced."""
        p = self.pipeline
        p.store.require_open(incident)
        p.record_notes(incident, [(p.clock(), kind, TextDetail(text, by))])
        return incident_doc(p.engine.status(incident))

    async def close(self, incident: str, reason: str, by: str) -> IncidentDoc:
        p = self.pipeline
        p.store.require_open(incident)
        doc = self._command(
            incident,
            lambda now: p.store.close_incident(incident, now, reason, by),
            lambda now: p.engine.close(incident, reason, now),
        )
        f = facts(p.store.require(incident), p.store.timeline(incident, skip=UNREAD))
        if f.time_to_resolve is not None and f.reopened_at is None:
            # Once per incident: a reopened one was observed when it first closed.
            p.metrics.resolved_in(f.time_to_resolve)
        return doc

    async def reopen(self, incident: str, by: str) -> IncidentDoc:
        """A closed incident tracked again from now: it needs a mitigation after this to resolve."""
        p = self.pipeline
        row = p.store.require(incident)
        if row.closed_at is None:
            raise IncidentNotClosed(f"incident {incident} is open; only a closed incident can be reopened")
        p.metrics.add_incident(incident, row.window)

        def apply(now: float) -> list[Transition]:
            out = p.engine.open(incident, row.title, row.scope, row.window, now, orgs=row.orgs, reopen=by)
            p.engine.load_impact(incident, p.store.impact.load(incident))
            return out

        return self._command(incident, lambda now: p.store.reopen_incident(incident), apply)

    def _command(
        self,
        incident: str,
        record: Callable[[float], object],
        apply: Callable[[float], list[Transition]],
    ) -> IncidentDoc:
        """Store the command and what the engine made of it in one commit, then answer."""
        p = self.pipeline
        now = p.clock()
        with p.store.transaction():
            record(now)
            p.transitions(apply(now))
            p.persist(force=True)
        return incident_doc(p.engine.status(incident))

    def incidents(self, include_closed: bool) -> IncidentListDoc:
        self.pipeline.settle()
        return records.incident_list(self.pipeline, include_closed)

    def statuspage(self, incident: str) -> StatuspageDoc:
        self.pipeline.settle()
        return records.statuspage(self.settings, self.pipeline, incident)

    def postmortem(self, incident: str) -> PostmortemDoc:
        self.pipeline.settle()
        return records.postmortem(self.pipeline, incident)

    async def alertmanager(self, notification: Notification) -> AlertDoc:
        return self.alerts.receive(notification)

    def timeline(self, incident: str) -> TimelineDoc:
        self.pipeline.settle()
        store = self.pipeline.store
        return timeline_doc(store.require(incident), store.timeline(incident), self.pipeline.clock())

    async def snapshot(self, req: Request, by: str) -> SnapshotDoc:
        """`watcher snapshot --via-daemon`: the same collection as the CLI's, in a worker thread."""
        p = self.pipeline
        if req.incident is not None:
            p.store.require(req.incident)
        result = await asyncio.to_thread(take_configured, self.settings, req, by=by)
        checked = await asyncio.to_thread(verify, result.path)
        p.metrics.snapshot(req.trigger)
        if req.incident is not None:
            detail = result.note(reason=req.reason, trigger=req.trigger, by=by)
            p.store.add_note(req.incident, p.clock(), Kind.SNAPSHOT, detail)
        return {**result.as_json(), "verified": checked.ok, "problems": checked.problems}

    def record_snapshot(self, taken: requests.SnapshotTaken, by: str) -> RecordedDoc:
        """A snapshot the CLI wrote itself: counted, and on its incident's timeline at its own time."""
        p = self.pipeline
        if taken.incident is not None:
            p.store.require(taken.incident)
            detail = SnapshotDetail(
                Path(taken.path).name,
                taken.path,
                taken.size,
                taken.sha256,
                taken.complete,
                taken.missing,
                taken.reason,
                str(taken.trigger),
                None,
                by,
            )
            p.store.add_note(taken.incident, taken.at, Kind.SNAPSHOT, detail)
        p.metrics.snapshot(taken.trigger)
        return {"incident": taken.incident, "trigger": str(taken.trigger)}

    def take_spooled(self) -> None:
        """Record the snapshots the CLI queued while this daemon was not answering."""
        for path in queued(self.settings.state_dir):
            try:
                taken = requests.parse(requests.SnapshotTaken, json.loads(path.read_bytes()))
                self.record_snapshot(taken, taken.by or "unknown")
            except (OSError, ValueError, IncidentNotFound) as exc:
                log.warning("cannot record the queued snapshot %s: %s; set aside", path, exc)
                with contextlib.suppress(OSError):
                    reject(path)
                continue
            log.info("recorded the snapshot %s queued by %s", taken.path, taken.by or "someone")
            path.unlink(missing_ok=True)
