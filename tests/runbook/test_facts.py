"""What `facts` leaves unread can be left out of what the store hands it (an error storm's resets)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.runbook.record import T0, Record, W
from watcher.details import BreakDetail
from watcher.events import Kind
from watcher.facts import UNREAD, facts


@given(resets=st.lists(st.floats(min_value=T0, max_value=T0 + 4 * W, allow_nan=False), max_size=30))
def test_facts_are_the_same_without_the_kinds_they_do_not_read(resets: list[float]) -> None:
    rec = Record().hypothesis(T0 + 60).mitigate(T0 + 120, "restart sfu")
    rec.failed(T0 + 120 + 2 * W, T0 + 120, "restart sfu", 1).escalated(T0 + 130 + 2 * W, "mitigations_failed")
    rec.resolve(T0 + 3 * W).regress(T0 + 3 * W + 10).close(T0 + 4 * W)
    for at in resets:
        rec.add(at, Kind.STREAK_RESET, BreakDetail("edge", "level", "boom", at), "verifying")
    kept = [r for r in rec.rows if r.kind not in UNREAD]
    assert facts(rec.row, kept) == rec.facts()
