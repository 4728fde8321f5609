"""Incidents opened by Alertmanager and Grafana webhook notifications: matching, naming,
the payload, and the daemon's receiver end to end (in process, with a loopback webhook)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.daemon.fake_api import Api, call
from tests.daemon.harness import AsyncClient, append, config_file, edge_source, incident, running, stamp
from tests.receiver import Receiver
from tests.support import wait_until
from watcher import config
from watcher.config.alerts import Matcher
from watcher.daemon.alert_payload import parse
from watcher.daemon.alerts import fields, incident_id, scope, title
from watcher.daemon.daemon import Daemon
from watcher.daemon.token import load_or_create_token
from watcher.errors import ConfigError
from watcher.names import INCIDENT_ID
from watcher.times import format_time, parse_time

STARTS = "2026-11-27T14:02:00.123456789Z"
GROUP = '{}/{severity="P1"}:{alertname="NovaVmsRecorderDown"}'


def alert(status: str = "firing", starts: str | None = None, **labels: str) -> dict[str, Any]:
    """An alert as Alertmanager sends it; by default it started two minutes ago (and ended now)."""
    return {
        "status": status,
        "labels": {"alertname": "NovaVmsRecorderDown", "severity": "P1", "service": "recorder", **labels},
        "annotations": {"summary": "Recorder 10.0.0.7 is down", "runbook_url": "https://runbooks.example/r"},
        "startsAt": starts or format_time(time.time() - 120),
        "endsAt": format_time(time.time()) if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph?g0.expr=up",
        "fingerprint": "c6eadffa33fcdf37",
    }


def notification(*alerts: dict[str, Any], group: str = GROUP) -> dict[str, Any]:
    """Alertmanager 0.25's webhook body (version 4), keys in its order."""
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "receiver": "novavms-watcher",
        "status": "firing" if firing else "resolved",
        "alerts": list(alerts),
        "groupLabels": {"alertname": "NovaVmsRecorderDown"},
        "commonLabels": alerts[0]["labels"] if alerts else {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:19093",
        "version": "4",
        "groupKey": group,
        "truncatedAlerts": 0,
    }


def grafana(*alerts: dict[str, Any]) -> dict[str, Any]:
    """Grafana's webhook contact point: version 1 with its extras, no fingerprint on older versions."""
    body = notification(*alerts, group='{}:{alertname="NovaVmsRecorderDown"}')
    for a in body["alerts"]:
        a.pop("fingerprint")
        a |= {"values": {"B": 0, "C": 1}, "silenceURL": "https://grafana.example/s", "dashboardURL": ""}
    return body | {"version": "1", "orgId": 1, "state": "alerting", "title": "[FIRING:1]", "message": "x"}


class TestMatchers:
    @pytest.mark.parametrize(
        ("text", "labels", "want"),
        [
            ('severity="P1"', {"severity": "P1"}, True),
            ('severity="P1"', {"severity": "P10"}, False),
            ("severity=P1", {"severity": "P1"}, True),
            ('severity!="P1"', {}, True),
            ('service=~"rec.*"', {"service": "recorder"}, True),
            ('service=~"rec"', {"service": "recorder"}, False),  # anchored, as Alertmanager's are
            ('service!~"rec.*|api"', {"service": "api"}, False),
            ('team=""', {}, True),  # a missing label is the empty string
            (r'msg="say \"hi\""', {"msg": 'say "hi"'}, True),
        ],
    )
    def test_alertmanager_semantics(self, text: str, labels: dict[str, str], want: bool) -> None:
        assert Matcher.parse(text).matches(labels) is want

    def test_config_refuses_a_bad_matcher_or_template(self) -> None:
        """One line per problem, naming the key."""
        with pytest.raises(ConfigError) as err:
            config.load(None, {"alertmanager": {"matchers": ["severity P1", 'x=~"("'], "title": "$"}})
        text = str(err.value)
        assert "alertmanager.matchers[0]: " in text and "alertmanager.matchers[1]: " in text
        assert "invalid regular expression" in text and "alertmanager.title: invalid placeholder" in text


