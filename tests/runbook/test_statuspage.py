"""The customer-facing status draft: withheld until impact is confirmed, then counts and times only."""

from __future__ import annotations

import pytest

from watcher.events import State
from watcher.runbook.statuspage import Situation, draft, phase

T0 = 1_796_300_000.0  # 2026-12-03T12:13:20Z


def situation(**kw: object) -> Situation:
    base: dict[str, object] = {
        "state": State.INVESTIGATING,
        "hypothesised": False,
        "confirmed_at": T0 + 300.0,
        "started_at": T0,
        "last_error": T0 + 600.0,
        "orgs": 3,
        "more_orgs": False,
    }
    return Situation(**{**base, **kw})  # type: ignore[arg-type]


class TestStatuspage:
    def test_withheld_until_impact_is_confirmed(self) -> None:
        """No confirmation yet: nothing publishable, and why."""
        d = draft(situation(confirmed_at=None), "NovaVMS live view", T0 + 60.0)
        assert (d.publishable, d.text, d.phase) == (False, None, None)
        assert d.withheld is not None and "impact not confirmed" in d.withheld

    @pytest.mark.parametrize(
        ("state", "hypothesised", "want"),
        [
            (State.INVESTIGATING, False, "investigating"),
            (State.INVESTIGATING, True, "identified"),
            (State.VERIFYING, True, "monitoring"),
            (State.BLIND, False, "monitoring"),
            (State.REGRESSED, True, "investigating"),
            (State.RESOLVED, True, "resolved"),
            (State.CLOSED, False, "resolved"),
        ],
    )
    def test_phase_follows_the_incident(self, state: State, hypothesised: bool, want: str) -> None:
        """Status-page words: investigating, identified, monitoring while verified, resolved."""
        assert phase(situation(state=state, hypothesised=hypothesised)) == want

    def test_counts_and_times_only(self) -> None:
        """The draft names the service, the org count and UTC times; it ends when the errors did."""
        d = draft(situation(state=State.RESOLVED), "NovaVMS live view", T0 + 2000.0)
        assert d.publishable and d.text is not None
        assert d.text == (
            "Resolved: NovaVMS live view\n\nThis incident has been resolved. A problem with NovaVMS live"
            " view affected 3 organisations from 2026-12-03 12:13 UTC to 2026-12-03 12:23 UTC.\n\n"
            "Posted 2026-12-03 12:46 UTC."
        )
        assert d.ended_at == T0 + 600.0

    def test_monitoring_says_a_fix_is_applied(self) -> None:
        """During verification: "monitoring", never "resolved"."""
        d = draft(situation(state=State.VERIFYING), "the service", T0 + 900.0)
        assert d.text is not None and d.text.startswith("Monitoring: the service")
        assert "resolved" not in d.text.lower() and d.ended_at is None

    @pytest.mark.parametrize(
        ("orgs", "more", "who"),
        [
            (None, False, "some customers"),
            (0, False, "some customers"),
            (1, False, "1 organisation"),
            (1000, True, "more than 1,000 organisations"),
        ],
    )
    def test_who_is_affected(self, orgs: int | None, more: bool, who: str) -> None:
        """Without org ids (no impact_field) it says "some customers"; past the cap, "more than"."""
        d = draft(situation(orgs=orgs, more_orgs=more), "the service", T0)
        assert d.text is not None and f"affecting {who} since" in d.text
