"""Whom an incident's errors hit: distinct orgs, capped; when each was last seen; confirmation."""

from __future__ import annotations

import gc
import tracemalloc

from tests.engine.test_engine import QUIET, W, kinds
from watcher.details import ImpactDetail
from watcher.engine import Engine
from watcher.engine.impact import MAX_ORG, Impact, ImpactPolicy
from watcher.events import ErrorEvent, Kind

T0 = 1_000_000.0


def engine(policy: ImpactPolicy, *sources: str) -> Engine:
    return Engine(
        blind_after=30.0, sources=sources, expectations=dict.fromkeys(sources, QUIET), impact=policy
    )


def error(at: float, org: str | None, source: str = "a") -> ErrorEvent:
    return ErrorEvent(source, at, "level", "boom", org=org)


class TestImpact:
    def test_distinct_orgs_and_when_each_was_last_seen(self) -> None:
        """Counts per org; an org is still affected until a window after its last error is verified."""
        eng = engine(ImpactPolicy(), "a")
        eng.open("P1-x", "t", ["*"], W, T0, orgs=["org-a", "org-z"])
        for at, org in [(T0 + 1, "org-a"), (T0 + 2, "org-b"), (T0 + 3, "org-a"), (T0 + 400, "org-b")]:
            eng.observe(error(at, org))
        eng.observe(error(T0 + 5, None))
        eng.mitigate("P1-x", "rollback", T0 + 500)
        eng.advance("a", T0 + 3 + W + 1)
        s = eng.status("P1-x").impact
        assert (s.records, s.orgs, s.affected, s.first, s.last) == (5, 2, 1, T0 + 1, T0 + 400)
        a, z = s.named
        assert (a.org, a.records, a.last, a.affected) == ("org-a", 2, T0 + 3, False)
        assert (z.org, z.last, z.affected) == ("org-z", None, False)
        assert s.lines()[0].startswith("2 org(s) had errors, 1 still affected; last error ")
        assert s.lines()[1].startswith("org-a: clear, 2 error record(s), last ")
        assert s.lines()[2] == "org-z: no error seen"

    def test_a_named_org_before_any_error(self) -> None:
        """Named on open, nothing seen yet: said so, without a count of zero orgs "affected"."""
        lines = Impact(10, named=["org-a"]).summary(None, W).lines()
        assert lines == ("no error record names an org yet", "org-a: no error seen")
        assert Impact(10).summary(None, W).lines() == ()

    def test_out_of_scope_errors_do_not_count(self) -> None:
        """Only errors of sources in the incident's scope are its impact."""
        eng = engine(ImpactPolicy(), "a", "b")
        eng.open("P1-x", "t", ["a"], W, T0)
        eng.observe(error(T0 + 1, "org-b", source="b"))
        assert eng.status("P1-x").impact.records == 0

    def test_errors_shortly_before_the_opening_count(self) -> None:
        """An incident is opened after its errors began: those within `lookback` are its impact."""
        eng = engine(ImpactPolicy(lookback=600.0), "a")
        eng.observe(error(T0 - 700, "org-old"))
        eng.observe(error(T0 - 100, "org-a"))
        eng.open("P1-x", "t", ["*"], W, T0)
        s = eng.status("P1-x").impact
        assert (s.records, s.orgs, s.first) == (1, 1, T0 - 100)

    def test_confirmed_after_n_records_over_m(self) -> None:
        """Impact is confirmed once, by the record that makes N records over at least M seconds."""
        eng = engine(ImpactPolicy(records=3, over=60.0), "a")
        eng.open("P1-x", "t", ["*"], W, T0)
        assert eng.observe(error(T0 + 1, "o1")) == []
        assert eng.observe(error(T0 + 2, "o2")) == []
        assert eng.observe(error(T0 + 30, "o1")) == []  # 3 records, but over 29 s only
        out = eng.observe(error(T0 + 61, "o3"))
        assert kinds(out) == [Kind.IMPACT_CONFIRMED]
        d = out[0].detail
        assert isinstance(d, ImpactDetail) and (d.records, d.orgs, d.first) == (4, 3, T0 + 1)
        assert eng.observe(error(T0 + 90, "o4")) == []
        assert eng.status("P1-x").impact.confirmed_at == T0 + 61

    def test_capped_orgs_are_counted_not_named(self) -> None:
        """Beyond `cap` orgs, records are counted as untracked; named orgs are always tracked."""
        imp = Impact(3, named=["vip"])
        policy = ImpactPolicy(cap=3)
        for i in range(10):
            imp.record(f"org-{i}", T0 + i, policy)
        imp.record("vip", T0 + 20, policy)
        imp.record("org-1", T0 + 21, policy)
        assert sorted(imp.orgs) == ["org-0", "org-1", "org-2", "vip"]
        assert (imp.records, imp.untracked) == (12, 7)
        head = imp.summary(None, W).lines()[0]
        assert head.startswith("4 org(s) had errors, 4 still affected; 7 error record(s) of orgs beyond")
        assert "beyond the first 3 not tracked" in head

    def test_an_org_id_is_cut_to_an_id(self) -> None:
        """A value longer than an id is kept to MAX_ORG characters."""
        imp = Impact(10)
        imp.record("x" * 10_000, T0, ImpactPolicy())
        assert [len(o) for o in imp.orgs] == [MAX_ORG]

    def test_changes_are_what_the_store_needs(self) -> None:
        """Only the orgs changed since the last save are handed to the store; a load is clean."""
        imp = Impact(10)
        policy = ImpactPolicy()
        imp.record("a", T0, policy)
        imp.record("b", T0 + 1, policy)
        first = imp.changes()
        assert first is not None and [o for o, _ in first.orgs] == ["a", "b"]
        imp.saved()
        assert imp.changes() is None
        imp.record("b", T0 + 2, policy)
        again = imp.changes()
        assert again is not None and [(o, s.records) for o, s in again.orgs] == [("b", 2)]
        back = Impact(10)
        back.load(again.totals, [("a", first.orgs[0][1]), *again.orgs])
        assert back.changes() is None and back.summary(None, W) == imp.summary(None, W)

    def test_memory_is_bounded_with_100000_orgs(self) -> None:
        """100,000 distinct orgs with a cap of 1,000: what an incident keeps stays small, a fraction
        of what tracking all of them takes (the daemon end to end: tests/daemon/test_runbook_impact.py)."""

        def kept(cap: int) -> int:
            imp, policy = Impact(cap), ImpactPolicy(cap=cap)
            orgs = [f"org-{i:06d}" for i in range(100_000)]
            gc.collect()
            tracemalloc.start()
            try:
                for i, org in enumerate(orgs):
                    imp.record(org, T0 + i * 0.001, policy)
                imp.saved()
                gc.collect()
                size, _peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            s = imp.summary(None, W)
            assert (s.records, s.orgs, s.untracked) == (100_000, cap, 100_000 - cap)
            return size

        capped, everything = kept(1_000), kept(100_000)
        assert capped < 500_000, capped
        assert capped * 20 < everything, (capped, everything)
