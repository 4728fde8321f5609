"""The runbook's clock on a real daemon: escalations decided from the store, announced to the
incident and on-call webhooks once per cause, across kill -9."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.daemon.harness import AsyncClient, config_file, edge_source, healthy, process
from tests.daemon.harness import running as daemon_running
from tests.daemon.runbook_support import INCIDENT, ONCALL, failing, metric, runbook_config, texts
from tests.pagerduty_fake import ESCALATION_KEY, PagerDutyFake
from tests.receiver import Receiver
from tests.support import wait_until
from watcher import config
from watcher.times import format_time, parse_time

ESCALATE = "ESCALATE to the engineering lead"


async def kinds(client: AsyncClient, incident: str) -> Counter[str]:
    return Counter(e["kind"] for e in (await client.timeline(incident))["events"])


async def drained(client: AsyncClient) -> bool:
    return bool((await client.status())["outbox"]["pending"] == 0)


def escalations(rx: Receiver) -> Counter[tuple[str, str]]:
    """Per channel and cause, the escalation messages delivered."""
    found: Counter[tuple[str, str]] = Counter()
    for path in (INCIDENT, ONCALL):
        for text in texts(rx, path, ESCALATE):
            cause = "no_hypothesis" if "no hypothesis recorded" in text else "mitigations_failed"
            found[path, cause] += 1
    return found


@pytest.mark.slow
async def test_two_failed_mitigations_escalate_once_per_cause_across_sigkill(tmp_path: Path) -> None:
    """No hypothesis by open + 2s, then two mitigations not resolved within twice the 1s window:
    one escalation per cause on both channels, on the timeline and in the metric, through two
    kills; the second failure is decided by a restarted daemon from a mitigation recorded with
    --at while the first was down."""
    async with Receiver() as rx:
        cfg = runbook_config(tmp_path, rx, runbook='no_hypothesis_after = "2s"\nfailed_mitigations = 2')
        settings = config.load(cfg)
        port = settings.http.port
        async with failing(tmp_path / "edge.log"), AsyncClient(settings) as client:
            with process(cfg) as proc:
                await wait_until(lambda: healthy(port), what="daemon up")
                await client.open_incident("P1-esc", "live view black", [], None)
                await client.mitigate("P1-esc", "restarted sfu")

                async def first_round() -> bool:
                    k = await kinds(client, "P1-esc")
                    return k["mitigation_failed"] == 1 and escalations(rx)[ONCALL, "no_hypothesis"] == 1

                await wait_until(first_round, what="the first failure and the no-hypothesis escalation")
                # Delivery is at least once: a message sent but not yet marked is sent again after a
                # kill. What this test counts is the decision, so kill once the outbox is drained.
                await wait_until(lambda: drained(client), what="the outbox drained")
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            down_at = time.time()
            with process(cfg) as proc:
                await wait_until(lambda: healthy(port), what="daemon up again")
                await client.mitigate("P1-esc", "rolled back sfu", format_time(down_at))
                failed = 'watcher_incident_escalations_total{cause="mitigations_failed",incident="P1-esc"}'

                async def second_round() -> bool:
                    both = escalations(rx)[INCIDENT, "mitigations_failed"] == 1
                    return both and escalations(rx)[ONCALL, "mitigations_failed"] == 1

                await wait_until(second_round, what="the mitigations_failed escalation")
                assert await metric(port, failed) == 1
                await wait_until(lambda: drained(client), what="the outbox drained")
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            with process(cfg):
                await wait_until(lambda: healthy(port), what="daemon up a third time")

                async def judged() -> bool:
                    return await metric(port, failed) == 1

                await wait_until(judged, what="the record judged again")
                await client.mitigate("P1-esc", "restarted gateways")

                async def third_failed() -> bool:
                    return (await kinds(client, "P1-esc"))["mitigation_failed"] == 3

                await wait_until(third_failed, what="a third failed mitigation")
                assert await metric(port, failed) == 1
                hyp = 'watcher_incident_escalations_total{cause="no_hypothesis",incident="P1-esc"}'
                assert await metric(port, hyp) == 1
                assert await metric(port, 'watcher_incident_failed_mitigations_total{incident="P1-esc"}') == 3
                k = await kinds(client, "P1-esc")
                events = (await client.timeline("P1-esc"))["events"]
        assert k["escalated"] == 2 and k["mitigation_failed"] == 3
        causes = [str(e["detail"]["cause"]) for e in events if e["kind"] == "escalated"]
        assert sorted(causes) == ["mitigations_failed", "no_hypothesis"]
        assert escalations(rx) == {
            (INCIDENT, "no_hypothesis"): 1,
            (ONCALL, "no_hypothesis"): 1,
            (INCIDENT, "mitigations_failed"): 1,
            (ONCALL, "mitigations_failed"): 1,
        }
        (text,) = texts(rx, ONCALL, "mitigations failed")
        assert "2 mitigations failed: restarted sfu (not resolved within 2s" in text
        assert "rolled back sfu (not resolved within 2s" in text


async def test_no_hypothesis_by_open_plus_n_escalates(tmp_path: Path) -> None:
    """no_hypothesis_after shortened to 2s: the incident without a hypothesis escalates, on both
    channels; the one given a hypothesis in time does not; each is on its timeline."""
    async with Receiver() as rx:
        cfg = runbook_config(tmp_path, rx, runbook='no_hypothesis_after = "2s"')
        async with daemon_running(config.load(cfg)) as daemon, AsyncClient(daemon.settings) as client:
            await client.open_incident("P1-quiet", "nobody has a clue", [], None)
            await client.open_incident("P1-known", "deploy suspected", [], None)
            await client.note("P1-known", "deploy 14:02 broke the SFU keyframe path", hypothesis=True)
            await wait_until(lambda: len(texts(rx, ONCALL, ESCALATE)) == 1, what="the escalation")
            quiet = (await client.timeline("P1-quiet"))["events"]
            known = (await client.timeline("P1-known"))["events"]
            opened = next(str(e["at"]) for e in quiet if e["kind"] == "opened")
        (esc,) = [e for e in quiet if e["kind"] == "escalated"]
        assert esc["detail"]["cause"] == "no_hypothesis"
        assert esc["at"] == format_time(parse_time(opened) + 2.0)
        assert "escalated" not in [e["kind"] for e in known]
        assert [e["kind"] for e in known].count("hypothesis") == 1
        (text,) = texts(rx, ONCALL, ESCALATE)
        assert text.startswith("*P1-quiet* ESCALATE to the engineering lead: no hypothesis recorded 2s after")
        assert len(texts(rx, INCIDENT, ESCALATE)) == 1
        hypothesis = texts(rx, INCIDENT, "hypothesis:")
        assert hypothesis == ["*P1-known* hypothesis: deploy 14:02 broke the SFU keyframe path"]


async def test_an_escalation_pages_the_escalation_key_once_across_a_restart(tmp_path: Path) -> None:
    """With PagerDuty's escalation routing key: the no-hypothesis escalation triggers one alert on
    that key (dedup key the incident id), and a restarted daemon does not page again."""
    log = tmp_path / "edge.log"
    log.touch()
    async with PagerDutyFake() as pd:
        (tmp_path / "esc-key").write_text(ESCALATION_KEY)
        body = f"""
