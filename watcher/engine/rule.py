"""The resolution rule over incidents and the evidence of their sources: the core of `Engine`.

`Rule` holds what the engine knows (per source a `Track`, per incident an `Incident`)
and applies the rule to it: pending breaks settle in time order once the watermarks of
a scope pass them, and a streak resolves at the first time R >= streak_start + window at
which every source in scope that is not `quiet_ok` has a record in (R - window, R].
`Engine` (machine.py) turns its inputs into calls of these.
"""

from __future__ import annotations

import bisect
import math

from watcher.details import BreakDetail, ResolvedDetail, Transition
from watcher.engine import report
from watcher.engine.evidence import Track
from watcher.engine.incident import Break, Incident, compact
from watcher.events import Kind

# Pending breaks are compacted past this many per incident (see incident.compact),
# which bounds memory for replay of huge files and for a long backlog of errors.
_COMPACT_AT = 10_000
DEFAULT_WIDTH = 30.0
"""Activity run width while no incident is open (then the smallest open window / 2)."""


class Rule:
    def __init__(self) -> None:
        self._tracks: dict[str, Track] = {}
        self._incidents: dict[str, Incident] = {}
        self._scope_cache: dict[str, tuple[str, ...]] = {}
        self._width = DEFAULT_WIDTH

    def _rewidth(self) -> None:
        """Activity runs half as wide as the smallest open window (engine/evidence.py, Activity)."""
        opened = [i.window for i in self._open()]
        self._width = min(opened) / 2 if opened else DEFAULT_WIDTH

    def _settle_covering(self, source: str) -> list[Transition]:
        out: list[Transition] = []
        for inc in self._open():
            if source in self._in_scope(inc):
                out += self._settle(inc)
        return out

    def _add_break(self, inc: Incident, brk: Break) -> list[Transition]:
        bisect.insort(inc.pending, brk)
        if len(inc.pending) > _COMPACT_AT:
            compact(inc)
        return self._settle(inc)

    def _settle(self, inc: Incident) -> list[Transition]:
        """Apply, in time order, every pending break the scope's watermarks have passed."""
        verified = self._verified_to(inc)
        if verified is None:
            return []
        out: list[Transition] = []
        n = bisect.bisect_right(inc.pending, verified, key=lambda b: b.start)
        for brk in inc.pending[:n]:
            out += self._apply(inc, brk)
        del inc.pending[:n]
        resolved_at = self._resolution(inc, verified, inclusive=True)
        if resolved_at is not None:
            out.append(self._resolve(inc, resolved_at))
        return out

    def _apply(self, inc: Incident, brk: Break) -> list[Transition]:
        out: list[Transition] = []
        resolved_at = self._resolution(inc, brk.start, inclusive=False)
        if resolved_at is not None:
            out.append(self._resolve(inc, resolved_at))
        inc.last_break_end = max(inc.last_break_end, brk.end)
        if inc.mitigated_at is None or brk.end <= inc.streak_start:
            return out  # before the streak started: it has no effect on it
        inc.streak_start = brk.end
        detail = BreakDetail(brk.source, brk.rule, brk.message, brk.end, brk.stamped)
        if inc.resolved_at is not None:
            inc.resolved_at = None
            inc.regressed = True
            out.append(Transition(inc.id, Kind.REGRESSED, brk.start, inc.state(), detail))
        elif brk.rule is not None:
            out.append(Transition(inc.id, Kind.STREAK_RESET, brk.start, inc.state(), detail))
        return out

    def _resolution(self, inc: Incident, upto: float, *, inclusive: bool) -> float | None:
        """The first time the streak is a full window with a record of every source that needs
        one in the window's last `window` seconds, if that is at most `upto` (before it, unless
        `inclusive`); None otherwise."""
        if inc.mitigated_at is None or inc.resolved_at is not None:
            return None
        earliest = inc.streak_start + inc.window
        if earliest > upto or (earliest == upto and not inclusive):
            return None
        needy = [t for s in self._in_scope(inc) if not (t := self._tracks[s]).expect.quiet_ok]
        candidates = sorted({earliest, *(f for t in needy for f in t.activity.starts(earliest, upto))})
        for at in candidates:
            if at == upto and not inclusive:
                break
            if all(t.activity.holds(at, inc.window) for t in needy):
                return at
        return None

    def _resolve(self, inc: Incident, at: float) -> Transition:
        inc.resolved_at = at
        inc.blind = ()
        scope = self._in_scope(inc)
        evidence = report.evidence(inc, scope, self._tracks, upto=at)
        impact = inc.impact.summary(at, inc.window).lines()
        detail = ResolvedDetail(
            inc.streak_start, inc.window, scope, inc.lines, tuple(e.text() for e in evidence), impact
        )
        return Transition(inc.id, Kind.RESOLVED, at, inc.state(), detail)

    def _horizon(self) -> float:
        """Records before this cannot be in any window an open incident will still check."""
        starts = [
            i.streak_start for i in self._open() if i.mitigated_at is not None and i.resolved_at is None
        ]
        return min(starts, default=math.inf)

    def _verified_to(self, inc: Incident) -> float | None:
        scope = self._in_scope(inc)
        if not scope:
            return None
        marks = [self._tracks[s].effective() for s in scope]
        if any(m is None for m in marks):
            return None
        return min(m for m in marks if m is not None)

    def _in_scope(self, inc: Incident) -> tuple[str, ...]:
        cached = self._scope_cache.get(inc.id)
        if cached is None:
            cached = tuple(s for s in self._tracks if inc.covers(s))
            self._scope_cache[inc.id] = cached
        return cached

    def _open(self) -> list[Incident]:
        return [i for i in self._incidents.values() if i.closed_at is None]
