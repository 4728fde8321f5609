"""The resolution rule (docs/architecture.md, "The resolution rule") as a pure state machine.

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from watcher.details import (
    BreakDetail,
    ClosedDetail,
    GapDetail,
    MitigatedDetail,
    OpenedDetail,
    ResolvedDetail,
    SourcesDetail,
    Transition,
)
from watcher.engine.incident import Break, EngineState, Incident, IncidentStatus, compact
from watcher.events import ErrorEvent, Gap, Kind, clip

# Pending breaks are compacted past this many per incident (see incident.compact),
# which bounds memory for replay of huge files and for a long backlog of errors.
_COMPACT_AT = 10_000
STATE_VERSION = 1
"""The shape of `Engine.snapshot()`; a snapshot of another version is refused, never misread."""


class Engine:
    def __init__(self, *, blind_after: float, sources: Iterable[str] = ()) -> None:
        self.blind_after = blind_after
        self._watermarks: dict[str, float | None] = {}
        self._incidents: dict[str, Incident] = {}
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

    # ---- incident commands (the daemon has checked that the incident exists and is open) ----

    def open(
        self, incident: str, title: str, scope: Sequence[str], window: float, at: float
    ) -> list[Transition]:
        inc = Incident(incident, title, tuple(scope) or ("*",), window, at)
        self._incidents[incident] = inc
        detail = OpenedDetail(title, inc.scope, window, self._in_scope(inc))
        return [Transition(incident, Kind.OPENED, at, inc.state(), detail)]

    def mitigate(self, incident: str, action: str, at: float) -> list[Transition]:
        """The streak clock starts at the latest mitigation (or the last break after it)."""
        inc = self._incidents[incident]
        inc.mitigated_at = at
        inc.mitigations += 1
        inc.streak_start = max(at, inc.last_break_end)
        inc.resolved_at = None
        inc.regressed = False
        detail = MitigatedDetail(action, inc.streak_start)
        return [Transition(incident, Kind.MITIGATED, at, inc.state(), detail), *self._settle(inc)]

    def close(self, incident: str, reason: str, at: float) -> list[Transition]:
        inc = self._incidents[incident]
        inc.closed_at = at
        inc.pending.clear()
        return [Transition(incident, Kind.CLOSED, at, inc.state(), ClosedDetail(reason))]

    # ---- observations --------------------------------------------------------------

    def observe(self, event: ErrorEvent) -> list[Transition]:
        """An error event; it takes effect once the watermarks of the scope pass its time.

        Its message is clipped (events.clip): the state, the timeline and the announcements
        keep a few KiB of a line, however long the line was.
        """
        if event.at is None:
            raise ValueError("an error event needs a time to count for the streak")
        at = event.at
        if len(message := clip(event.message)) != len(event.message):
            event = replace(event, message=message)
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
            detail = GapDetail(gap.source, gap.start, gap.end, gap.reason)
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
                out.append(Transition(inc.id, Kind.BLIND, now, inc.state(), SourcesDetail(lagging)))
            elif not lagging and inc.blind:
                was = inc.blind
                inc.blind = ()
                out.append(Transition(inc.id, Kind.RECOVERED, now, inc.state(), SourcesDetail(was)))
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

    def snapshot(self) -> EngineState:
        """Everything needed to continue after a restart, as JSON-safe values."""
        return {
            "version": STATE_VERSION,
            "watermarks": dict(self._watermarks),
            "incidents": [inc.to_state() for inc in self._incidents.values()],
        }

    @classmethod
    def restore(
        cls,
        snap: Mapping[str, object],
        *,
        blind_after: float,
        sources: Iterable[str] = (),
        watermarks: Mapping[str, float | None] | None = None,
    ) -> Engine:
        """The engine `snapshot()` saved; ValueError when it is not a snapshot this version wrote.

        `watermarks` (the resume points) may be newer than the snapshot's: the daemon does
        not rewrite the snapshot when only watermarks moved, which it only skips when
        moving them changed no incident, so the newer of the two is the engine's.
        """
        if snap.get("version") != STATE_VERSION:
            raise ValueError(
                f"the saved engine state has version {snap.get('version')!r}; this watcher reads "
                f"version {STATE_VERSION}"
            )
        eng = cls(blind_after=blind_after, sources=sources)
        marks = snap.get("watermarks")
        for name, mark in marks.items() if isinstance(marks, Mapping) else ():
            eng._watermarks[str(name)] = float(mark) if isinstance(mark, int | float) else None
        for name, mark in (watermarks or {}).items():
            old = eng._watermarks.get(name)
            if mark is not None and (old is None or mark > old):
                eng._watermarks[name] = mark
        listed = snap.get("incidents")
        for item in listed if isinstance(listed, list) else []:
            inc = Incident.from_state(item)
            if inc.closed_at is None:  # closed ones are history: the store keeps them and their timelines
                eng._incidents[inc.id] = inc
        return eng

    # ---- the rule ------------------------------------------------------------------

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
        if self._streak_complete(inc, verified, inclusive=True):
            out.append(self._resolve(inc))
        return out

    def _apply(self, inc: Incident, brk: Break) -> list[Transition]:
        out: list[Transition] = []
        if self._streak_complete(inc, brk.start, inclusive=False):
            out.append(self._resolve(inc))
        inc.last_break_end = max(inc.last_break_end, brk.end)
        if inc.mitigated_at is None or brk.end <= inc.streak_start:
            return out  # before the streak started: it has no effect on it
        inc.streak_start = brk.end
        detail = BreakDetail(brk.source, brk.rule, brk.message, brk.end)
        if inc.resolved_at is not None:
            inc.resolved_at = None
            inc.regressed = True
            out.append(Transition(inc.id, Kind.REGRESSED, brk.start, inc.state(), detail))
        elif brk.rule is not None:
            out.append(Transition(inc.id, Kind.STREAK_RESET, brk.start, inc.state(), detail))
        return out

    def _streak_complete(self, inc: Incident, upto: float, *, inclusive: bool) -> bool:
        if inc.mitigated_at is None or inc.resolved_at is not None:
            return False
        end = inc.streak_start + inc.window
        return end <= upto if inclusive else end < upto

    def _resolve(self, inc: Incident) -> Transition:
        inc.resolved_at = inc.streak_start + inc.window
        inc.blind = ()
        detail = ResolvedDetail(inc.streak_start, inc.window, self._in_scope(inc), inc.lines)
        return Transition(inc.id, Kind.RESOLVED, inc.resolved_at, inc.state(), detail)

    def _lagging(self, inc: Incident, now: float) -> tuple[str, ...]:
        scope = self._in_scope(inc)
        if not scope:
            return ("(no source matches the scope)",)
        return tuple(s for s in scope if (wm := self._watermarks[s]) is None or now - wm > self.blind_after)

    def _verified_to(self, inc: Incident) -> float | None:
        scope = self._in_scope(inc)
        if not scope:
            return None
        marks = [self._watermarks[s] for s in scope]
        if any(m is None for m in marks):
            return None
        return min(m for m in marks if m is not None)

    def _in_scope(self, inc: Incident) -> tuple[str, ...]:
        cached = self._scope_cache.get(inc.id)
        if cached is None:
            cached = tuple(s for s in self._watermarks if inc.covers(s))
            self._scope_cache[inc.id] = cached
        return cached

    def _open(self) -> list[Incident]:
        return [i for i in self._incidents.values() if i.closed_at is None]
