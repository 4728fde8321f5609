"""What an incident's record proves, for the head of its timeline, the runbook's clock and the
postmortem.

Pure: from the incident's row and its timeline rows (watcher.store), in event time.
When it opened and who opened it, the first mitigation and how many followed, the
resolution that stands (a RESOLVED that a later REGRESSED overturned does not), the
times to mitigate and to resolve from the opening, the regressions, and the spans the
watcher was blind or a source had a gap; what people wrote (notes, hypotheses) and what
the runbook's clock decided (failed mitigations, escalations); when impact was confirmed
and the evidence snapshots taken. Who did each mitigation is joined from the incident's
mitigations (the transition and the row are stamped with the same instant).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from watcher.details import (
    ChangedDetail,
    EscalatedDetail,
    GapDetail,
    MitigatedDetail,
    MitigationFailedDetail,
    OpenedDetail,
    SnapshotDetail,
    TextDetail,
)
from watcher.events import Kind
from watcher.store.rows import IncidentRow, TimelineRow


@dataclass(frozen=True, slots=True)
class Span:
    start: float
    end: float | None
    """None while it lasts."""

    def length(self, now: float) -> float:
        return max(0.0, (self.end if self.end is not None else now) - self.start)


@dataclass(frozen=True, slots=True)
class Entry:
    """What a person wrote on the timeline (a note, a hypothesis)."""

    at: float
    text: str
    by: str


@dataclass(frozen=True, slots=True)
class Failure:
    """A mitigation the runbook's clock found failed, at `at`."""

    at: float
    mitigated_at: float | None
    action: str
    reason: str


@dataclass(frozen=True, slots=True)
class Escalation:
    at: float
    cause: str
    reason: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    detail: SnapshotDetail


@dataclass(frozen=True, slots=True)
class Facts:
    opened_at: float
    opened_by: str
    first_mitigated_at: float | None
    mitigations: int
    resolved_at: float | None
    """The resolution that stands: None while unresolved or after a regression."""
    first_resolved_at: float | None
    regressions: int
    blind: tuple[Span, ...]
    gaps: tuple[Span, ...]
    closed_at: float | None
    closed_by: str | None
    close_reason: str | None
    reopened_at: float | None = None
    """The latest reopening: the runbook's clock judges mitigations from it."""
    resolutions: tuple[float, ...] = ()
    regressed: tuple[float, ...] = ()
    hypotheses: tuple[Entry, ...] = ()
    notes: tuple[Entry, ...] = ()
    failures: tuple[Failure, ...] = ()
    escalations: tuple[Escalation, ...] = ()
    impact_confirmed_at: float | None = None
    snapshots: tuple[Snapshot, ...] = ()

    @property
    def time_to_mitigate(self) -> float | None:
        return None if self.first_mitigated_at is None else self.first_mitigated_at - self.opened_at

    @property
    def time_to_resolve(self) -> float | None:
        return None if self.resolved_at is None else self.resolved_at - self.opened_at


UNREAD: frozenset[Kind] = frozenset({Kind.STREAK_RESET})
"""Kinds `facts` never reads. An error storm writes a streak reset per error; whoever needs only
the facts can ask the store for the timeline without them."""


def facts(incident: IncidentRow, rows: Sequence[TimelineRow]) -> Facts:
    ordered = in_event_order(rows)
    resolved = [r.at for r in ordered if r.kind is Kind.RESOLVED]
    regressed = [r.at for r in ordered if r.kind is Kind.REGRESSED]
    confirmed = [r.at for r in ordered if r.kind is Kind.IMPACT_CONFIRMED]
    reopened = [r.at for r in ordered if r.kind is Kind.REOPENED]
    return Facts(
        opened_at=incident.opened_at,
        opened_by=incident.opened_by,
        first_mitigated_at=incident.mitigations[0].at if incident.mitigations else None,
        mitigations=len(incident.mitigations),
        resolved_at=_standing(ordered),
        first_resolved_at=resolved[0] if resolved else None,
        regressions=len(regressed),
        blind=_blind(ordered),
        gaps=tuple(_gap(r) for r in ordered if r.kind is Kind.GAP),
        closed_at=incident.closed_at,
        closed_by=incident.closed_by,
        close_reason=incident.close_reason,
        reopened_at=reopened[-1] if reopened else None,
        resolutions=tuple(resolved),
        regressed=tuple(regressed),
        hypotheses=_entries(ordered, Kind.HYPOTHESIS),
        notes=_entries(ordered, Kind.NOTE),
        failures=tuple(
            Failure(r.at, r.detail.mitigated_at, r.detail.action, r.detail.reason)
            for r in ordered
            if isinstance(r.detail, MitigationFailedDetail)
        ),
        escalations=tuple(
            Escalation(r.at, r.detail.cause, r.detail.reason)
            for r in ordered
            if isinstance(r.detail, EscalatedDetail)
        ),
        impact_confirmed_at=confirmed[0] if confirmed else None,
        snapshots=tuple(Snapshot(r.at, r.detail) for r in ordered if isinstance(r.detail, SnapshotDetail)),
    )


def _standing(ordered: Sequence[TimelineRow]) -> float | None:
    """The resolution that stands: the last RESOLVED, unless a REGRESSED or REOPENED followed it."""
    standing: float | None = None
    for r in ordered:
        if r.kind is Kind.RESOLVED:
            standing = r.at
        elif r.kind in (Kind.REGRESSED, Kind.REOPENED):
            standing = None
    return standing


def _blind(ordered: Sequence[TimelineRow]) -> tuple[Span, ...]:
    blind: list[Span] = []
    since: float | None = None
    for r in ordered:
        if r.kind is Kind.BLIND and since is None:
            since = r.at
        elif r.kind in (Kind.RECOVERED, Kind.RESOLVED, Kind.CLOSED) and since is not None:
            blind.append(Span(since, r.at))
            since = None
    if since is not None:
        blind.append(Span(since, None))
    return tuple(blind)


def _entries(ordered: Sequence[TimelineRow], kind: Kind) -> tuple[Entry, ...]:
    return tuple(
        Entry(r.at, r.detail.text, r.detail.by)
        for r in ordered
        if r.kind is kind and isinstance(r.detail, TextDetail)
    )


def in_event_order(rows: Sequence[TimelineRow]) -> list[TimelineRow]:
    """By event time; what happened at the same instant in the order it was recorded."""
    return sorted(rows, key=lambda r: (r.at, r.seq))


def who(incident: IncidentRow, row: TimelineRow) -> str | None:
    """Who did what a timeline row records, where a person did it: opened, mitigated, closed."""
    if row.kind is Kind.OPENED:
        return incident.opened_by or None
    if isinstance(row.detail, OpenedDetail | TextDetail | ChangedDetail):
        return row.detail.by or None
    if row.kind is Kind.CLOSED:
        return incident.closed_by
    if row.kind is Kind.MITIGATED and isinstance(row.detail, MitigatedDetail):
        action = row.detail.action
        return next((m.by for m in incident.mitigations if m.at == row.at and m.action == action), None)
    if isinstance(row.detail, SnapshotDetail):
        return row.detail.by or None
    return None


def _gap(row: TimelineRow) -> Span:
    d = row.detail
    if isinstance(d, GapDetail) and d.start is not None:
        return Span(d.start, d.end)
    return Span(row.at, row.at)
