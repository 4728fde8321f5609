"""One incident as the engine keeps it, what it reports, and how it is saved.

`Incident` is the engine's mutable record (package-internal); `IncidentStatus` is
the frozen view everyone else reads. `to_state`/`from_state` are the incident's
part of the versioned engine snapshot the daemon commits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypedDict

from watcher.engine.evidence import Blocker, SourceEvidence
from watcher.engine.impact import Impact, ImpactSummary
from watcher.events import ErrorEvent, State, clip
from watcher.names import in_scope


class IncidentState(TypedDict):
    """An incident in the engine snapshot (JSON): the fields of `Incident`, infinities as null."""

    id: str
    title: str
    scope: list[str]
    window: float
    opened_at: float
    mitigated_at: float | None
    mitigations: int
    streak_start: float | None
    last_break_end: float | None
    resolved_at: float | None
    regressed: bool
    blind: list[str]
    closed_at: float | None
    errors: int
    gaps: int
    lines: int
    lines_by_source: dict[str, int]
    last_error: dict[str, object] | None
    pending: list[list[object]]
    orgs: list[str]


class TrackState(TypedDict):
    """A source's evidence in the engine snapshot (engine/evidence.py, `Track`)."""

    down: list[object] | None
    alive_since: float | None
    last_seen: float | None
    activity: list[list[float]]


class EngineState(TypedDict):
    version: int
    watermarks: dict[str, float | None]
    tracks: dict[str, TrackState]
    incidents: list[IncidentState]


@dataclass(frozen=True, slots=True, order=True)
class Break:
    """An error (start == end) or a gap [start, end]: the streak cannot span it."""

    start: float
    end: float
    source: str = field(compare=False)
    rule: str | None = field(compare=False)
    """The error rule; None for a gap."""
    message: str = field(compare=False)
    stamped: float | None = field(default=None, compare=False)
    """An error's own stamp when it was not trusted and the error counts at its arrival."""


@dataclass(slots=True)
class Incident:
    id: str
    title: str
    scope: tuple[str, ...]
    window: float
    opened_at: float
    mitigated_at: float | None = None
    mitigations: int = 0
    streak_start: float = -math.inf
    last_break_end: float = -math.inf
    resolved_at: float | None = None
    regressed: bool = False
    blind: tuple[str, ...] = ()
    closed_at: float | None = None
    errors: int = 0
    gaps: int = 0
    lines: int = 0
    lines_by_source: dict[str, int] = field(default_factory=dict)
    """Lines read since the mitigation, per source: the evidence a verdict names."""
    last_error: ErrorEvent | None = None
    pending: list[Break] = field(default_factory=list)
    orgs: tuple[str, ...] = ()
    """The orgs named on it (`--org`)."""
    impact: Impact = field(default_factory=lambda: Impact(0))
    """Saved by the store row by row, not in `to_state` (engine/impact.py)."""

    def state(self) -> State:
        if self.closed_at is not None:
            return State.CLOSED
        if self.mitigated_at is None:
            return State.INVESTIGATING
        if self.resolved_at is not None:
            return State.RESOLVED
        if self.blind:
            return State.BLIND
        return State.REGRESSED if self.regressed else State.VERIFYING

    def covers(self, source: str) -> bool:
        return in_scope(source, self.scope)

    def to_state(self) -> IncidentState:
        last = self.last_error
        return {
            "id": self.id,
            "title": self.title,
            "scope": list(self.scope),
            "window": self.window,
            "opened_at": self.opened_at,
            "mitigated_at": self.mitigated_at,
            "mitigations": self.mitigations,
            "streak_start": None if math.isinf(self.streak_start) else self.streak_start,
            "last_break_end": None if math.isinf(self.last_break_end) else self.last_break_end,
            "resolved_at": self.resolved_at,
            "regressed": self.regressed,
            "blind": list(self.blind),
            "closed_at": self.closed_at,
            "errors": self.errors,
            "gaps": self.gaps,
            "lines": self.lines,
            "lines_by_source": dict(self.lines_by_source),
            "last_error": None if last is None else asdict(last),
            "pending": [[b.start, b.end, b.source, b.rule, b.message, b.stamped] for b in self.pending],
            "orgs": list(self.orgs),
        }

    @classmethod
    def from_state(cls, d: Mapping[str, object]) -> Incident:
        """An incident from `to_state()`'s JSON (the version was checked by the caller)."""
        get = d.get
        last = get("last_error")
        by_source = get("lines_by_source")
        return cls(
            id=str(get("id")),
            title=str(get("title")),
            scope=tuple(map(str, _list(get("scope")))),
            window=_float(get("window")),
            opened_at=_float(get("opened_at")),
            mitigated_at=_maybe(get("mitigated_at")),
            mitigations=int(_float(get("mitigations"))),
            streak_start=_or_past(get("streak_start")),
            last_break_end=_or_past(get("last_break_end")),
            resolved_at=_maybe(get("resolved_at")),
            regressed=bool(get("regressed")),
            blind=tuple(map(str, _list(get("blind")))),
            closed_at=_maybe(get("closed_at")),
            errors=int(_float(get("errors"))),
            gaps=int(_float(get("gaps"))),
            lines=int(_float(get("lines"))),
            lines_by_source={
                str(k): int(_float(v)) for k, v in (by_source.items() if isinstance(by_source, dict) else ())
            },
            last_error=_error(last) if isinstance(last, dict) else None,
            pending=[_break(p) for p in _list(get("pending"))],
            orgs=tuple(map(str, _list(get("orgs")))),
        )


