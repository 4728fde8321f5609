"""An incident's record built by hand, as the store would hand it back: for the pure runbook tests."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from watcher.details import (
    BreakDetail,
    ClosedDetail,
    Detail,
    EscalatedDetail,
    MitigatedDetail,
    MitigationFailedDetail,
    OpenedDetail,
    ResolvedDetail,
    TextDetail,
)
from watcher.events import Kind
from watcher.facts import Facts, facts
from watcher.store.rows import IncidentRow, MitigationRow, TimelineRow

T0 = 1_796_000_000.0
"""When the incident opened."""
W = 900.0


@dataclass
class Record:
    """An incident's row and timeline, added to step by step."""

    row: IncidentRow = field(
        default_factory=lambda: IncidentRow(
            "P1-x", "live view black", ("*",), W, T0, None, None, (), opened_by="alice@bastion"
        )
    )
    rows: list[TimelineRow] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.add(
            self.row.opened_at, Kind.OPENED, OpenedDetail(self.row.title, self.row.scope, W), "investigating"
        )

    def add(self, at: float, kind: Kind, detail: Detail, state: str | None = None) -> Record:
        """A timeline row; a transition's `state` is the one it left the incident in."""
        self.rows.append(TimelineRow(self.row.id, at, kind, state, detail, at, len(self.rows)))
        return self

    def mitigate(self, at: float, action: str) -> Record:
        mitigations = (*self.row.mitigations, MitigationRow(at, action, "alice@bastion"))
        self.row = replace(self.row, mitigations=tuple(sorted(mitigations, key=lambda m: m.at)))
        return self.add(at, Kind.MITIGATED, MitigatedDetail(action, at), "verifying")

    def hypothesis(self, at: float, text: str = "deploy 14:02 broke the SFU") -> Record:
        return self.add(at, Kind.HYPOTHESIS, TextDetail(text, "alice@bastion"))

    def resolve(self, at: float) -> Record:
        detail = ResolvedDetail(at - W, W, ("cloud/api", "gw/gw-berlin-01"), 48_211)
        return self.add(at, Kind.RESOLVED, detail, "resolved")

    def regress(self, at: float) -> Record:
        return self.add(at, Kind.REGRESSED, BreakDetail("edge", "level", "boom", at), "regressed")

    def failed(self, at: float, mitigated_at: float, action: str, n: int) -> Record:
        why = "not resolved within 30m (twice its window)"
        return self.add(at, Kind.MITIGATION_FAILED, MitigationFailedDetail(action, mitigated_at, why, n))

    def escalated(self, at: float, cause: str) -> Record:
        return self.add(at, Kind.ESCALATED, EscalatedDetail(cause, f"{cause} (the runbook's rule)"))

    def reopen(self, at: float) -> Record:
        self.row = replace(self.row, closed_at=None, close_reason=None, closed_by=None)
        detail = OpenedDetail(self.row.title, self.row.scope, W, by="bob@bastion")
        return self.add(at, Kind.REOPENED, detail, "investigating")

    def close(self, at: float) -> Record:
        self.row = replace(self.row, closed_at=at, close_reason="done", closed_by="bob@bastion")
        return self.add(at, Kind.CLOSED, ClosedDetail("done"), "closed")

    def facts(self) -> Facts:
        return facts(self.row, self.rows)
