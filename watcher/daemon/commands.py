"""The commands the daemon's HTTP API serves: open, mitigate, close, status, timeline, snapshot,
and Alertmanager's notifications (alerts.py).

Each incident command records itself in the store and hands what the engine made
of it to the pipeline, in one commit, before it answers. Whether an incident exists
and is open is the store's to say (`Store.require_open`), nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

from watcher.config import Settings
from watcher.daemon import requests
from watcher.daemon.alert_payload import Notification
from watcher.daemon.alerts import AlertIntake
from watcher.daemon.pipeline import Pipeline
from watcher.daemon.status import incident_doc, outbox_doc, source_doc, timeline_doc
from watcher.details import SnapshotDetail, Transition
from watcher.errors import IncidentExists, IncidentNotFound
from watcher.events import Kind
from watcher.evidence import Request, take_configured
from watcher.schema import AlertDoc, IncidentDoc, RecordedDoc, SnapshotDoc, StatusDoc, TimelineDoc
from watcher.snapshot.manifest import verify
from watcher.snapshot.spool import queued, reject

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
        self, incident: str, title: str, scope: list[str], window: float | None, by: str
    ) -> IncidentDoc:
        return self.open_now(incident, title, scope, window, by)

    def open_now(
        self, incident: str, title: str, scope: list[str], window: float | None, by: str
    ) -> IncidentDoc:
        """`open_incident` for a caller that must not await (inside its own transaction)."""
        p = self.pipeline
        if p.store.incident(incident) is not None:
            raise IncidentExists(f"incident {incident} already exists")
        span = window if window is not None else self.settings.resolution.window
        p.metrics.add_incident(incident, span)
        return self._command(
            incident,
            lambda now: p.store.create_incident(incident, title, scope or ["*"], span, now, by),
            lambda now: p.engine.open(incident, title, scope or ["*"], span, now),
        )

    async def mitigate(self, incident: str, action: str, by: str) -> IncidentDoc:
        p = self.pipeline
        p.store.require_open(incident)
        return self._command(
            incident,
            lambda now: p.store.add_mitigation(incident, now, action, by),
            lambda now: p.engine.mitigate(incident, action, now),
        )

    async def close(self, incident: str, reason: str, by: str) -> IncidentDoc:
        p = self.pipeline
        p.store.require_open(incident)
        return self._command(
            incident,
            lambda now: p.store.close_incident(incident, now, reason, by),
            lambda now: p.engine.close(incident, reason, now),
        )

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

    async def alertmanager(self, notification: Notification) -> AlertDoc:
        return self.alerts.receive(notification)

    def timeline(self, incident: str) -> TimelineDoc:
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
