"""The runbook's announcements: routes (an escalation also to on-call), the sentences of each new
kind, and whom the errors hit in the 15-minute update and RESOLVED."""

from __future__ import annotations

import pytest

from tests.notify.test_announce import T0, Clock, heartbeat, kinds, status
from tests.notify.test_messages import AT, payload, rendered, texts
from watcher.details import (
    ChangedDetail,
    Detail,
    EscalatedDetail,
    ImpactDetail,
    MitigationFailedDetail,
    OpenedDetail,
    TextDetail,
)
from watcher.engine.impact import ImpactSummary, OrgStatus
from watcher.events import Kind, State
from watcher.notify.announce import Announcer
from watcher.notify.messages import Renderer

IMPACT = ImpactSummary(
    records=40, first=T0, last=T0 + 60, orgs=3, affected=2, cap=10_000,
    named=(OrgStatus("org-a", T0, T0 + 60, 12, True),),
)  # fmt: skip


class TestRoutes:
    @pytest.mark.parametrize(
        ("kind", "detail", "channels"),
        [
            (Kind.NOTE, TextDetail("Org A confirms", "c"), ["incident"]),
            (Kind.HYPOTHESIS, TextDetail("deploy broke it", "c"), ["incident"]),
            (Kind.MITIGATION_FAILED, MitigationFailedDetail("restart", T0, "not resolved", 1), ["incident"]),
            (Kind.ESCALATED, EscalatedDetail("no_hypothesis", "no hypothesis"), ["incident", "oncall"]),
        ],
    )
    def test_notes_are_announced(self, kind: Kind, detail: Detail, channels: list[str]) -> None:
        """A note, a hypothesis, a failed mitigation to the incident channel; an escalation to on-call too."""
        a = Announcer(channels={"incident", "oncall"}, clock=Clock())
        out = a.note("P1-x", kind, T0, detail, lambda _: status())
        assert kinds(out) == [(c, str(kind)) for c in channels]

    def test_heartbeat_says_whom_the_errors_hit(self) -> None:
        """The 15-minute update carries the impact sentences, and a change in them is news."""
        clock = Clock()
        a = Announcer(channels={"oncall"}, heartbeat=900.0, clock=clock)
        clock.now = T0 + 900
        (beat,) = a.tick([status(errors=40, impact=IMPACT)])
        (line,) = heartbeat(beat).incidents
        assert line.impact == IMPACT.lines() and line.impact[0].startswith("3 org(s) had errors, 2 still")
        body = Renderer().body(heartbeat(beat))
        assert "investigating: no mitigation yet, 40 error(s) seen; 3 org(s) had errors" in body["text"]


class TestSentences:
    @pytest.mark.parametrize(
        ("kind", "detail", "headline"),
        [
            ("reopened", {"title": "Live view black"}, "*P1-x* reopened: Live view black"),
            ("note", {"text": "Org A confirms"}, "*P1-x* note: Org A confirms"),
            ("hypothesis", {"text": "deploy 14:02"}, "*P1-x* hypothesis: deploy 14:02"),
            (
                "changed",
                {"scope": ["a", "b"], "window": 900, "old_scope": ["a"], "old_window": 900},
                "*P1-x* changed at 2026-11-27 14:00:00Z: scope a → a, b",
            ),
            (
                "impact_confirmed",
                {"records": 12, "orgs": 3, "first": AT - 120},
                "*P1-x* impact confirmed: 12 error records since 2026-11-27 13:58:00Z, 3 org(s)",
            ),
            (
                "mitigation_failed",
                {"action": "restart sfu", "reason": "not resolved within 30m", "failures": 2},
                "*P1-x* mitigation failed: restart sfu: not resolved within 30m (2 failed so far)",
            ),
            (
                "escalated",
                {"cause": "mitigations_failed", "reason": "2 mitigations failed"},
                "*P1-x* ESCALATE to the engineering lead: 2 mitigations failed",
            ),
        ],
    )
    def test_each_kind_reads_as_a_sentence(self, kind: str, detail: dict[str, object], headline: str) -> None:
        """Every new kind has a default template filled from its detail."""
        text: str = rendered(Renderer(), kind, payload(kind, **detail))["text"]
        assert text.splitlines()[0] == headline

    def test_resolved_says_whom_it_hit(self) -> None:
        """RESOLVED lists the impact beside the evidence."""
        body = rendered(
            Renderer(),
            "resolved",
            payload("resolved", window=900, sources=["edge"], lines=5, impact=list(IMPACT.lines())),
        )
        joined = " ".join(texts(body))
        assert "3 org(s) had errors, 2 still affected" in joined and "org-a: still affected" in joined

    def test_opened_names_the_orgs(self) -> None:
        """An incident opened with --org says so."""
        body = rendered(
            Renderer(), "opened", payload("opened", title="t", scope=["*"], window=900, orgs=["org-a"])
        )
        assert "orgs named: org-a" in " ".join(texts(body))

    def test_change_sentence(self) -> None:
        """A change lists what differs, old beside new."""
        d = ChangedDetail(("a",), 1200.0, ("org-a",), ("a",), 900.0, (), ("a",), None)
        assert d.changes() == ["window 15m → 20m", "orgs none → org-a"]

    def test_details_round_trip(self) -> None:
        """The new details survive the outbox's JSON."""
        from watcher import details

        samples: list[tuple[Kind, Detail]] = [
            (Kind.REOPENED, OpenedDetail("t", ("*",), 900.0, ("a",), ("org-a",), "bob")),
            (Kind.IMPACT_CONFIRMED, ImpactDetail(3, 2, T0)),
            (Kind.ESCALATED, EscalatedDetail("no_hypothesis", "r")),
        ]
        for kind, d in samples:
            assert details.from_json(kind, details.to_json(d)) == d

    def test_state_vocabulary_is_unchanged(self) -> None:
        """The new kinds are timeline entries, not states: status still has six."""
        assert [s.value for s in State] == [
            "investigating", "verifying", "blind", "resolved", "regressed", "closed"
        ]  # fmt: skip
