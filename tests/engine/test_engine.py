"""The resolution rule, as synchronous functions over numbers.

Sources here are `quiet_ok` (silence does not block them) unless a test is about
evidence: tests/engine/test_evidence.py covers that part of the rule.
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.details import BreakDetail, SourcesDetail, Transition
from watcher.engine import Engine
from watcher.engine import rule as engine_mod
from watcher.events import MAX_MESSAGE, ErrorEvent, Expectation, Gap, Kind, State

M = 1_000_000.0  # mitigation time
W = 900.0  # window


def err(source: str, at: float, rule: str = "level") -> ErrorEvent:
    return ErrorEvent(source, at, rule, f"boom at {at}")


QUIET = Expectation(quiet_ok=True)


def quiet(*sources: str) -> Engine:
    """An engine whose sources may stay silent: only errors, gaps and watermarks matter."""
    return Engine(blind_after=30.0, sources=sources, expectations=dict.fromkeys(sources, QUIET))


def mitigated(*sources: str, scope: tuple[str, ...] = ("*",)) -> Engine:
    eng = quiet(*sources)
    eng.open("P1-x", "t", scope, W, M - 600)
    eng.mitigate("P1-x", "rollback", M)
    return eng


def kinds(transitions: list[Transition]) -> list[Kind]:
    return [t.kind for t in transitions]


class TestStreak:
    def test_just_short_of_the_window_is_not_resolved(self) -> None:
        """A clean streak of 899.9 s against a 900 s window is still verifying."""
        eng = mitigated("a")
        assert eng.advance("a", M + 899.9) == []
        assert eng.status("P1-x").state is State.VERIFYING
        assert eng.status("P1-x").clean_streak == pytest.approx(899.9)

    def test_exactly_the_window_resolves_at_mitigation_plus_window(self) -> None:
        """900.0 s clean resolves, stamped at streak_start + window, not at arrival."""
        eng = mitigated("a")
        out = eng.advance("a", M + 1000)
        assert kinds(out) == [Kind.RESOLVED]
        assert out[0].at == M + W
        assert eng.status("P1-x").resolved_at == M + W

    def test_investigating_never_resolves(self) -> None:
        """Without a mitigation there is no streak clock."""
        eng = quiet("a")
        eng.open("P1-x", "t", ["*"], W, M)
        assert eng.advance("a", M + 10 * W) == []
        assert eng.status("P1-x").state is State.INVESTIGATING

    def test_error_resets_streak_to_its_time(self) -> None:
        """streak_start = max(M, last error): resolution comes a full window after the error."""
        eng = mitigated("a")
        eng.observe(err("a", M + 100))
        out = eng.advance("a", M + 999)
        assert kinds(out) == [Kind.STREAK_RESET]
        assert eng.advance("a", M + 999.5) == []
        assert kinds(eng.advance("a", M + 100 + W)) == [Kind.RESOLVED]

    def test_error_before_mitigation_does_not_count(self) -> None:
        """Errors stamped before the latest mitigation are history, not a reset."""
        eng = mitigated("a")
        eng.observe(err("a", M - 5))
        assert kinds(eng.advance("a", M + W)) == [Kind.RESOLVED]

    def test_error_already_seen_after_mitigation_time_sets_streak_start(self) -> None:
        """A mitigation recorded after an error it predates starts the streak at that error."""
        eng = quiet("a")
        eng.open("P1-x", "t", ["*"], W, M - 100)
        eng.observe(err("a", M + 50))
        eng.advance("a", M + 60)
        eng.mitigate("P1-x", "flag off", M)
        assert eng.status("P1-x").streak_start == M + 50

    def test_gap_counts_like_error_until_its_end(self) -> None:
        """A gap resets the streak; the clean streak can start only after the gap ends."""
        eng = mitigated("a")
        out = eng.gap(Gap("a", M + 100, M + 300, "container removed unread"))
        assert kinds(out) == [Kind.GAP]
        eng.advance("a", M + 300 + W - 1)
        assert eng.status("P1-x").state is State.VERIFYING
        assert kinds(eng.advance("a", M + 300 + W)) == [Kind.RESOLVED]

    def test_error_at_the_last_instant_of_window_prevents_resolution(self) -> None:
        """An error stamped exactly at streak_start + window means the window was not clean."""
        eng = mitigated("a")
        eng.observe(err("a", M + W))
        out = eng.advance("a", M + W)
        assert kinds(out) == [Kind.STREAK_RESET]

    def test_out_of_scope_error_is_ignored(self) -> None:
        """Scope globs select sources; an error elsewhere does not touch the incident."""
        eng = mitigated("edge", "cloud", scope=("edge*",))
        eng.observe(err("cloud", M + 10))
        eng.advance("cloud", M + 5)  # a lagging out-of-scope source does not block either
        assert kinds(eng.advance("edge", M + W)) == [Kind.RESOLVED]

    def test_new_mitigation_restarts_the_clock(self) -> None:
        """The latest mitigation wins, even after a resolution."""
        eng = mitigated("a")
        eng.advance("a", M + W)
        out = eng.mitigate("P1-x", "second fix", M + 2000)
        assert kinds(out) == [Kind.MITIGATED]
        assert eng.status("P1-x").state is State.VERIFYING
        assert kinds(eng.advance("a", M + 2000 + W)) == [Kind.RESOLVED]


class TestSilence:
    def test_silent_source_never_counts_as_clean(self) -> None:
        """A source that never reported a watermark keeps the incident from resolving."""
        eng = mitigated("a", "b")
        assert eng.advance("a", M + 10 * W) == []
        assert eng.status("P1-x").verified_to is None

    def test_stopped_watermark_caps_verified_to(self) -> None:
        """verified_to is the minimum watermark in scope."""
        eng = mitigated("a", "b")
        eng.advance("b", M + 100)
        eng.advance("a", M + 5000)
        st_ = eng.status("P1-x")
        assert st_.verified_to == M + 100
        assert st_.clean_streak == 100

    def test_blind_after_lag_and_recovered_by_backlog(self) -> None:
        """A lagging source makes the incident blind; backfill proves the streak retroactively."""
        eng = mitigated("a", "b")
        eng.advance("a", M + 10)
        eng.advance("b", M + 10)
        out = eng.tick(M + 100)
        assert kinds(out) == [Kind.BLIND]
        assert out[0].detail == SourcesDetail(("a", "b"))
        assert eng.status("P1-x").state is State.BLIND
        eng.advance("a", M + 2000)
        out = eng.advance("b", M + 2000)
        assert kinds(out) == [Kind.RESOLVED] and out[0].at == M + W
        assert eng.status("P1-x").state is State.RESOLVED

    def test_recovered_when_watermarks_catch_up(self) -> None:
        """Blind ends when every source in scope is within blind_after of now."""
        eng = mitigated("a")
        eng.advance("a", M + 1)
        eng.tick(M + 100)
        eng.advance("a", M + 99)
        assert kinds(eng.tick(M + 100)) == [Kind.RECOVERED]
        assert eng.status("P1-x").state is State.VERIFYING

    def test_scope_matching_nothing_is_blind(self) -> None:
        """An incident whose scope matches no source can never be verified."""
        eng = mitigated("a", scope=("nomatch*",))
        out = eng.tick(M + 1)
        assert kinds(out) == [Kind.BLIND]
        assert eng.advance("a", M + 10 * W) == []


class TestLateAndRegression:
    def test_late_error_inside_streak_resets_as_if_on_time(self) -> None:
        """Backfill: an error stamped inside the streak arrives after another source moved on."""
        eng = mitigated("a", "b")
        eng.advance("a", M + 5000)
        eng.advance("b", M + 50)
        eng.observe(err("b", M + 100))
        out = eng.advance("b", M + 5000)
        assert kinds(out) == [Kind.STREAK_RESET, Kind.RESOLVED]
        assert out[1].at == M + 100 + W

    def test_error_after_resolution_regresses_then_reverifies(self) -> None:
        """An error after resolved turns it regressed; verification restarts from the error."""
        eng = mitigated("a")
        eng.advance("a", M + W)
        eng.observe(err("a", M + 1200))
        out = eng.advance("a", M + 1200)
        assert kinds(out) == [Kind.REGRESSED]
        assert eng.status("P1-x").state is State.REGRESSED
        assert kinds(eng.advance("a", M + 1200 + W)) == [Kind.RESOLVED]

    def test_resolution_before_a_later_error_is_kept_in_event_order(self) -> None:
        """An error seen before the watermark proves an earlier clean window: resolved, then regressed."""
        eng = mitigated("a")
        eng.observe(err("a", M + 2000))
        out = eng.advance("a", M + 2500)
        assert kinds(out) == [Kind.RESOLVED, Kind.REGRESSED]
        assert [t.at for t in out] == [M + W, M + 2000]

    def test_closed_incident_ignores_everything(self) -> None:
        """After close, errors and watermarks change nothing."""
        eng = mitigated("a")
        eng.close("P1-x", "done", M + 1)
        assert eng.observe(err("a", M + 2)) == []
        assert eng.advance("a", M + 10 * W) == []
        assert eng.status("P1-x").state is State.CLOSED


class TestPersistence:
    def test_snapshot_restore_continues_the_same_streak(self) -> None:
        """A restart in the middle of a streak resolves at the same event time."""
        eng = mitigated("a", "b")
        eng.observe(err("a", M + 100))
        eng.advance("a", M + 200)
        eng.observe(err("b", M + 400))  # pending: b's watermark has not passed it
        snap = eng.snapshot()
        again = Engine.restore(
            snap, blind_after=30.0, sources=["a", "b"], expectations={"a": QUIET, "b": QUIET}
        )
        for e in (eng, again):
            e.advance("a", M + 5000)
        assert [t.at for t in eng.advance("b", M + 5000)] == [t.at for t in again.advance("b", M + 5000)]
        assert again.status("P1-x").resolved_at == M + 400 + W

    def test_closed_incidents_are_not_restored(self) -> None:
        """After a restart only open incidents are tracked; closed ones live on in the store."""
        eng = mitigated("a")
        eng.open("P1-y", "other", ["*"], W, M)
        eng.close("P1-x", "done", M + 1)
        again = Engine.restore(eng.snapshot(), blind_after=30.0, sources=["a"], expectations={"a": QUIET})
        assert again.incident_ids() == ["P1-y"]

    def test_a_snapshot_of_another_version_is_refused(self) -> None:
        """A saved state whose version this engine does not know is refused, never misread."""
        snap = {**mitigated("a").snapshot(), "version": 3}
        with pytest.raises(ValueError, match="version 3; this watcher reads versions 1 to 2"):
            Engine.restore(snap, blind_after=30.0, sources=["a"])

    def test_a_long_message_is_clipped_where_it_is_kept(self) -> None:
        """Issue case 2: a 1 MB error line is kept (state, transition, status) as a few KiB, marked."""
        eng = mitigated("a")
        eng.observe(ErrorEvent("a", M + 1, "level", "x" * 1_000_000))
        (reset,) = eng.advance("a", M + 2)
        assert isinstance(reset.detail, BreakDetail)
        last = eng.status("P1-x").last_error
        assert last is not None and len(last.message) == MAX_MESSAGE == len(reset.detail.message)
        assert last.message.endswith("[cut: 1,000,000 characters in all]")
        assert len(json.dumps(eng.snapshot())) < 2 * MAX_MESSAGE

    def test_a_saved_state_with_long_messages_is_clipped_on_restore(self) -> None:
        """A store written before messages were bounded loads bounded."""
        eng = mitigated("a", "b")
        eng.observe(err("a", M + 1))
        eng.observe(err("b", M + 2))  # pending: no watermark yet
        snap = json.loads(json.dumps(eng.snapshot()).replace("boom at", "y" * 100_000))
        again = Engine.restore(snap, blind_after=30.0, sources=["a", "b"])
        assert len(json.dumps(again.snapshot())) < 4 * MAX_MESSAGE  # the last error and two pending

    def test_newer_watermarks_from_the_resume_points_win(self) -> None:
        """The daemon skips rewriting the snapshot when only watermarks moved; the resume points have them."""
        eng = mitigated("a")
        eng.advance("a", M + 100)
        again = Engine.restore(eng.snapshot(), blind_after=30.0, sources=["a"], watermarks={"a": M + 200})
        assert again.watermark("a") == M + 200
        older = Engine.restore(eng.snapshot(), blind_after=30.0, sources=["a"], watermarks={"a": M + 50})
        assert older.watermark("a") == M + 100

    def test_compaction_keeps_the_verdict(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Dropping redundant pending errors never changes the resolution time."""
        monkeypatch.setattr(engine_mod, "_COMPACT_AT", 5)
        times = [M + t for t in (10, 20, 30, 40, 50, 60, 70, 2000, 2010, 2020, 4000)]
        eng = mitigated("a")
        for t in times:
            eng.observe(err("a", t))
        out = eng.advance("a", M + 10_000)
        resolved = [t.at for t in out if t.kind is Kind.RESOLVED]
        assert resolved == [M + 70 + W, M + 2020 + W, M + 4000 + W]


