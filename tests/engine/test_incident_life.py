"""The rest of an incident's life in the engine: a mitigation recorded after the fact, a changed
scope or window, a reopening."""

from __future__ import annotations

from tests.engine.test_engine import QUIET, W, err, kinds, quiet
from watcher.details import ChangedDetail, OpenedDetail
from watcher.engine import Engine
from watcher.events import Kind, State

T0 = 1_000_000.0


def opened(*sources: str, scope: tuple[str, ...] = ("*",)) -> Engine:
    eng = quiet(*sources)
    eng.open("P1-x", "t", scope, W, T0)
    return eng


class TestMitigationAfterTheFact:
    def test_a_past_mitigation_starts_the_streak_then(self) -> None:
        """`mitigate --at T`: the streak is proven from T, with what was read since."""
        eng = opened("a")
        eng.advance("a", T0 + 2000)
        out = eng.mitigate("P1-x", "rolled back sfu", T0 + 100)
        assert kinds(out) == [Kind.MITIGATED, Kind.RESOLVED]
        assert out[1].at == T0 + 100 + W

    def test_an_error_after_it_already_read_still_counts(self) -> None:
        """Errors read before the command, stamped after T, hold the streak back."""
        eng = opened("a")
        eng.observe(err("a", T0 + 300))
        eng.advance("a", T0 + 1000)
        eng.mitigate("P1-x", "rolled back sfu", T0 + 100)
        assert eng.status("P1-x").streak_start == T0 + 300
        assert eng.status("P1-x").state is State.VERIFYING

    def test_one_before_the_latest_moves_nothing(self) -> None:
        """Recorded after the fact but older than the latest mitigation: on the record only."""
        eng = opened("a")
        eng.mitigate("P1-x", "flag off", T0 + 500)
        out = eng.mitigate("P1-x", "restarted gw", T0 + 100)
        assert kinds(out) == [Kind.MITIGATED]
        s = eng.status("P1-x")
        assert (s.mitigated_at, s.streak_start) == (T0 + 500, T0 + 500)


class TestChange:
    def test_a_wider_scope_restarts_the_streak(self) -> None:
        """A source newly in scope was not watched for the incident: the streak starts at the change."""
        eng = opened("a", "b", scope=("a",))
        eng.mitigate("P1-x", "rollback", T0 + 10)
        eng.advance("a", T0 + 500)
        eng.advance("b", T0 + 500)
        out = eng.change("P1-x", T0 + 400, scope=["a", "b"], by="carol@b")
        assert kinds(out) == [Kind.CHANGED]
        d = out[0].detail
        assert isinstance(d, ChangedDetail)
        assert (d.old_scope, d.scope, d.sources, d.streak_start) == (("a",), ("a", "b"), ("a", "b"), T0 + 400)
        assert d.changes() == ["scope a → a, b"]
        assert kinds(eng.advance("a", T0 + 400 + W)) == []
        out = eng.advance("b", T0 + 400 + W)
        assert kinds(out) == [Kind.RESOLVED] and out[0].at == T0 + 400 + W

    def test_a_narrower_scope_drops_what_it_no_longer_covers(self) -> None:
        """An error pending in a source taken out of scope no longer holds the incident."""
        eng = opened("a", "b")
        eng.mitigate("P1-x", "rollback", T0 + 10)
        eng.observe(err("b", T0 + 50))
        out = eng.change("P1-x", T0 + 60, scope=["a"])
        assert eng.status("P1-x").streak_start == T0 + 10
        assert kinds(out) == [Kind.CHANGED]
        assert kinds(eng.advance("a", T0 + 10 + W)) == [Kind.RESOLVED]

    def test_a_shorter_window_may_resolve_at_once(self) -> None:
        """The streak as it stands against the new window."""
        eng = opened("a")
        eng.mitigate("P1-x", "rollback", T0)
        eng.advance("a", T0 + 600)
        out = eng.change("P1-x", T0 + 600, window=300.0)
        assert kinds(out) == [Kind.CHANGED, Kind.RESOLVED]
        assert out[1].at == T0 + 300
        d = out[0].detail
        assert isinstance(d, ChangedDetail) and d.changes() == ["window 15m → 5m"]

    def test_a_longer_window_undoes_a_resolution_it_does_not_support(self) -> None:
        """Resolved on 15 minutes; 30 asked: verifying again until it is proven."""
        eng = opened("a")
        eng.mitigate("P1-x", "rollback", T0)
        eng.advance("a", T0 + W + 10)
        assert eng.status("P1-x").state is State.RESOLVED
        eng.change("P1-x", T0 + W + 20, window=2 * W)
        assert eng.status("P1-x").state is State.VERIFYING
        assert kinds(eng.advance("a", T0 + 2 * W)) == [Kind.RESOLVED]

    def test_named_orgs(self) -> None:
        """`--org` changed: on the timeline, and the impact follows the named orgs."""
        eng = opened("a")
        out = eng.change("P1-x", T0 + 5, orgs=["org-a"])
        d = out[0].detail
        assert isinstance(d, ChangedDetail) and d.changes() == ["orgs none → org-a"]
        assert [n.org for n in eng.status("P1-x").impact.named] == ["org-a"]


class TestReopen:
    def test_a_reopened_incident_needs_a_new_mitigation(self) -> None:
        """Reopened from `at`: investigating; the old mitigation does not resolve it."""
        eng = opened("a")
        eng.mitigate("P1-x", "rollback", T0)
        eng.advance("a", T0 + W)
        eng.close("P1-x", "done", T0 + W + 1)
        out = eng.open("P1-x", "t", ["*"], W, T0 + 5000, reopen="bob@b")
        assert kinds(out) == [Kind.REOPENED]
        d = out[0].detail
        assert isinstance(d, OpenedDetail) and d.by == "bob@b"
        assert eng.advance("a", T0 + 5000 + 2 * W) == []
        assert eng.status("P1-x").state is State.INVESTIGATING

    def test_it_survives_a_restart(self) -> None:
        """Reopened, mitigated, snapshot, restore: the same incident goes on."""
        eng = opened("a")
        eng.close("P1-x", "done", T0 + 1)
        eng.open("P1-x", "t", ["*"], W, T0 + 100, orgs=["org-a"], reopen="bob@b")
        eng.mitigate("P1-x", "rollback", T0 + 200)
        back = Engine.restore(eng.snapshot(), blind_after=30.0, sources=["a"], expectations={"a": QUIET})
        s = back.status("P1-x")
        assert (s.opened_at, s.mitigated_at, [n.org for n in s.impact.named]) == (
            T0 + 100,
            T0 + 200,
            ["org-a"],
        )
