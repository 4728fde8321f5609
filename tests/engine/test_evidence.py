"""Evidence (DESIGN §2.1): silence is not health, and every error read counts."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.details import GapDetail, ResolvedDetail, Transition
from watcher.engine import Engine
from watcher.engine.evidence import Activity, counted_at
from watcher.events import ErrorEvent, Expectation, Gap, Kind, Liveness, State

M = 1_000_000.0
W = 900.0
LIVE = Expectation(liveness=True)
QUIET = Expectation(quiet_ok=True)


def engine(**expect: Expectation) -> Engine:
    eng = Engine(blind_after=30.0, sources=expect, expectations=expect, skew_tolerance=60.0)
    eng.open("P1-x", "t", ["*"], W, M - 600)
    eng.mitigate("P1-x", "rollback", M)
    return eng


def kinds(out: list[Transition]) -> list[Kind]:
    return [t.kind for t in out]


def reasons(eng: Engine) -> list[str]:
    return [b.text() for b in eng.status("P1-x").blockers]


class TestNoRecord:
    def test_a_silent_source_cannot_resolve(self) -> None:
        """A source that wrote nothing during the window proves nothing: it cannot resolve."""
        eng = engine(edge=Expectation())
        assert eng.advance("edge", M + 2 * W) == []
        assert eng.status("P1-x").state is State.VERIFYING
        assert reasons(eng) == ["edge: no record in the last 15m"]

    def test_one_record_in_the_window_is_enough(self) -> None:
        """A record inside the window proves the source could have shown an error."""
        eng = engine(edge=Expectation())
        eng.seen("edge", [M + 10])
        assert kinds(eng.advance("edge", M + W)) == [Kind.RESOLVED]

    def test_records_resume_after_a_silence(self) -> None:
        """Silent through the first window: resolved once a record shows up (and the rest is clean)."""
        eng = engine(edge=Expectation())
        eng.seen("edge", [M + 2000])
        out = eng.advance("edge", M + 3000)
        assert kinds(out) == [Kind.RESOLVED] and out[0].at == M + 2000

    def test_a_record_before_the_window_does_not_count(self) -> None:
        """A record older than the window's start says nothing about the window."""
        eng = engine(edge=Expectation())
        eng.seen("edge", [M - 5, M + 5])
        eng.advance("edge", M + 5000)
        assert eng.status("P1-x").resolved_at == M + W
        eng2 = engine(edge=Expectation())
        eng2.seen("edge", [M - 5])
        eng2.advance("edge", M + 5000)
        assert eng2.status("P1-x").state is State.VERIFYING

    def test_quiet_ok_resolves_on_silence(self) -> None:
        """An error-only log says so with quiet_ok: its silence is the good news."""
        eng = engine(errors=QUIET)
        assert kinds(eng.advance("errors", M + W)) == [Kind.RESOLVED]

    def test_a_scope_matching_no_source_says_so(self) -> None:
        """A scope that matches nothing cannot resolve, and the status says why."""
        eng = Engine(blind_after=30.0, sources=["a"])
        eng.open("P1-x", "t", ["nomatch*"], W, M)
        eng.mitigate("P1-x", "fix", M)
        assert reasons(eng) == ["no source matches the scope nomatch*"]