# ---- properties -------------------------------------------------------------------------

sources_st = st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True)
offsets = st.floats(min_value=-200, max_value=4000, allow_nan=False)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Per-source error times and final watermarks (some sources stop early)."""
    names = draw(sources_st)
    errors = {s: sorted(M + x for x in draw(st.lists(offsets, max_size=6))) for s in names}
    final = {s: M + draw(st.floats(min_value=0, max_value=5000, allow_nan=False)) for s in names}
    for s in names:
        errors[s] = [t for t in errors[s] if t <= final[s]]
    return errors, final


def run(errors: dict[str, list[float]], final: dict[str, float], seed: int) -> list[tuple[Kind, float]]:
    """Feed the scenario in a random arrival order that respects each source's watermark."""
    rnd = random.Random(seed)
    eng = mitigated(*errors)
    queues: dict[str, list[tuple[str, float]]] = {}
    for s, times in errors.items():
        steps: list[tuple[str, float]] = []
        for t in times:
            steps.append(("err", t))
            if rnd.random() < 0.5:
                steps.append(("wm", t))  # a watermark never passes an error not yet sent
        steps.append(("wm", final[s]))
        queues[s] = steps
    out: list[tuple[Kind, float]] = []
    while any(queues.values()):
        s = rnd.choice([k for k, q in queues.items() if q])
        what, t = queues[s].pop(0)
        trans = eng.observe(err(s, t)) if what == "err" else eng.advance(s, t)
        out += [(x.kind, x.at) for x in trans if x.kind in (Kind.RESOLVED, Kind.REGRESSED)]
    return out


