"""The resolution rule (docs/architecture.md, "The resolution rule") as a pure state machine.

No I/O and no clock: every input carries its time. The daemon and `replay` feed
the same Engine, so the same logs always give the same verdict.

Breaks (errors and gaps) are held *pending* until every source in an
incident's scope has a watermark past them, then applied in time order. That
makes the verdict independent of arrival order: an error that arrives late
but is stamped inside the streak resets it exactly as if it had arrived on
time, and a streak that completed before a later error is still resolved
before that error regresses it.

Evidence (DESIGN §2.1, evidence.py): a source's watermark only counts up to the
moment it stopped running (`liveness`) or missed its expectation (`seen`); the span
it was down becomes a gap once it runs again. A streak resolves at the first time
R >= streak_start + window at which every source in scope that is not `quiet_ok`
has a record in (R - window, R]; until then `status()` says why it cannot.
"""

from __future__ import annotations

import bisect
import math
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
from watcher.engine import report
from watcher.engine.evidence import Down, Track, counted_at
from watcher.engine.incident import Break, EngineState, Incident, IncidentStatus, compact
from watcher.engine.persist import STATE_VERSION, restore_tracks, save_tracks
from watcher.events import ErrorEvent, Expectation, Gap, Kind, Liveness, clip
from watcher.times import format_duration

# Pending breaks are compacted past this many per incident (see incident.compact),
# which bounds memory for replay of huge files and for a long backlog of errors.
_COMPACT_AT = 10_000
_PRUNE_AT = 64
"""Runs of activity per source past which those no window can need are forgotten."""
_DEFAULT_WIDTH = 30.0
"""Activity run width while no incident is open (then the smallest open window / 2)."""