class TestLiveness:
    def test_not_known_to_run_until_the_first_report(self) -> None:
        """A source that reports liveness proves nothing before its first report."""
        eng = engine(api=Expectation(liveness=True, quiet_ok=True))
        assert eng.advance("api", M + 2 * W) == []
        assert reasons(eng) == ["api: not yet known to be running"]
        assert kinds(eng.liveness(Liveness("api", M - 50, alive=True))) == [Kind.RESOLVED]

    def test_stopped_then_started_is_a_gap_and_the_streak_starts_after_it(self) -> None:
        """docker stop, then start, inside the window: resolved at start + window, not before."""
        eng = engine(api=Expectation(liveness=True, quiet_ok=True))
        eng.liveness(Liveness("api", M - 100, alive=True))
        eng.advance("api", M + 100)
        eng.liveness(Liveness("api", M + 100, alive=False, reason="no running container (exited)"))
        assert eng.advance("api", M + 500) == []
        assert reasons(eng) == [_since(M + 100)]
        out = eng.liveness(Liveness("api", M + 110, alive=True))
        assert kinds(out) == [Kind.GAP]
        assert out[0].detail == GapDetail("api", M + 100, M + 110, "no running container (exited)")
        assert eng.advance("api", M + 110 + W - 1) == []
        assert kinds(eng.advance("api", M + 110 + W)) == [Kind.RESOLVED]

    def test_a_stale_stop_report_is_ignored(self) -> None:
        """A stop from before the current run (a reconnect's listing) changes nothing."""
        eng = engine(api=Expectation(liveness=True, quiet_ok=True))
        eng.liveness(Liveness("api", M - 100, alive=True))
        eng.liveness(Liveness("api", M - 500, alive=False, reason="exited"))
        assert eng.down("api") is None
        assert kinds(eng.advance("api", M + W)) == [Kind.RESOLVED]

    def test_resolved_before_the_stop_stays_resolved_then_regresses(self) -> None:
        """A full clean window before the stop is a resolution; the stop's gap regresses it."""
        eng = engine(api=Expectation(liveness=True, quiet_ok=True))
        eng.liveness(Liveness("api", M - 100, alive=True))
        eng.liveness(Liveness("api", M + W + 50, alive=False, reason="paused"))
        out = eng.advance("api", M + W + 500)
        assert kinds(out) == [Kind.RESOLVED] and out[0].at == M + W
        assert kinds(eng.liveness(Liveness("api", M + W + 60, alive=True))) == [Kind.GAP, Kind.REGRESSED]

    def test_resolved_announcement_names_the_evidence(self) -> None:
        """RESOLVED carries, per source, lines checked, running, and the span proven."""
        eng = engine(api=LIVE)
        eng.liveness(Liveness("api", M - 100, alive=True))
        eng.count_lines("api", 1234)
        eng.seen("api", [M + 1])
        (resolved,) = eng.advance("api", M + W)
        assert isinstance(resolved.detail, ResolvedDetail)
        (text,) = resolved.detail.evidence
        assert text.startswith("api: 1,234 lines checked, running, proven ")


class TestExpectation:
    def test_a_missed_expect_every_is_a_gap_from_the_last_record(self) -> None:
        """expect_every = 60s: two heartbeats 200 s apart are a gap from the first."""
        eng = engine(gw=Expectation(every=60.0, match="heartbeat ok"))
        eng.seen("gw", [M + 10])
        out = eng.seen("gw", [M + 210])
        assert kinds(out) == [Kind.GAP]
        assert isinstance(out[0].detail, GapDetail) and out[0].detail.start == M + 10

    def test_silence_past_expect_every_caps_the_watermark(self) -> None:
        """While the expectation is missed, nothing after the last heartbeat is proven."""
        eng = engine(gw=Expectation(every=60.0, match="heartbeat ok"))
        eng.seen("gw", [M + 10])
        eng.advance("gw", M + 2000)
        assert eng.status("P1-x").verified_to == M + 10
        assert reasons(eng) == [
            f"gw: no record matching 'heartbeat ok' (expect_every 1m) since {_fmt(M + 10)}"
        ]


