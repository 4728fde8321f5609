"""PagerDuty Events API v2: what each announcement becomes, and the daemon against a loopback
fake that keeps alerts per (routing key, dedup key) as PagerDuty does (tests/pagerduty_fake.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from tests.daemon.harness import AsyncClient, append, config_file, edge_source, incident, running, stamp
from tests.notify.test_announce import status
from tests.pagerduty_fake import ESCALATION_KEY, KEY, PagerDutyFake
from tests.support import wait_until
from watcher import config
from watcher.details import (
    BreakDetail,
    ClosedDetail,
    Detail,
    MitigatedDetail,
    OpenedDetail,
    ResolvedDetail,
    SourcesDetail,
    Transition,
)
from watcher.engine import IncidentStatus
from watcher.events import Kind, State
from watcher.metrics import Metrics
from watcher.notify.announce import Announcer, Lane
from watcher.notify.messages import Renderer
from watcher.notify.news import CheckNews, EscalationNews, News, TransitionNews
from watcher.notify.pagerduty import Keys, PagerDuty, events, kinds
from watcher.notify.sender import RetryPolicy, Sender
from watcher.store import Store

T0 = 1_800_000_000.0
BOTH = Keys(KEY, ESCALATION_KEY)
CHANGES = frozenset({"mitigated"})


DETAILS: dict[Kind, Detail] = {
    Kind.OPENED: OpenedDetail("Live view black", ("cloud/*",), 900.0),
    Kind.MITIGATED: MitigatedDetail("rollback", T0),
    Kind.RESOLVED: ResolvedDetail(T0 - 900, 900.0, ("edge",), 10),
    Kind.REGRESSED: BreakDetail("edge", "level", "boom", T0),
    Kind.BLIND: SourcesDetail(("edge",)),
    Kind.CLOSED: ClosedDetail("done"),
}


def news(kind: Kind, state: State) -> TransitionNews:
    return TransitionNews("P1-a", "Live view black", kind, T0, state, DETAILS[kind])


def made(item: News, keys: Keys = BOTH) -> list[tuple[str, str | None, object]]:
    """(path, routing key, event_action) of the events for `item`."""
    found = events(
        item, keys, severity="critical", source="watcher-host", text="P1-a headline\nmore", changes=CHANGES
    )
    return [(e.path, str(e.body["routing_key"]), e.body.get("event_action")) for e in found]


class TestEvents:
    def test_open_and_regression_trigger_with_the_incident_as_dedup_key(self) -> None:
        """opened and regressed page on the incident key, deduplicated by the incident id."""
        for kind, state in ((Kind.OPENED, State.INVESTIGATING), (Kind.REGRESSED, State.REGRESSED)):
            (event,) = events(
                news(kind, state), BOTH, severity="critical", source="h", text="P1-a x\ny", changes=CHANGES
            )
            assert event.path == "enqueue" and event.body["dedup_key"] == "P1-a"
            payload = event.body["payload"]
            assert isinstance(payload, dict)
            assert (payload["summary"], payload["severity"], payload["source"]) == ("P1-a x", "critical", "h")

    def test_resolved_resolves_on_both_keys_and_nothing_else_does(self) -> None:
        """Only RESOLVED resolves, on both keys; blind and streak resets send nothing."""
        assert made(news(Kind.RESOLVED, State.RESOLVED)) == [
            ("enqueue", KEY, "resolve"),
            ("enqueue", ESCALATION_KEY, "resolve"),
        ]
        assert made(news(Kind.BLIND, State.BLIND)) == []
        assert made(news(Kind.CLOSED, State.CLOSED)) == []

    def test_mitigation_is_a_change_event(self) -> None:
        assert made(news(Kind.MITIGATED, State.VERIFYING)) == [("change/enqueue", KEY, None)]

    def test_escalation_pages_the_escalation_key_only(self) -> None:
        """The runbook's escalation triggers on its own key; without one it sends nothing."""
        escalation = EscalationNews("P1-a", "Live view black", T0, "no hypothesis 20m after it opened")
        assert made(escalation) == [("enqueue", ESCALATION_KEY, "trigger")]
        assert made(escalation, Keys(KEY, None)) == []
        assert made(news(Kind.OPENED, State.INVESTIGATING), Keys(None, ESCALATION_KEY)) == []

    def test_lane_kinds(self) -> None:
        """The lane takes what it can send: without an incident key, only resolutions and escalations."""
        assert kinds(BOTH, CHANGES) == {"opened", "regressed", "resolved", "mitigated", "escalation"}
        assert kinds(Keys(None, ESCALATION_KEY), CHANGES) == {"resolved", "escalation"}

    def test_notify_test_is_a_change_event(self) -> None:
        """`watcher notify test` never pages anyone."""
        assert made(CheckNews(T0, "pagerduty", "h")) == [("change/enqueue", KEY, None)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "state") as s:
        yield s