def oracle_first_resolution(errors: dict[str, list[float]], final: dict[str, float]) -> float | None:
    verified = min(final.values())
    start = M
    for t in sorted(t for ts in errors.values() for t in ts):
        if start + W < t:
            return start + W if start + W <= verified else None
        start = max(start, t)
    return start + W if start + W <= verified else None


class TestProperties:
    @settings(max_examples=300, deadline=None)
    @given(scenarios(), st.integers(0, 2**32), st.integers(0, 2**32))
    def test_any_arrival_order_gives_the_same_verdict(self, sc, seed1: int, seed2: int) -> None:
        """Arrival order never matters as long as watermarks are honest."""
        errors, final = sc
        assert run(errors, final, seed1) == run(errors, final, seed2)

    @settings(max_examples=300, deadline=None)
    @given(scenarios(), st.integers(0, 2**32))
    def test_first_resolution_matches_the_rule(self, sc, seed: int) -> None:
        """The first resolution is the first error-free window after M that every source has proven."""
        errors, final = sc
        got = [at for kind, at in run(errors, final, seed) if kind is Kind.RESOLVED]
        want = oracle_first_resolution(errors, final)
        assert (got[0] if got else None) == want

    @settings(max_examples=300, deadline=None)
    @given(scenarios(), st.integers(0, 2**32))
    def test_no_error_inside_any_resolved_window(self, sc, seed: int) -> None:
        """Whenever the engine says resolved at R, no error lies in (R - window, R]."""
        errors, final = sc
        every = [t for ts in errors.values() for t in ts]
        for kind, at in run(errors, final, seed):
            if kind is Kind.RESOLVED:
                assert not [t for t in every if at - W < t <= at and t > M]

    @settings(max_examples=200, deadline=None)
    @given(scenarios(), st.integers(0, 2**32))
    def test_a_stopped_watermark_never_resolves(self, sc, seed: int) -> None:
        """If any source's watermark stops before M + window, nothing resolves."""
        errors, final = sc
        stopped = dict(final)
        first = next(iter(stopped))
        stopped[first] = M + W - 0.5
        errors = {s: [t for t in ts if t <= stopped[s]] for s, ts in errors.items()}
        assert [k for k, _ in run(errors, stopped, seed) if k is Kind.RESOLVED] == []