@dataclass(frozen=True, slots=True)
class IncidentStatus:
    id: str
    title: str
    state: State
    scope: tuple[str, ...]
    window: float
    opened_at: float
    mitigated_at: float | None
    streak_start: float | None
    verified_to: float | None
    clean_streak: float
    resolved_at: float | None
    errors: int
    gaps: int
    lines: int
    last_error: ErrorEvent | None
    blind_sources: tuple[str, ...]
    sources: tuple[str, ...]
    blockers: tuple[Blocker, ...] = ()
    """Why it cannot resolve now, beyond a streak still short of its window (DESIGN §2.1)."""
    evidence: tuple[SourceEvidence, ...] = ()
    """Per source in scope: lines checked, running or not, the span proven."""
    impact: ImpactSummary = field(default_factory=ImpactSummary)
    """Whom its errors hit (engine/impact.py)."""


def compact(inc: Incident) -> None:
    """Drop error breaks that cannot change the verdict.

    An error strictly between two breaks p and n with `n.start - p.end <= window`
    changes nothing: no full window fits between p and n either way, and the
    streak after n starts at n's end regardless.
    """
    kept: list[Break] = []
    pending = inc.pending
    for i, brk in enumerate(pending):
        between = 0 < i < len(pending) - 1
        if between and brk.rule is not None and pending[i + 1].start - kept[-1].end <= inc.window:
            continue
        kept.append(brk)
    inc.pending = kept


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _float(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"the saved engine state has {value!r} where a number belongs")


def _maybe(value: object) -> float | None:
    return None if value is None else _float(value)


def _or_past(value: object) -> float:
    """A time that was saved as null because it was -inf (no streak or break yet)."""
    return -math.inf if value is None else _float(value)


def _break(value: object) -> Break:
    """A pending break: [start, end, source, rule, message] (version 1) and its own stamp (2)."""
    items = value if isinstance(value, list) else [None] * 5
    start, end, source, rule, message = items[:5]
    stamped = _maybe(items[5]) if len(items) > 5 else None
    return Break(
        _float(start),
        _float(end),
        str(source),
        None if rule is None else str(rule),
        clip(str(message)),
        stamped,
    )


def _error(saved: dict[str, Any]) -> ErrorEvent:
    """The last error of a saved incident; clipped, as one saved before messages were bounded may be long."""
    event = ErrorEvent(**saved)
    return replace(event, message=clip(event.message))