class TestPayload:
    def test_alertmanager_v4(self) -> None:
        """Nanosecond times are read, the zero endsAt of a firing alert is no end."""
        resolved = alert("resolved", STARTS) | {"endsAt": "2026-11-27T14:09:30Z"}
        n = parse(notification(alert(starts=STARTS), resolved), 100)
        first, second = n.alerts
        assert first.starts_at == pytest.approx(parse_time("2026-11-27T14:02:00.123456Z"), abs=1e-6)
        assert first.ends_at is None and n.group_key == GROUP
        assert second.ends_at == parse_time("2026-11-27T14:09:30Z")

    def test_grafana_v1_without_fingerprints(self) -> None:
        """Grafana's extras are ignored; an alert without a fingerprint gets a stable one from its labels."""
        a, b = parse(grafana(alert()), 100), parse(grafana(alert()), 100)
        assert a.version == "1" and len(a.alerts[0].fingerprint) == 16
        assert a.alerts[0].fingerprint == b.alerts[0].fingerprint

    @pytest.mark.parametrize(
        ("body", "needle"),
        [
            ({"status": "firing", "alerts": []}, "has no groupKey"),
            (notification(alert(status="pending")), "alerts.0.status is not valid"),
            (notification(alert(starts="yesterday")), "expected an RFC 3339 time"),
            (notification(*[alert()] * 3), "more than alertmanager.max_alerts = 2"),
            ([], "must be a JSON object"),
        ],
    )
    def test_refused_with_one_sentence(self, body: Any, needle: str) -> None:
        with pytest.raises(ValueError) as err:
            parse(body, 2)
        assert needle in str(err.value)


class TestNaming:
    def test_id_is_stable_per_group_safe_and_bounded(self) -> None:
        """Same group, same id; another group, another; always a valid incident id."""
        values = fields(parse(notification(alert(starts=STARTS)), 10).alerts)
        first = incident_id("P1-$date-$alertname", GROUP, values)
        assert first == incident_id("P1-$date-$alertname", GROUP, values)
        assert first.startswith("P1-20261127-NovaVmsRecorderDown-") and len(first) == 38
        assert incident_id("P1-$date-$alertname", GROUP + "x", values) != first
        assert incident_id("P1-$date-$alertname", GROUP, values, episode=2) == first + "-2"
        odd = incident_id("$summary/../$missing" + "x" * 100, GROUP, values)
        assert INCIDENT_ID.fullmatch(odd) and len(odd) <= 64 and "/" not in odd

    def test_common_labels_title_and_scope(self) -> None:
        """Only what every alert shares is a field; a scope glob with a missing field is left out."""
        alerts = parse(notification(alert(instance="a"), alert(instance="b")), 10).alerts
        values = fields(alerts)
        assert "instance" not in values and values["service"] == "recorder"
        assert title("$alertname: $summary", values) == "NovaVmsRecorderDown: Recorder 10.0.0.7 is down"
        assert title("$nothing", values) == "NovaVmsRecorderDown"
        assert scope(["cloud/$service", "gw/$instance"], values) == ["cloud/recorder"]
        assert scope(["gw/$instance"], values) == ["*"]


@asynccontextmanager
async def receiving(tmp: Path, extra: str = "") -> AsyncIterator[tuple[Api, AsyncClient, Receiver, Daemon]]:
    """The daemon with an `edge` file source and an incident webhook, and a session to post with."""
    log = tmp / "edge.log"
    append(log, f'{{"ts":"{stamp(time.time())}","level":"info"}}')
    async with Receiver() as rx:
        body = f"""
[notify]
incident_webhook = "{rx.url()}"
send_interval = "0.05s"
[alertmanager]
matchers = ['severity="P1"']
scope = ["edge*", "cloud/$service"]
{extra}
{edge_source(log)}"""
        settings = config.load(config_file(tmp, body, window=600, blind_after=None))
        async with (
            running(settings) as daemon,
            AsyncClient(settings) as client,
            aiohttp.ClientSession() as http,
        ):
            token = load_or_create_token(settings.state_dir)
            http.headers["Authorization"] = f"Bearer {token}"
            yield (http, f"http://127.0.0.1:{settings.http.port}"), client, rx, daemon


async def post(api: Api, body: Any) -> tuple[int, Any]:
    return await call(api, "POST", "/api/v1/alerts/alertmanager", json=body)


