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

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from watcher.details import (
    ChangedDetail,
    ClosedDetail,
    GapDetail,
    ImpactDetail,
    MitigatedDetail,
    OpenedDetail,
    SourcesDetail,
    Transition,
)
from watcher.engine import report
from watcher.engine.evidence import Down, Track, counted_at
from watcher.engine.impact import Impact, ImpactPolicy, Recent, SavedImpact
from watcher.engine.incident import Break, EngineState, Incident, IncidentStatus
from watcher.engine.persist import STATE_VERSION, restore_incidents, restore_tracks, save_tracks
from watcher.engine.rule import Rule
from watcher.events import ErrorEvent, Expectation, Gap, Kind, Liveness, clip
from watcher.times import format_duration

_PRUNE_AT = 64
"""Runs of activity per source past which those no window can need are forgotten."""


class Engine(Rule):
    def __init__(
        self,
        *,
        blind_after: float,
        sources: Iterable[str] = (),
        expectations: Mapping[str, Expectation] | None = None,
        skew_tolerance: float = math.inf,
        impact: ImpactPolicy | None = None,
    ) -> None:
        self.blind_after = blind_after
        self.skew_tolerance = skew_tolerance
        self.impact = impact or ImpactPolicy()
        self._recent = Recent(self.impact)
        super().__init__()
        self._expect = dict(expectations or {})
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
        self,
        incident: str,
        title: str,
        scope: Sequence[str],
        window: float,
        at: float,
        *,
        orgs: Sequence[str] = (),
        reopen: str | None = None,
    ) -> list[Transition]:
        """Track an incident from `at` (a closed one again, `reopen` naming who reopened it: it
        needs a mitigation after `at`, as its errors while closed were not watched for it).

        Errors read up to `impact.lookback` before `at` count toward its impact."""
        inc = Incident(incident, title, tuple(scope) or ("*",), window, at, orgs=tuple(orgs))
        inc.impact = Impact(self.impact.cap, inc.orgs)
        self._incidents[incident] = inc
        self._scope_cache.pop(incident, None)
        self._rewidth()
        out = [self._opened(inc, Kind.OPENED if reopen is None else Kind.REOPENED, reopen or "")]
        if reopen is None:
            for source, t, org in self._recent.since(at - self.impact.lookback):
                if inc.covers(source):
                    out += self._impact(inc, org, t)
        return out

    def _opened(self, inc: Incident, kind: Kind, by: str) -> Transition:
        detail = OpenedDetail(inc.title, inc.scope, inc.window, self._in_scope(inc), inc.orgs, by)
        return Transition(inc.id, kind, inc.opened_at, inc.state(), detail)

    def change(
        self,
        incident: str,
        at: float,
        *,
        scope: Sequence[str] | None = None,
        window: float | None = None,
        orgs: Sequence[str] | None = None,
        by: str = "",
    ) -> list[Transition]:
        """A new scope, window or named orgs for an open incident, from `at`.

        A scope that covers a source it did not restarts the streak at `at` (that source's
        errors before were not watched for this incident); breaks pending for sources it no
        longer covers are dropped. A new window applies to the streak as it stands: a shorter
        one may resolve it at once, a longer one undoes a resolution it no longer supports."""
        inc = self._incidents[incident]
        old, before = (inc.scope, inc.window, inc.orgs), set(self._in_scope(inc))
        if scope is not None:
            inc.scope = tuple(scope) or ("*",)
            self._scope_cache.pop(incident, None)
            inc.pending = [b for b in inc.pending if inc.covers(b.source)]
        if window is not None:
            inc.window = window
            self._rewidth()
        if orgs is not None:
            inc.orgs = tuple(orgs)
            inc.impact.rename(inc.orgs)
        if not set(self._in_scope(inc)) <= before:
            inc.last_break_end = max(inc.last_break_end, at)
            if inc.mitigated_at is not None:
                inc.streak_start = max(inc.streak_start, at)
        if inc.resolved_at is not None and inc.resolved_at < inc.streak_start + inc.window:
            inc.resolved_at = None
        streak = inc.streak_start if inc.mitigated_at is not None else None
        detail = ChangedDetail(inc.scope, inc.window, inc.orgs, *old, self._in_scope(inc), streak, by)
        return [Transition(incident, Kind.CHANGED, at, inc.state(), detail), *self._settle(inc)]

    def mitigate(self, incident: str, action: str, at: float) -> list[Transition]:
        """The streak clock starts at the latest mitigation (or the last break after it).

        One recorded after the fact, before the latest, is on the record but moves nothing."""
        inc = self._incidents[incident]
        inc.mitigations += 1
        if inc.mitigated_at is not None and at < inc.mitigated_at:
            detail = MitigatedDetail(action, inc.streak_start)
            return [Transition(incident, Kind.MITIGATED, at, inc.state(), detail)]
        inc.mitigated_at = at
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
        self._rewidth()
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
        self._recent.add(event.source, counted_at(event, None, self.skew_tolerance)[0], event.org)
        for inc in self._open():
            if not inc.covers(event.source):
                continue
            at, stamped = counted_at(event, inc.mitigated_at, self.skew_tolerance)
            inc.errors += 1
            out += self._impact(inc, event.org, at)
            last = inc.last_error
            if last is None or last.at is None or at >= last.at:
                inc.last_error = ErrorEvent(event.source, at, event.rule, event.message, event.stream)
            out += self._add_break(inc, Break(at, at, event.source, event.rule, event.message, stamped))
        return out

    def _impact(self, inc: Incident, org: str | None, at: float) -> list[Transition]:
        """An error record of `org` at `at` in the incident's impact; confirmed by it, perhaps."""
        impact = inc.impact
        if not impact.record(org, at, self.impact):
            return []
        detail = ImpactDetail(impact.records, len(impact.orgs), impact.first)
        return [Transition(inc.id, Kind.IMPACT_CONFIRMED, at, inc.state(), detail)]

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

    def _lagging(self, inc: Incident, now: float) -> tuple[str, ...]:
        scope = self._in_scope(inc)
        if not scope:
            return ("(no source matches the scope)",)
        return tuple(
            s for s in scope if (wm := self._tracks[s].watermark) is None or now - wm > self.blind_after
        )

    # ---- queries ------------------------------------------------------------------

    def incident_ids(self) -> list[str]:
        return list(self._incidents)

    def status(self, incident: str) -> IncidentStatus:
        inc = self._incidents[incident]
        return report.status(inc, self._in_scope(inc), self._tracks, self._verified_to(inc))

    # ---- persistence ---------------------------------------------------------------

    def impact_changes(self) -> list[tuple[str, SavedImpact]]:
        """Per incident, its impact changed since `impact_saved()`: for the store, beside the snapshot."""
        out = []
        for inc in self._incidents.values():
            changes = inc.impact.changes()
            if changes is not None:
                out.append((inc.id, changes))
        return out

    def impact_saved(self) -> None:
        """What `impact_changes()` gave is committed."""
        for inc in self._incidents.values():
            inc.impact.saved()

    def load_impact(self, incident: str, saved: SavedImpact) -> None:
        """An incident's impact as the store kept it (after `restore`, or a reopen)."""
        self._incidents[incident].impact.load(saved.totals, saved.orgs)

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
        impact: ImpactPolicy | None = None,
        watermarks: Mapping[str, float | None] | None = None,
    ) -> Engine:
        """The engine `snapshot()` saved (this version or the one before); ValueError otherwise.

        `watermarks` (the resume points) may be newer than the snapshot's: the daemon does
        not rewrite the snapshot when only watermarks moved, so the newer of the two is the
        engine's.

        Incidents' impact is not in it: the store keeps that (`load_impact`)."""
        eng = cls(
            blind_after=blind_after,
            sources=sources,
            expectations=expectations,
            skew_tolerance=skew_tolerance,
            impact=impact,
        )
        for inc in restore_incidents(snap):
            inc.impact = Impact(eng.impact.cap, inc.orgs)
            eng._incidents[inc.id] = inc
        restore_tracks(snap, eng._tracks, eng.add_source)
        for name, mark in (watermarks or {}).items():
            if mark is None:
                continue
            track = eng._track(name)
            if track.watermark is None or mark > track.watermark:
                track.watermark = mark
        eng._rewidth()
        return eng

    def _track(self, source: str) -> Track:
        self.add_source(source)
        return self._tracks[source]