class TestCountedAt:
    @pytest.mark.parametrize(
        ("own", "arrived", "want"),
        [
            (M + 3600, M + 1, (M + 1, M + 3600)),  # an hour in the future
            (M - 3600, M + 1, (M + 1, M - 3600)),  # an hour in the past
            (M - 1, M + 1, (M + 1, M - 1)),  # before the mitigation, read live after it
            (M + 0.5, M + 1, (M + 0.5, None)),  # plausible: its own stamp
            (None, M + 1, (M + 1, None)),  # no stamp of its own
            (M - 3600, None, (M - 3600, None)),  # backlog keeps its stamp
        ],
    )
    def test_the_time_an_error_counts_at(
        self, own: float | None, arrived: float | None, want: object
    ) -> None:
        """A live record's own stamp counts only when plausible; otherwise its arrival does."""
        event = ErrorEvent("edge", own, "level", "boom", arrived=arrived)
        assert counted_at(event, M, tolerance=60.0) == want

    def test_a_future_stamped_live_error_resets_the_streak(self) -> None:
        """An error stamped an hour ahead, read live after the mitigation, resets at its arrival."""
        eng = engine(edge=QUIET)
        out = eng.observe(ErrorEvent("edge", M + 3600, "level", "boom", arrived=M + 30))
        out += eng.advance("edge", M + 40)
        assert kinds(out) == [Kind.STREAK_RESET]
        assert eng.status("P1-x").streak_start == M + 30


class TestActivity:
    def test_holds_is_exact_for_windows_wider_than_a_run(self) -> None:
        """Runs no wider than half the window answer "a record in (r - w, r]" exactly."""
        rnd = random.Random(7)
        times = sorted(rnd.uniform(0, 1000) for _ in range(200))
        act = Activity()
        for t in rnd.sample(times, len(times)):
            act.add(t, width=5.0)
        for r in (rnd.uniform(-20, 1020) for _ in range(500)):
            assert act.holds(r, 10.0) == any(r - 10.0 < t <= r for t in times)


class TestPersistence:
    def test_evidence_survives_a_restart(self) -> None:
        """Liveness, records seen and expectations come back from the saved state."""
        expect = {"api": Expectation(liveness=True, every=60.0)}
        eng = engine(**expect)
        eng.liveness(Liveness("api", M - 10, alive=True))
        eng.liveness(Liveness("api", M + 5, alive=False, reason="paused"))
        eng.seen("api", [M + 1, M + 2])
        again = Engine.restore(eng.snapshot(), blind_after=30.0, sources=["api"], expectations=expect)
        assert again.down("api") == eng.down("api")
        assert again.snapshot() == eng.snapshot()

    def test_a_version_one_state_restores(self) -> None:
        """A state saved by the previous watcher (watermarks only) is read, not refused."""
        snap = {"version": 1, "watermarks": {"a": M}, "incidents": []}
        eng = Engine.restore(snap, blind_after=30.0, sources=["a"])
        assert eng.watermark("a") == M


def _fmt(at: float) -> str:
    from watcher.times import format_time

    return format_time(at) or ""


def _since(at: float) -> str:
    return f"api: no running container (exited) since {_fmt(at)}"


# ---- property: silence, gaps and errors never make a false resolution ------------------

NAMES = ("a", "b", "q")  # q is quiet_ok
spans = st.lists(st.tuples(st.floats(-200, 4000), st.floats(0, 2000)), max_size=2)


@st.composite
def histories(draw: st.DrawFn) -> dict[str, dict[str, list[float]]]:
    """Per source: error times, record times, dead spans [from, to) and the final watermark."""
    out = {}
    for name in NAMES:
        dead: list[float] = []
        for start, length in sorted(draw(spans)):
            if not dead or M + start > dead[-1]:
                dead += [M + start, M + start + length]
        out[name] = {
            "errors": sorted(M + x for x in draw(st.lists(st.floats(-200, 4000), max_size=3))),
            "records": sorted(M + x for x in draw(st.lists(st.floats(-200, 5000), max_size=30))),
            "dead": dead,
            "final": [M + draw(st.floats(0, 5000))],
        }
    return out