class Engine:
    def __init__(
        self,
        *,
        blind_after: float,
        sources: Iterable[str] = (),
        expectations: Mapping[str, Expectation] | None = None,
        skew_tolerance: float = math.inf,
    ) -> None:
        self.blind_after = blind_after
        self.skew_tolerance = skew_tolerance
        self._expect = dict(expectations or {})
        self._tracks: dict[str, Track] = {}
        self._incidents: dict[str, Incident] = {}
        self._scope_cache: dict[str, tuple[str, ...]] = {}
        self._width = _DEFAULT_WIDTH
        for name in sources:
            self.add_source(name)

    # ---- sources -------------------------------------------------------------------

    def add_source(self, name: str, expect: Expectation | None = None) -> None:
        """Make a source known; until it reports a watermark, incidents covering it cannot resolve."""
        if expect is not None:
            self._expect[name] = expect
        expect = self._expect.get(name, Expectation())
        track = self._tracks.get(name)
        if track is None:
            self._tracks[name] = Track.new(expect)
            self._scope_cache.clear()
        elif track.expect != expect:
            track.expect = expect
            if expect.liveness and track.down is None and track.alive_since is None:
                track.down = Track.new(expect).down

    def watermark(self, source: str) -> float | None:
        track = self._tracks.get(source)
        return None if track is None else track.watermark

    def sources(self) -> dict[str, float | None]:
        return {name: t.watermark for name, t in self._tracks.items()}

    def down(self, source: str) -> Down | None:
        """Why `source` is not running now (None: running, or it does not report liveness)."""
        track = self._tracks.get(source)
        return None if track is None else track.down

    def covering(self, source: str) -> list[str]:
        """The open incidents whose scope covers `source` (where a note about it belongs)."""
        return [inc.id for inc in self._open() if inc.covers(source)]

    def advance(self, source: str, at: float) -> list[Transition]:
        """The source has every record up to `at`. Watermarks never go back."""
        track = self._track(source)
        if track.watermark is not None and at <= track.watermark:
            return []
        track.watermark = at
        return self._settle_covering(source)

    def liveness(self, report_: Liveness) -> list[Transition]:
        """What the source reads runs (since `at`) or stopped (last known running at `at`).

        A stop caps the source's effective watermark; the next start turns the span
        between them into a gap. A stop reported from before the current run is stale."""
        track = self._track(report_.source)
        if not report_.alive:
            if track.alive_since is not None and report_.at < track.alive_since:
                return []
            since = track.down.since if track.down is not None else report_.at
            track.down, track.alive_since = Down(since, report_.reason), None
            return []
        down, track.down = track.down, None
        if track.alive_since is None or down is not None:
            track.alive_since = report_.at
        if down is None or not math.isfinite(down.since):
            return self._settle_covering(report_.source)
        gap = Gap(report_.source, down.since, max(down.since, report_.at), down.reason)
        return self.gap(gap) + self._settle_covering(report_.source)

    def seen(self, source: str, times: Sequence[float]) -> list[Transition]:
        """Records of `source` (meeting its expect_match, if any) exist at `times`, in read order.

        A span longer than expect_every between two of them is a gap from the earlier one."""
        track = self._track(source)
        out: list[Transition] = []
        every = track.expect.every
        for t in times if every is not None else ():
            last = track.last_seen
            if last is not None and every is not None and t - last > every:
                missed = f"{track.missed()}: nothing for {format_duration(round(t - last, 3))}"
                out += self.gap(Gap(source, last, t, missed))
            if last is None or t > last:
                track.last_seen = t
        if every is None and times:
            newest = max(times)
            if track.last_seen is None or newest > track.last_seen:
                track.last_seen = newest
        track.activity.add_all(times, self._width)
        if len(track.activity) > _PRUNE_AT:
            track.activity.prune(self._horizon())
        return out

    # ---- incident commands (the daemon has checked that the incident exists and is open) ----

    def open(
        self, incident: str, title: str, scope: Sequence[str], window: float, at: float
    ) -> list[Transition]:
        inc = Incident(incident, title, tuple(scope) or ("*",), window, at)
        self._incidents[incident] = inc
        self._width = min(i.window for i in self._open()) / 2
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
        inc.lines_by_source.clear()
        detail = MitigatedDetail(action, inc.streak_start)
        return [Transition(incident, Kind.MITIGATED, at, inc.state(), detail), *self._settle(inc)]

    def close(self, incident: str, reason: str, at: float) -> list[Transition]:
        inc = self._incidents[incident]
        inc.closed_at = at
        inc.pending.clear()
        opened = [i.window for i in self._open()]
        self._width = min(opened) / 2 if opened else _DEFAULT_WIDTH
        return [Transition(incident, Kind.CLOSED, at, inc.state(), ClosedDetail(reason))]

    def closed_before(self, at: float) -> list[str]:
        """The closed incidents it still holds that were closed before `at`."""
        return [i.id for i in self._incidents.values() if i.closed_at is not None and i.closed_at < at]

    def forget(self, incident: str) -> None:
        """Drop a closed incident: the store keeps its record; status and metrics no longer show it."""
        inc = self._incidents.get(incident)
        if inc is not None and inc.closed_at is not None:
            del self._incidents[incident]
            self._scope_cache.pop(incident, None)

    # ---- observations --------------------------------------------------------------

    def observe(self, event: ErrorEvent) -> list[Transition]:
        """An error event; it takes effect once the watermarks of the scope pass the time it counts at.

        Its message is clipped (events.clip): the state, the timeline and the announcements
        keep a few KiB of a line, however long the line was.
        """
        if len(message := clip(event.message)) != len(event.message):
            event = replace(event, message=message)
        out: list[Transition] = []
        for inc in self._open():
            if not inc.covers(event.source):
                continue
            at, stamped = counted_at(event, inc.mitigated_at, self.skew_tolerance)
            inc.errors += 1
            last = inc.last_error
            if last is None or last.at is None or at >= last.at:
                inc.last_error = ErrorEvent(event.source, at, event.rule, event.message, event.stream)
            out += self._add_break(inc, Break(at, at, event.source, event.rule, event.message, stamped))
        return out

    def gap(self, gap: Gap) -> list[Transition]:
        """A span that can never be read back: recorded, and it counts like an error.

        An incident opened after the gap ended does not hear of it: that is history."""
        brk = Break(gap.start, gap.end, gap.source, None, gap.reason)
        out: list[Transition] = []
        for inc in self._open():
            if not inc.covers(gap.source) or gap.end < inc.opened_at:
                continue
            inc.gaps += 1
            detail = GapDetail(gap.source, gap.start, gap.end, gap.reason)
            out.append(Transition(inc.id, Kind.GAP, gap.start, inc.state(), detail))
            out += self._add_break(inc, brk)
        return out

    def count_lines(self, source: str, n: int) -> None:
        """Lines read from `source`: the evidence a verdict quotes."""
        for inc in self._open():
            if inc.mitigated_at is not None and inc.covers(source):
                inc.lines += n
                inc.lines_by_source[source] = inc.lines_by_source.get(source, 0) + n

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
        return report.status(inc, self._in_scope(inc), self._tracks, self._verified_to(inc))

    # ---- persistence ---------------------------------------------------------------

    def snapshot(self) -> EngineState:
        """Everything needed to continue after a restart, as JSON-safe values."""
        return {
            "version": STATE_VERSION,
            "watermarks": {name: t.watermark for name, t in self._tracks.items()},
            "tracks": save_tracks(self._tracks),
            "incidents": [inc.to_state() for inc in self._incidents.values()],
        }

    @classmethod
    def restore(
        cls,
        snap: Mapping[str, object],
        *,
        blind_after: float,
        sources: Iterable[str] = (),
        expectations: Mapping[str, Expectation] | None = None,
        skew_tolerance: float = math.inf,
        watermarks: Mapping[str, float | None] | None = None,
    ) -> Engine:
        """The engine `snapshot()` saved (this version or the one before); ValueError otherwise.

        `watermarks` (the resume points) may be newer than the snapshot's: the daemon does
        not rewrite the snapshot when only watermarks moved, so the newer of the two is the
        engine's.
        """
        version = snap.get("version")
        if version not in (1, STATE_VERSION):
            raise ValueError(
                f"the saved engine state has version {version!r}; this watcher reads "
                f"versions 1 to {STATE_VERSION}"
            )
        eng = cls(
            blind_after=blind_after, sources=sources, expectations=expectations, skew_tolerance=skew_tolerance
        )
        restore_tracks(snap, eng._tracks, eng.add_source)
        for name, mark in (watermarks or {}).items():
            if mark is None:
                continue
            eng.add_source(name)
            track = eng._tracks[name]
            if track.watermark is None or mark > track.watermark:
                track.watermark = mark
        listed = snap.get("incidents")
        for item in listed if isinstance(listed, list) else []:
            inc = Incident.from_state(item)
            if inc.closed_at is None:  # closed ones are history: the store keeps them and their timelines
                eng._incidents[inc.id] = inc
        opened = [i.window for i in eng._open()]
        eng._width = min(opened) / 2 if opened else _DEFAULT_WIDTH
        return eng

    # ---- the rule ------------------------------------------------------------------

    def _track(self, source: str) -> Track:
        self.add_source(source)
        return self._tracks[source]

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
        detail = ResolvedDetail(
            inc.streak_start, inc.window, scope, inc.lines, tuple(e.text() for e in evidence)
        )
        return Transition(inc.id, Kind.RESOLVED, at, inc.state(), detail)

    def _horizon(self) -> float:
        """Records before this cannot be in any window an open incident will still check."""
        starts = [
            i.streak_start for i in self._open() if i.mitigated_at is not None and i.resolved_at is None
        ]
        return min(starts, default=math.inf)

    def _lagging(self, inc: Incident, now: float) -> tuple[str, ...]:
        scope = self._in_scope(inc)
        if not scope:
            return ("(no source matches the scope)",)
        return tuple(
            s for s in scope if (wm := self._tracks[s].watermark) is None or now - wm > self.blind_after
        )

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
