"""announce: routing, streak-reset rate limiting and the heartbeat, over numbers and a fake clock."""

from __future__ import annotations

import json
from dataclasses import replace

from watcher.details import (
    AlertDetail,
    BreakDetail,
    ClosedDetail,
    MitigatedDetail,
    ResolvedDetail,
    Transition,
)
from watcher.engine import IncidentStatus
from watcher.events import Kind, State
from watcher.notify.announce import Announcement, Announcer, Lane
from watcher.notify.news import HeartbeatNews, TransitionNews

T0 = 1_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def reset(at: float, message: str = "boom") -> Transition:
    detail = BreakDetail("cloud", "level", message, at)
    return Transition("P1-x", Kind.STREAK_RESET, at, State.VERIFYING, detail)


def status(state: State = State.INVESTIGATING, **kw: object) -> IncidentStatus:
    base = IncidentStatus(
        id="P1-x",
        title="t",
        state=state,
        scope=("*",),
        window=900.0,
        opened_at=T0,
        mitigated_at=None,
        streak_start=None,
        verified_to=None,
        clean_streak=0.0,
        resolved_at=None,
        errors=0,
        gaps=0,
        lines=0,
        last_error=None,
        blind_sources=(),
        sources=("cloud",),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def title(_: str) -> IncidentStatus:
    """The status the announcer reads an incident's title from."""
    return status(title="Live view black")


def kinds(out: list[Announcement]) -> list[tuple[str, str]]:
    return [(a.channel, a.kind) for a in out]


def transition(a: Announcement) -> TransitionNews:
    assert isinstance(a.news, TransitionNews)
    return a.news


def heartbeat(a: Announcement) -> HeartbeatNews:
    assert isinstance(a.news, HeartbeatNews)
    return a.news


class TestRouting:
    def test_default_routes(self) -> None:
        """Every incident kind goes to the incident channel, with the title added."""
        a = Announcer(channels={"incident", "oncall"}, clock=Clock())
        t = Transition("P1-x", Kind.RESOLVED, T0, State.RESOLVED, ResolvedDetail(window=900))
        (out,) = a.transitions([t], title)
        assert (out.channel, out.kind) == ("incident", "resolved")
        assert transition(out).title == "Live view black" and transition(out).detail == ResolvedDetail(
            window=900
        )

    def test_configured_routes_and_missing_webhooks(self) -> None:
        """Routes pick channels per kind; a channel without a webhook gets no rows at all."""
        a = Announcer(
            channels={"incident", "oncall"},
            routes={"resolved": ["incident", "oncall"], "gap": [], "closed": ["oncall"]},
            clock=Clock(),
        )
        ts = [
            Transition("P1-x", k, T0, State.RESOLVED, ResolvedDetail())
            for k in (Kind.RESOLVED, Kind.GAP, Kind.CLOSED)
        ]
        assert kinds(a.transitions(ts, title)) == [
            ("incident", "resolved"),
            ("oncall", "resolved"),
            ("oncall", "closed"),
        ]
        only_incident = Announcer(channels={"incident"}, routes={"resolved": ["oncall"]}, clock=Clock())
        assert only_incident.transitions(ts[:1], title) == []


class TestResetRateLimit:
    def test_first_then_one_per_minute_with_the_rest_summed(self) -> None:
        """First reset goes out; the next ones within a minute are held, counted, flushed by tick."""
        clock = Clock()
        a = Announcer(channels={"incident"}, clock=clock)
        first = a.transitions([reset(T0)], title)
        assert kinds(first) == [("incident", "streak_reset")] and transition(first[0]).also == 0
        assert first[0].held_until is None
        for i in range(1, 5):
            clock.now = T0 + i * 10
            (held,) = a.transitions([reset(T0 + i, f"boom {i}")], title)
            # Kept by the daemon (one per incident and channel) until it is due: the summary so far.
            assert held.held_until == T0 + 60 and transition(held).also == i - 1
        clock.now = T0 + 59
        assert a.tick([]) == []
        clock.now = T0 + 60
        (summary,) = a.tick([])
        news = transition(summary)
        assert news.detail == BreakDetail("cloud", "level", "boom 4", T0 + 4) and news.also == 3
        clock.now = T0 + 130
        assert a.tick([]) == []  # nothing more held

    def test_a_reset_after_the_minute_carries_the_held_count(self) -> None:
        """A new reset past the interval is sent at once and says how many were held back."""
        clock = Clock()
        a = Announcer(channels={"incident"}, clock=clock)
        a.transitions([reset(T0)], title)
        clock.now = T0 + 5
        a.transitions([reset(T0 + 5)], title)
        clock.now = T0 + 61
        (out,) = a.transitions([reset(T0 + 61, "later")], title)
        assert transition(out).also == 1 and transition(out).detail == BreakDetail(
            "cloud", "level", "later", T0 + 61
        )

    def test_mitigation_starts_afresh(self) -> None:
        """The first reset after a new mitigation is announced even within the minute."""
        clock = Clock()
        a = Announcer(channels={"incident"}, clock=clock)
        a.transitions([reset(T0)], title)
        clock.now = T0 + 5
        mitigated = Transition("P1-x", Kind.MITIGATED, T0 + 5, State.VERIFYING, MitigatedDetail("x"))
        assert kinds(a.transitions([mitigated, reset(T0 + 6)], title)) == [
            ("incident", "mitigated"),
            ("incident", "streak_reset"),
        ]


class TestHeartbeat:
    def test_every_interval_one_line_per_open_incident(self) -> None:
        """Nothing before `heartbeat` after opening; then one message; 'no change' when nothing moved."""
        clock = Clock()
        a = Announcer(channels={"incident", "oncall"}, heartbeat=900, clock=clock)
        clock.now = T0 + 899
        assert a.tick([status()]) == []
        clock.now = T0 + 900
        (beat,) = a.tick([status()])
        assert (beat.channel, beat.kind) == ("oncall", "heartbeat")
        (line,) = heartbeat(beat).incidents
        assert line.changed is True and line.state is State.INVESTIGATING
        clock.now = T0 + 1799
        assert a.tick([status()]) == []
        clock.now = T0 + 1800
        (again,) = a.tick([status(), status(State.CLOSED, id="P1-old")])
        assert [(i.incident, i.changed) for i in heartbeat(again).incidents] == [("P1-x", False)]
        clock.now = T0 + 2700
        moved = status(State.VERIFYING, mitigated_at=T0 + 2000, streak_start=T0 + 2000, clean_streak=700.0)
        (third,) = a.tick([moved])
        assert heartbeat(third).incidents[0].changed is True

    def test_restart_remembers_the_last_heartbeat(self) -> None:
        """After a restart: not repeated early, not later than due, 'no change' still recognised."""
        clock = Clock()
        a = Announcer(channels={"oncall"}, heartbeat=900, clock=clock)
        clock.now = T0 + 900
        (beat,) = a.tick([status()])
        stored = HeartbeatNews.from_json(
            json.loads(json.dumps(heartbeat(beat).to_json()))
        )  # as the outbox keeps it
        clock.now = T0 + 1000
        b = Announcer(channels={"oncall"}, heartbeat=900, last_heartbeat=stored, clock=clock)
        assert b.tick([status()]) == []
        clock.now = T0 + 1800
        (next_beat,) = b.tick([status()])
        assert heartbeat(next_beat).incidents[0].changed is False

    def test_no_open_incident_or_no_oncall_webhook_means_silence(self) -> None:
        clock = Clock()
        clock.now = T0 + 10_000
        assert Announcer(channels={"oncall"}, clock=clock).tick([]) == []
        assert Announcer(channels={"incident"}, clock=clock).tick([status()]) == []


SLACK = Lane("slack-incident", "incident", living=True, refresh=60.0)
SLACK_ONCALL = Lane("slack-oncall", "oncall", living=True, heartbeat_edits=True)
PAGER = Lane("pagerduty", kinds=frozenset({"opened", "resolved", "regressed", "escalation"}))


def verifying(clean: float, **kw: object) -> IncidentStatus:
    return status(State.VERIFYING, mitigated_at=T0, streak_start=T0, clean_streak=clean, **kw)


class TestLanes:
    def test_a_living_lane_gets_each_incidents_status_after_its_news(self) -> None:
        """Replies first, in order; then one status per incident the batch was about."""
        a = Announcer(channels={"incident"}, lanes=[SLACK], clock=Clock())
        ts = [
            Transition("P1-x", Kind.MITIGATED, T0, State.VERIFYING, MitigatedDetail("rollback", T0)),
            Transition("P1-x", Kind.RESOLVED, T0, State.RESOLVED, ResolvedDetail(window=900)),
        ]
        assert kinds(a.transitions(ts, lambda _: verifying(30))) == [
            ("incident", "mitigated"),
            ("slack-incident", "mitigated"),
            ("incident", "resolved"),
            ("slack-incident", "resolved"),
            ("slack-incident", "status"),
        ]

    def test_pagerduty_takes_its_kinds_whatever_the_routes_say(self) -> None:
        """Routing `resolved` elsewhere cannot keep PagerDuty from resolving; blind never reaches it."""
        a = Announcer(channels={"incident"}, lanes=[PAGER], routes={"resolved": ["oncall"]}, clock=Clock())
        ts = [
            Transition("P1-x", k, T0, State.RESOLVED, ResolvedDetail())
            for k in (Kind.BLIND, Kind.RESOLVED, Kind.OPENED)
        ]
        assert kinds(a.transitions(ts, title)) == [
            ("incident", "blind"),
            ("pagerduty", "resolved"),
            ("incident", "opened"),
            ("pagerduty", "opened"),
        ]

    def test_escalation_reaches_only_the_paging_lane(self) -> None:
        """The seam for the runbook's escalation: one row for PagerDuty, nothing for the webhooks."""
        a = Announcer(channels={"incident", "oncall"}, lanes=[SLACK, PAGER], clock=Clock())
        (out,) = a.escalation("P1-x", "t", T0, "no hypothesis after 20m")
        assert (out.channel, out.kind) == ("pagerduty", "escalation")
        assert Announcer(channels={"incident"}, clock=Clock()).escalation("P1-x", "t", T0, "c") == []

    def test_alert_notes_are_announced_like_transitions(self) -> None:
        """An alert that cleared goes to the incident channel's lanes, with the status after it."""
        a = Announcer(channels={"incident"}, lanes=[SLACK, PAGER], clock=Clock())
        out = a.note("P1-x", Kind.ALERT_CLEARED, T0, AlertDetail("RecorderDown"), lambda _: verifying(5))
        assert kinds(out) == [
            ("incident", "alert_cleared"),
            ("slack-incident", "alert_cleared"),
            ("slack-incident", "status"),
        ]
        assert transition(out[0]).state is State.VERIFYING

    def test_heartbeat_edits_each_open_incident_in_edit_mode(self) -> None:
        """An on-call lane in edit mode gets a status per open incident instead of a heartbeat message."""
        clock = Clock()
        a = Announcer(channels={"oncall"}, lanes=[SLACK_ONCALL], heartbeat=900, clock=clock)
        clock.now = T0 + 900
        out = a.tick([status(), status(id="P1-y"), status(State.CLOSED, id="P1-z")])
        assert kinds(out) == [("oncall", "heartbeat"), ("slack-oncall", "status"), ("slack-oncall", "status")]
        assert [o.news.incident for o in out[1:]] == ["P1-x", "P1-y"]  # type: ignore[union-attr]

    def test_refresh_only_when_the_bar_moves(self) -> None:
        """Every `refresh` seconds, a status for incidents whose look changed since the last one."""
        clock = Clock()
        a = Announcer(channels=(), lanes=[SLACK], clock=clock)
        assert kinds(a.tick([verifying(10)])) == [("slack-incident", "status")]
        clock.now = T0 + 30
        assert a.tick([verifying(100)]) == []  # not due
        clock.now = T0 + 60
        assert a.tick([verifying(40)]) == []  # due, but the bar shows the same (0 of 20 cells)
        clock.now = T0 + 120
        assert kinds(a.tick([verifying(450)])) == [("slack-incident", "status")]
        clock.now = T0 + 180
        assert a.tick([status(State.CLOSED)]) == []


class TestHeldResetsAreNeverDropped:
    """Issue case 7: held resets were lost on a kill and silently discarded on a mitigation or close."""

    def held(self, clock: Clock) -> Announcer:
        a = Announcer(channels={"incident"}, clock=clock)
        a.transitions([reset(T0)], title)
        for i in (1, 2):
            clock.now = T0 + i
            a.transitions([reset(T0 + i, f"boom {i}")], title)
        return a

    def test_a_mitigation_or_close_sends_the_summary_first(self) -> None:
        """What was held goes out, summed up, before the mitigation (or close) that starts afresh."""
        for kind, detail in ((Kind.MITIGATED, MitigatedDetail("x")), (Kind.CLOSED, ClosedDetail("done"))):
            clock = Clock()
            a = self.held(clock)
            clock.now = T0 + 5
            out = a.transitions([Transition("P1-x", kind, T0 + 5, State.VERIFYING, detail)], title)
            assert kinds(out) == [("incident", "streak_reset"), ("incident", str(kind))]
            assert out[0].held_until is None and transition(out[0]).also == 1
            assert transition(out[0]).detail == BreakDetail("cloud", "level", "boom 2", T0 + 2)
            clock.now = T0 + 120
            assert a.tick([]) == []

    def test_what_was_held_is_handed_back_after_a_restart(self) -> None:
        """A new announcer given the stored held summary announces it when due, as the old one would."""
        clock = Clock()
        stored = self.held(clock).transitions([reset(T0 + 3, "boom 3")], title)
        again = Announcer(channels={"incident"}, held=stored, clock=clock)
        clock.now = T0 + 59
        assert again.tick([]) == []
        clock.now = T0 + 60
        (summary,) = again.tick([])
        assert transition(summary).also == 2 and summary.held_until is None
        assert transition(summary).detail == BreakDetail("cloud", "level", "boom 3", T0 + 3)