class TestReceiver:
    async def test_opens_once_whatever_the_retries_and_reminders(self, tmp_path: Path) -> None:
        """The first firing notification opens the incident; the same again changes nothing."""
        firing = alert()
        async with receiving(tmp_path) as (api, client, rx, _):
            status, first = await post(api, notification(firing))
            assert len((await client.status())["incidents"]) == 1
            assert status == 200 and first["opened"] is True and first["new"] == 1
            for _ in range(3):  # Alertmanager's retry after a lost answer, repeat_interval, an HA peer
                assert await post(api, notification(firing)) == (200, {**first, "opened": False, "new": 0})
            inc = await incident(client, first["incident"])
            timeline = await client.timeline(first["incident"])
            await wait_until(lambda: len(rx.delivered()) >= 1, what="the opened announcement")
        assert inc["title"] == "NovaVmsRecorderDown: Recorder 10.0.0.7 is down"
        assert inc["scope"] == ["edge*", "cloud/recorder"]
        assert [e["kind"] for e in timeline["events"]] == ["alert_firing", "opened"]
        assert [b["text"].split(" ")[1] for b in rx.delivered()] == ["opened:"]

    async def test_a_cleared_alert_is_news_never_a_resolution(self, tmp_path: Path) -> None:
        """resolved: on the timeline and announced as the alert cleared; the incident stays unresolved."""
        firing = alert()
        async with receiving(tmp_path) as (api, client, rx, _):
            _, doc = await post(api, notification(firing))
            await client.mitigate(doc["incident"], "restarted the recorder")
            cleared = alert("resolved", firing["startsAt"])
            assert (await post(api, notification(cleared)))[1]["new"] == 1
            assert (await post(api, notification(cleared)))[1]["new"] == 0
            await wait_until(lambda: len(rx.delivered()) == 3, what="three announcements")
            inc = await incident(client, doc["incident"])
            kinds = [e["kind"] for e in (await client.timeline(doc["incident"]))["events"]]
        assert inc["state"] == "verifying" and inc["resolved_at"] is None
        assert kinds == ["alert_firing", "opened", "mitigated", "alert_cleared"]
        cleared = rx.delivered()[-1]["text"]
        assert "the alert cleared: Recorder 10.0.0.7 is down" in cleared and "evidence" in cleared

    async def test_matchers_decide(self, tmp_path: Path) -> None:
        """An alert the matchers do not take opens nothing and is counted as ignored."""
        async with receiving(tmp_path) as (api, client, _, _):
            status, doc = await post(api, notification(alert(severity="P3")))
            assert status == 200 and doc == {"incident": None, "opened": False, "new": 0, "ignored": 1}
            assert (await client.status())["incidents"] == []

    async def test_after_close_a_new_firing_opens_the_next_incident(self, tmp_path: Path) -> None:
        """A reminder of the old alert does not reopen anything; the group firing anew does."""
        async with receiving(tmp_path, 'id = "P1-$alertname"') as (api, client, _, _):
            first = alert(starts=STARTS)
            _, doc = await post(api, notification(first))
            await client.close(doc["incident"], "done")
            assert (await post(api, notification(first)))[1] == {**doc, "opened": False, "new": 0}
            _, again = await post(api, notification(alert()))
        assert again["opened"] is True and again["incident"] == doc["incident"] + "-2"

    async def test_grafana_opens_too(self, tmp_path: Path) -> None:
        async with receiving(tmp_path) as (api, _, _, _):
            status, doc = await post(api, grafana(alert()))
        assert status == 200 and doc["opened"] is True

    async def test_refusals(self, tmp_path: Path) -> None:
        """No token 401, too big 413, not JSON or not a notification 400 (Alertmanager does not retry 4xx)."""
        async with receiving(tmp_path, "max_body = 4096") as (api, _, _, _):
            base = api[1]
            url = base + "/api/v1/alerts/alertmanager"
            async with aiohttp.ClientSession() as anonymous, anonymous.post(url, json=notification()) as r:
                assert r.status == 401
            big = notification(*[alert(instance=str(i)) for i in range(20)])
            assert (await post(api, big))[0] == 413
            status, doc = await call(api, "POST", "/api/v1/alerts/alertmanager", data=b"{not json")
            assert (status, doc["error"]) == (400, "the notification is not valid JSON")
            status, doc = await post(api, {"status": "firing", "alerts": []})
            assert (status, doc["error"]) == (400, "the notification has no groupKey")

    async def test_a_store_failure_is_503_so_alertmanager_retries(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Nothing recorded, and an answer Alertmanager retries; the retry then opens the incident."""
        async with receiving(tmp_path) as (api, client, _, daemon):
            from watcher.errors import StoreError

            def broken(*_: object) -> None:
                raise StoreError("disk full")

            monkeypatch.setattr(daemon.store.alerts, "record", broken)
            status, _ = await post(api, notification(alert()))
            assert status == 503 and (await client.status())["incidents"] == []
            monkeypatch.undo()
            status, doc = await post(api, notification(alert()))
        assert status == 200 and doc["opened"] is True
