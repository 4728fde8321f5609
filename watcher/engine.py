"""The resolution rule of DESIGN.md §2 as a pure state machine over event time.

No I/O and no clock: every input carries its time. The daemon and `replay` feed
the same Engine, so the same logs always give the same verdict.

Breaks (errors and gaps) are held *pending* until every source in an
incident's scope has a watermark past them, then applied in time order. That
makes the verdict independent of arrival order: an error that arrives late
but is stamped inside the streak resets it exactly as if it had arrived on
time, and a streak that completed before a later error is still resolved
before that error regresses it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from watcher.events import ErrorEvent, Gap, Kind, State, Transition
from watcher.names import in_scope

# Pending breaks are compacted past this many per incident (see _compact), which
# bounds memory for replay of huge files and for a long backlog of errors.
_COMPACT_AT = 10_000


@dataclass(frozen=True, slots=True, order=True)
class Break:
    """An error (start == end) or a gap [start, end]: the streak cannot span it."""

    start: float
    end: float
    source: str = field(compare=False)
    rule: str | None = field(compare=False)
    """The error rule; None for a gap."""
    message: str = field(compare=False)


@dataclass(slots=True)
class _Incident:
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
    last_error: ErrorEvent | None = None
    pending: list[Break] = field(default_factory=list)

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


class Engine:
    def __init__(self, *, blind_after: float, sources: Iterable[str] = ()) -> None:
        self.blind_after = blind_after
        self._watermarks: dict[str, float | None] = {}
        self._incidents: dict[str, _Incident] = {}
        self._scope_cache: dict[str, tuple[str, ...]] = {}
        for name in sources:
            self.add_source(name)

    # ---- sources -------------------------------------------------------------------

    def add_source(self, name: str) -> None:
        """Make a source known; until it reports a watermark, incidents covering it cannot resolve."""
        if name not in self._watermarks:
            self._watermarks[name] = None
            self._scope_cache.clear()

    def watermark(self, source: str) -> float | None:
        return self._watermarks.get(source)

    def sources(self) -> dict[str, float | None]:
        return dict(self._watermarks)

    def covering(self, source: str) -> list[str]:
        """The open incidents whose scope covers `source` (where a note about it belongs)."""
        return [inc.id for inc in self._open() if inc.covers(source)]

    def advance(self, source: str, at: float) -> list[Transition]:
        """The source has every record up to `at`. Watermarks never go back."""
        self.add_source(source)
        old = self._watermarks[source]
        if old is not None and at <= old:
            return []
        self._watermarks[source] = at
        out: list[Transition] = []
        for inc in self._open():
            if source in self._in_scope(inc):
                out += self._settle(inc)
        return out

    # ---- incident commands ---------------------------------------------------------

    def open(
        self, incident: str, title: str, scope: Sequence[str], window: float, at: float
    ) -> list[Transition]:
        if incident in self._incidents:
            raise ValueError(f"incident {incident} already exists")
        inc = _Incident(incident, title, tuple(scope) or ("*",), window, at)
        self._incidents[incident] = inc
        detail = {
            "title": title,
            "scope": list(inc.scope),
            "window": window,
            "sources": list(self._in_scope(inc)),
        }
        return [Transition(incident, Kind.OPENED, at, inc.state(), detail)]

    def mitigate(self, incident: str, action: str, at: float) -> list[Transition]:
        """The streak clock starts at the latest mitigation (or the last break after it)."""
        inc = self._get_open(incident)
        inc.mitigated_at = at
        inc.mitigations += 1
        inc.streak_start = max(at, inc.last_break_end)
        inc.resolved_at = None
        inc.regressed = False
        out = [
            Transition(
                incident,
                Kind.MITIGATED,
                at,
                inc.state(),
                {"action": action, "streak_start": inc.streak_start},
            )
        ]
        return out + self._settle(inc)

    def close(self, incident: str, reason: str, at: float) -> list[Transition]:
        inc = self._get_open(incident)
        inc.closed_at = at
        inc.pending.clear()
        return [Transition(incident, Kind.CLOSED, at, inc.state(), {"reason": reason})]

    # ---- observations --------------------------------------------------------------

    def observe(self, event: ErrorEvent) -> list[Transition]:
        """An error event; it takes effect once the watermarks of the scope pass its time."""
        if event.at is None:
            raise ValueError("an error event needs a time to count for the streak")
        at = event.at
        brk = Break(at, at, event.source, event.rule, event.message)
        out: list[Transition] = []
        for inc in self._open():
            if not inc.covers(event.source):
                continue
            inc.errors += 1
            last = inc.last_error
            if last is None or last.at is None or at >= last.at:
                inc.last_error = event
            out += self._add_break(inc, brk)
        return out

    def gap(self, gap: Gap) -> list[Transition]:
        """A span that can never be read back: recorded, and it counts like an error."""
        brk = Break(gap.start, gap.end, gap.source, None, gap.reason)
        out: list[Transition] = []
        for inc in self._open():
            if not inc.covers(gap.source):
                continue
            inc.gaps += 1
            detail = {
                "source": gap.source,
                "start": gap.start,
                "end": gap.end,
                "reason": gap.reason,
            }
            out.append(Transition(inc.id, Kind.GAP, gap.start, inc.state(), detail))
            out += self._add_break(inc, brk)
        return out

    def count_lines(self, source: str, n: int) -> None:
        """Lines read from `source`: the evidence a resolution announcement quotes."""
        for inc in self._open():
            if inc.mitigated_at is not None and inc.covers(source):
                inc.lines += n

    def tick(self, now: float) -> list[Transition]:
        """Blind detection: a verifying incident whose sources lag `now` by more than blind_after."""
        out: list[Transition] = []
        for inc in self._open():
            if inc.mitigated_at is None or inc.resolved_at is not None:
                continue
            lagging = self._lagging(inc, now)
            if lagging and not inc.blind:
                inc.blind = lagging
                out.append(Transition(inc.id, Kind.BLIND, now, inc.state(), {"sources": list(lagging)}))
            elif not lagging and inc.blind:
                was = inc.blind
                inc.blind = ()
                out.append(Transition(inc.id, Kind.RECOVERED, now, inc.state(), {"sources": list(was)}))
            elif lagging != inc.blind:
                inc.blind = lagging
        return out

    # ---- queries ------------------------------------------------------------------

    def incident_ids(self) -> list[str]:
        return list(self._incidents)

    def status(self, incident: str) -> IncidentStatus:
        inc = self._incidents[incident]
        verified = self._verified_to(inc)
        mitigated = inc.mitigated_at is not None
        streak = verified - inc.streak_start if mitigated and verified is not None else 0.0
        return IncidentStatus(
            id=inc.id,
            title=inc.title,
            state=inc.state(),
            scope=inc.scope,
            window=inc.window,
            opened_at=inc.opened_at,
            mitigated_at=inc.mitigated_at,
            streak_start=inc.streak_start if mitigated else None,
            verified_to=verified,
            clean_streak=max(0.0, streak),
            resolved_at=inc.resolved_at,
            errors=inc.errors,
            gaps=inc.gaps,
            lines=inc.lines,
            last_error=inc.last_error,
            blind_sources=inc.blind,
            sources=self._in_scope(inc),
        )

    # ---- persistence ---------------------------------------------------------------

    def snapshot(self) -> dict[str, object]:
        """Everything needed to continue after a restart, as JSON-safe values."""
        incidents = []
        for inc in self._incidents.values():
            d = asdict(inc)
            d["pending"] = [[b.start, b.end, b.source, b.rule, b.message] for b in inc.pending]
            d["last_error"] = asdict(inc.last_error) if inc.last_error else None
            for key in ("streak_start", "last_break_end"):
                d[key] = None if math.isinf(d[key]) else d[key]
            incidents.append(d)
        return {"version": 1, "watermarks": self._watermarks, "incidents": incidents}

    @classmethod
    def restore(cls, snap: dict[str, object], *, blind_after: float, sources: Iterable[str] = ()) -> Engine:
        eng = cls(blind_after=blind_after, sources=sources)
        eng._watermarks.update(snap["watermarks"])  # type: ignore[call-overload]
        for d in snap["incidents"]:  # type: ignore[attr-defined]
            if d["closed_at"] is not None:
                continue  # history: the store keeps closed incidents and their timelines
            d = dict(d)
            d["scope"] = tuple(d["scope"])
            d["blind"] = tuple(d["blind"])
            d["pending"] = [Break(*p) for p in d["pending"]]
            d["last_error"] = ErrorEvent(**d["last_error"]) if d["last_error"] else None
            for key in ("streak_start", "last_break_end"):
                d[key] = -math.inf if d[key] is None else d[key]
            eng._incidents[d["id"]] = _Incident(**d)
        return eng

    # ---- the rule ------------------------------------------------------------------

    def _add_break(self, inc: _Incident, brk: Break) -> list[Transition]:
        bisect.insort(inc.pending, brk)
        if len(inc.pending) > _COMPACT_AT:
            _compact(inc)
        return self._settle(inc)

    def _settle(self, inc: _Incident) -> list[Transition]:
        """Apply, in time order, every pending break the scope's watermarks have passed."""
        verified = self._verified_to(inc)
        if verified is None:
            return []
        out: list[Transition] = []
        n = bisect.bisect_right(inc.pending, verified, key=lambda b: b.start)
        for brk in inc.pending[:n]:
            out += self._apply(inc, brk)
        del inc.pending[:n]
        if self._streak_complete(inc, verified, inclusive=True):
            out.append(self._resolve(inc))
        return out

    def _apply(self, inc: _Incident, brk: Break) -> list[Transition]:
        out: list[Transition] = []
        if self._streak_complete(inc, brk.start, inclusive=False):
            out.append(self._resolve(inc))
        inc.last_break_end = max(inc.last_break_end, brk.end)
        if inc.mitigated_at is None or brk.end <= inc.streak_start:
            return out  # before the streak started: it has no effect on it
        inc.streak_start = brk.end
        detail = {
            "source": brk.source,
            "rule": brk.rule,
            "message": brk.message,
            "streak_start": brk.end,
        }
        if inc.resolved_at is not None:
            inc.resolved_at = None
            inc.regressed = True
            out.append(Transition(inc.id, Kind.REGRESSED, brk.start, inc.state(), detail))
        elif brk.rule is not None:
            out.append(Transition(inc.id, Kind.STREAK_RESET, brk.start, inc.state(), detail))
        return out

    def _streak_complete(self, inc: _Incident, upto: float, *, inclusive: bool) -> bool:
        if inc.mitigated_at is None or inc.resolved_at is not None:
            return False
        end = inc.streak_start + inc.window
        return end <= upto if inclusive else end < upto

    def _resolve(self, inc: _Incident) -> Transition:
        inc.resolved_at = inc.streak_start + inc.window
        inc.blind = ()
        detail = {
            "streak_start": inc.streak_start,
            "window": inc.window,
            "sources": list(self._in_scope(inc)),
            "lines": inc.lines,
        }
        return Transition(inc.id, Kind.RESOLVED, inc.resolved_at, inc.state(), detail)

    def _lagging(self, inc: _Incident, now: float) -> tuple[str, ...]:
        scope = self._in_scope(inc)
        if not scope:
            return ("(no source matches the scope)",)
        return tuple(s for s in scope if (wm := self._watermarks[s]) is None or now - wm > self.blind_after)

    def _verified_to(self, inc: _Incident) -> float | None:
        scope = self._in_scope(inc)
        if not scope:
            return None
        marks = [self._watermarks[s] for s in scope]
        if any(m is None for m in marks):
            return None
        return min(m for m in marks if m is not None)

    def _in_scope(self, inc: _Incident) -> tuple[str, ...]:
        cached = self._scope_cache.get(inc.id)
        if cached is None:
            cached = tuple(s for s in self._watermarks if inc.covers(s))
            self._scope_cache[inc.id] = cached
        return cached

    def _open(self) -> list[_Incident]:
        return [i for i in self._incidents.values() if i.closed_at is None]

    def _get_open(self, incident: str) -> _Incident:
        inc = self._incidents.get(incident)
        if inc is None:
            raise KeyError(f"no incident {incident}")
        if inc.closed_at is not None:
            raise ValueError(f"incident {incident} is closed")
        return inc


def _compact(inc: _Incident) -> None:
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
