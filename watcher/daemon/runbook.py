"""The runbook's clock in the daemon: its decisions (watcher.runbook.escalation) on the timeline.

The ticker calls `tick` every second. An open incident is judged again when its timeline
changed since (a mitigation, a regression, a hypothesis: `Pipeline.touched`) or when
its next decision falls due; then its record is read back from the store, what it proves
is computed (watcher.facts), and what the clock decides is recorded and announced in one
commit. The decision is made from the store alone, so a restart judges again from the
same record: nothing is decided twice, and nothing due while the daemon was down is
lost (it is recorded at the time it fell due, and announced late).

The same pass mirrors the record's counts into the metrics: mitigations, failed
mitigations, escalations.
"""

from __future__ import annotations

import logging
from collections import Counter

from watcher.daemon.pipeline import Pipeline
from watcher.details import Detail, EscalatedDetail, MitigationFailedDetail
from watcher.errors import StoreError
from watcher.events import Kind
from watcher.facts import UNREAD, Facts, facts
from watcher.metrics import Handling
from watcher.runbook.escalation import Decisions, Policy, decide
from watcher.store.rows import IncidentRow
from watcher.times import format_time

log = logging.getLogger(__name__)


class RunbookClock:
    def __init__(self, pipeline: Pipeline, policy: Policy) -> None:
        self.pipeline = pipeline
        self.policy = policy
        self._due: dict[str, float | None] = {}
        """Per incident judged, when its next decision falls due without news (None: never)."""

    def tick(self, now: float) -> None:
        p = self.pipeline
        touched, p.touched = p.touched, set()
        open_ = p.store.incidents()
        for row in open_:
            due = self._due.get(row.id)
            if row.id in touched or row.id not in self._due or (due is not None and due <= now):
                try:
                    self._judge(row, now)
                except StoreError as exc:
                    p.touched.add(row.id)  # judged again on the next tick
                    log.error("cannot record the runbook's decision for %s, will retry: %s", row.id, exc)
        for gone in set(self._due) - {row.id for row in open_}:
            del self._due[gone]

    def _judge(self, row: IncidentRow, now: float) -> None:
        p = self.pipeline
        f = facts(row, p.store.timeline(row.id, skip=UNREAD))
        decided = decide(row, f, self.policy, now)
        notes = _notes(f, decided)
        if notes:
            p.record_notes(row.id, notes)
            for at, kind, _detail in notes:
                log.warning("%s: %s (at %s)", row.id, kind, format_time(at))
            f = facts(row, p.store.timeline(row.id, skip=UNREAD))
        self._due[row.id] = decided.due
        escalations = Counter(e.cause for e in f.escalations)
        handling = Handling(len(row.mitigations), len(f.failures), dict(escalations))
        p.metrics.handled(row.id, f.opened_at, f.first_mitigated_at, handling)


def _notes(f: Facts, decided: Decisions) -> list[tuple[float, Kind, Detail]]:
    """The timeline notes of what the clock decided: failures first, each with its count."""
    notes: list[tuple[float, Kind, Detail]] = []
    for n, fail in enumerate(decided.failed, start=len(f.failures) + 1):
        detail = MitigationFailedDetail(fail.action, fail.mitigated_at, fail.reason, n)
        notes.append((fail.at, Kind.MITIGATION_FAILED, detail))
    for esc in decided.escalate:
        notes.append((esc.at, Kind.ESCALATED, EscalatedDetail(str(esc.cause), esc.reason)))
    return notes