class TestEscalationSeam:
    async def test_an_escalation_pages_the_escalation_key_and_resolution_resolves_it(
        self, store: Store
    ) -> None:
        """Announcer.escalation() -> outbox -> sender -> PagerDuty: an alert on the escalation key,
        closed by the incident's RESOLVED like the incident key's."""
        lane = Lane("pagerduty", kinds=kinds(BOTH, CHANGES))
        announcer = Announcer(channels=(), lanes=[lane])
        queued = [
            *announcer.escalation("P1-a", "Live view black", T0, "mitigation failed twice"),
            *announcer.transitions([_transition(Kind.RESOLVED, State.RESOLVED)], _status),
        ]
        assert [(a.channel, a.kind) for a in queued] == [
            ("pagerduty", "escalation"),
            ("pagerduty", "resolved"),
        ]
        for a in queued:
            store.outbox.enqueue(a.channel, a.kind, a.news.to_json(), 0.0)
        async with PagerDutyFake() as pd, aiohttp.ClientSession() as http:
            transport = PagerDuty(
                http,
                pd.url,
                BOTH,
                severity="critical",
                source="h",
                changes=CHANGES,
                renderer=Renderer("json"),
            )
            metrics = Metrics(CollectorRegistry(), sources=[], rules=[], channels=["pagerduty"])
            sender = Sender(
                "pagerduty", transport, outbox=store.outbox, metrics=metrics, policy=RetryPolicy(0.01)
            )
            task = asyncio.create_task(sender.run())
            try:
                await wait_until(lambda: store.outbox.pending_count() == 0, what="sent")
            finally:
                task.cancel()
        assert pd.log() == [
            ("trigger", ESCALATION_KEY, "P1-a", "opened"),
            ("resolve", KEY, "P1-a", "dropped"),
            ("resolve", ESCALATION_KEY, "P1-a", "resolved"),
        ]
        summary = pd.accepted()[0].body["payload"]["summary"]
        assert summary.startswith("*P1-a* ESCALATED at") and "mitigation failed twice" in summary


def _transition(kind: Kind, state: State) -> Transition:
    return Transition("P1-a", kind, T0, state, news(kind, state).detail)


def _status(incident: str) -> IncidentStatus:
    return status(title="Live view black")


def pd_config(tmp: Path, pd: PagerDutyFake, log: Path, window: float, extra: str = "") -> Path:
    (tmp / "pd-key").write_text(KEY + "\n")
    body = f"""
[notify]
send_interval = "0.05s"
retry_initial = "0.1s"
retry_max = "0.3s"
[notify.pagerduty]
routing_key_file = "{tmp / "pd-key"}"
events_url = "{pd.url}"
source = "watcher-test"
{extra}
{edge_source(log)}"""
    return config_file(tmp, body, window=window, blind_after="1s")


class TestDaemonPages:
    async def test_trigger_no_resolve_while_blind_resolve_on_proof_and_retrigger(
        self, tmp_path: Path
    ) -> None:
        """Open triggers, the mitigation is a change event, nothing resolves while the log is missing
        (blind) even past the window; once it is back and clean for the window, resolve; an error
        after that triggers a new alert with the same dedup key."""
        log = tmp_path / "edge.log"
        window = 2.0
        async with PagerDutyFake() as pd:
            settings = config.load(pd_config(tmp_path, pd, log, window))
            async with running(settings), AsyncClient(settings) as client:
                await client.open_incident("P1-pd", "Live view black", [], None)
                await client.mitigate("P1-pd", "rollback")

                async def state_is(want: str) -> bool:
                    return bool((await incident(client, "P1-pd"))["state"] == want)

                await wait_until(lambda: state_is("blind"), what="blind")
                blind_since = time.monotonic()
                await wait_until(lambda: time.monotonic() - blind_since > 2 * window and len(pd.events) >= 2)
                assert await state_is("blind") and [e.action for e in pd.events] == ["trigger", "change"]

                append(log, f'{{"ts":"{stamp(time.time())}","level":"info","msg":"back"}}')
                await wait_until(lambda: any(e.action == "resolve" for e in pd.events), what="resolve")
                assert await state_is("resolved")
                append(log, f'{{"ts":"{stamp(time.time())}","level":"error","msg":"boom"}}')
                await wait_until(lambda: len(pd.incidents) == 2, what="a new alert on regression")
        assert pd.log() == [
            ("trigger", KEY, "P1-pd", "opened"),
            ("change", KEY, None, "change"),
            ("resolve", KEY, "P1-pd", "resolved"),
            ("trigger", KEY, "P1-pd", "opened"),
        ]
        assert pd.incidents == [(KEY, "P1-pd"), (KEY, "P1-pd")]

    async def test_the_seam_from_the_daemon(self, tmp_path: Path) -> None:
        """What the escalation decision will do: hand `announcer.escalation()` to the pipeline."""
        log = tmp_path / "edge.log"
        log.touch()
        async with PagerDutyFake() as pd:
            (tmp_path / "esc-key").write_text(ESCALATION_KEY)
            extra = f'escalation_routing_key_file = "{tmp_path / "esc-key"}"'
            settings = config.load(pd_config(tmp_path, pd, log, 600, extra))
            async with running(settings) as daemon, AsyncClient(settings) as client:
                await client.open_incident("P1-esc", "t", [], None)
                p = daemon.pipeline
                p.announce(p.announcer.escalation("P1-esc", "t", time.time(), "no hypothesis after 20m"))
                p.persist(force=True)
                await wait_until(lambda: len(pd.incidents) == 2, what="the escalation page")
        assert pd.incidents == [(KEY, "P1-esc"), (ESCALATION_KEY, "P1-esc")]

    async def test_refused_event_is_dead_lettered_and_5xx_429_retried(self, tmp_path: Path) -> None:
        """429 and 500 are retried until accepted; a 400 is dead-lettered and the lane goes on."""
        log = tmp_path / "edge.log"
        log.touch()
        async with PagerDutyFake() as pd:
            settings = config.load(pd_config(tmp_path, pd, log, 600))
            pd.fail_next(429, 500, 400)
            async with running(settings), AsyncClient(settings) as client:
                await client.open_incident("P1-r", "t", [], None)
                await client.mitigate("P1-r", "x")

                async def settled() -> bool:
                    outbox = (await client.status())["outbox"]
                    return bool(outbox["pending"] == 0)

                await wait_until(settled, what="the lane drained")
                outbox = (await client.status())["outbox"]
        assert [e.status for e in pd.events] == [429, 500, 400, 202]
        assert [e.action for e in pd.accepted()] == ["change"]  # the trigger was refused, not retried
        assert outbox["dead"] == 1