def feed(hist: dict[str, dict[str, list[float]]], seed: int) -> list[Transition]:
    """Each source's history in time order, watermarks never ahead of what was fed, sources interleaved."""
    rnd = random.Random(seed)
    expect = {n: Expectation(liveness=True, quiet_ok=n == "q") for n in NAMES}
    eng = Engine(blind_after=math.inf, sources=NAMES, expectations=expect)
    eng.open("P1-x", "t", ["*"], W, M - 600)
    out = eng.mitigate("P1-x", "fix", M)
    queues: dict[str, list[tuple[float, str]]] = {}
    for name, h in hist.items():
        final = h["final"][0]
        items = [(M - 1000, "up")]
        items += [(t, "err") for t in h["errors"] if t <= final]
        items += [(t, "rec") for t in h["records"] if t <= final]
        items += [(t, "down" if i % 2 == 0 else "up") for i, t in enumerate(h["dead"]) if t <= final]
        steps: list[tuple[float, str]] = []
        for t, what in sorted(items):
            steps.append((t, what))
            if rnd.random() < 0.6:
                steps.append((t, "wm"))
        queues[name] = [*steps, (final, "wm")]
    while any(queues.values()):
        name = rnd.choice([n for n, q in queues.items() if q])
        t, what = queues[name].pop(0)
        if what == "err":
            out += eng.observe(ErrorEvent(name, t, "level", "boom"))
        elif what == "rec":
            out += eng.seen(name, [t])
        elif what == "wm":
            out += eng.advance(name, t)
        else:
            out += eng.liveness(Liveness(name, t, alive=what == "up", reason="stopped"))
    return out


def alive_and_clean(hist: dict[str, dict[str, list[float]]], at: float) -> bool:
    """Every source ran, wrote no error, and (unless quiet_ok) wrote a record in (at - W, at]."""
    lo = at - W
    if lo < M:
        return False
    for name, h in hist.items():
        if any(lo < t <= at for t in h["errors"]):
            return False
        dead = h["dead"] + [math.inf] * (len(h["dead"]) % 2)
        if any(d0 < at and d1 > lo for d0, d1 in zip(dead[::2], dead[1::2], strict=True)):
            return False
        if name != "q" and not any(lo < t <= at for t in h["records"]):
            return False
    return True


class TestProperty:
    @settings(max_examples=400, deadline=None)
    @given(histories(), st.integers(0, 2**32))
    def test_never_resolves_unless_every_source_was_alive_and_clean(self, hist, seed: int) -> None:
        """For any interleaving of errors, stops, silence and records: a resolution at R means
        every source in scope ran and was clean for the whole window before R."""
        for t in feed(hist, seed):
            if t.kind is Kind.RESOLVED:
                assert alive_and_clean(hist, t.at), t

    @settings(max_examples=200, deadline=None)
    @given(histories(), st.integers(0, 2**32), st.integers(0, 2**32))
    def test_the_verdict_does_not_depend_on_arrival_order(self, hist, seed1: int, seed2: int) -> None:
        """Evidence, like errors, is applied in event time: any honest arrival order, one verdict."""
        a = [(t.kind, t.at) for t in feed(hist, seed1) if t.kind in (Kind.RESOLVED, Kind.REGRESSED)]
        b = [(t.kind, t.at) for t in feed(hist, seed2) if t.kind in (Kind.RESOLVED, Kind.REGRESSED)]
        assert a == b


def test_gap_before_the_incident_opened_is_history() -> None:
    """A gap that ended before the incident opened does not land on its timeline."""
    eng = engine(a=QUIET)
    assert eng.gap(Gap("a", M - 5000, M - 4000, "old")) == []


def test_add_all_is_add_one_by_one() -> None:
    """The in-order fast path of Activity.add_all builds the same runs as add, in any order."""
    rnd = random.Random(3)
    for _ in range(50):
        times = [rnd.uniform(0, 100) for _ in range(rnd.randint(0, 60))]
        if rnd.random() < 0.5:
            times.sort()
        one, many = Activity(), Activity()
        for t in times:
            one.add(t, 3.0)
        many.add_all(times, 3.0)
        assert one.runs() == many.runs()