[notify]
send_interval = "10ms"
retry_initial = "0.1s"
[notify.pagerduty]
escalation_routing_key_file = "{tmp_path / "esc-key"}"
events_url = "{pd.url}"
[runbook]
no_hypothesis_after = "1s"
{edge_source(log)}"""
        settings = config.load(config_file(tmp_path, body, window=600.0, blind_after=None))
        async with daemon_running(settings), AsyncClient(settings) as client:
            await client.open_incident("P1-page", "nobody has a clue", [], None)
            await wait_until(lambda: len(pd.incidents) == 1, what="the escalation page")
        async with daemon_running(settings), AsyncClient(settings) as client:
            await client.note("P1-page", "a note after the restart: the record is judged again")
            opened = 'watcher_incident_opened_timestamp_seconds{incident="P1-page"}'

            async def judged_and_sent() -> bool:
                pending = (await client.status())["outbox"]["pending"]
                return await metric(settings.http.port, opened) is not None and pending == 0

            await wait_until(judged_and_sent, what="the record judged again and the outbox drained")
            events = await client.timeline("P1-page")
    assert pd.incidents == [(ESCALATION_KEY, "P1-page")]
    assert [e["kind"] for e in events["events"]].count("escalated") == 1
    (page,) = [e for e in pd.events if e.action == "trigger"]
    assert page.body["payload"]["custom_details"]["cause"] == "no_hypothesis"
