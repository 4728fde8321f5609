"""A real Prometheus and a real Alertmanager on loopback open an incident through the webhook."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.alertmanager import Exporter, alerting, notifications
from tests.daemon.test_alerts import receiving
from tests.support import wait_until
from watcher.config.endpoint import TOKEN_FILE
from watcher.errors import StoreError


@pytest.mark.prometheus
@pytest.mark.slow
async def test_alertmanager_opens_one_incident_and_its_clearing_resolves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rule fires on a test metric; Alertmanager's webhook, with the API token, opens one incident.
    Its retry (after a 503) and its reminders (repeat_interval) open nothing more; the alert
    resolving is on the timeline and announced, and the incident stays unresolved."""
    async with receiving(tmp_path) as (api, client, rx, daemon):
        refused: list[str] = []
        record = daemon.store.alerts.record

        def first_fails(group: str, *rest: object) -> None:
            if not refused:
                refused.append(group)
                raise StoreError("disk full")  # answered 503: Alertmanager retries
            record(group, *rest)  # type: ignore[arg-type]

        monkeypatch.setattr(daemon.store.alerts, "record", first_fails)
        token = daemon.settings.state_dir / TOKEN_FILE
        webhook = f"{api[1]}/api/v1/alerts/alertmanager"
        exporter = Exporter()
        async with exporter.serving(), alerting(tmp_path, webhook, token, exporter, repeat="2s") as am:

            async def opened() -> bool:
                return bool((await client.status())["incidents"])

            await wait_until(opened, within=60, what="the incident opened by Alertmanager")
            seen = await notifications(am)
            await wait_until(lambda: _more(am, seen + 2), within=60, what="two reminders")
            (inc,) = (await client.status())["incidents"]
            exporter.up = 1

            async def cleared() -> bool:
                events = (await client.timeline(inc["id"]))["events"]
                return any(e["kind"] == "alert_cleared" for e in events)

            await wait_until(cleared, within=60, what="the alert cleared")
            (after,) = (await client.status())["incidents"]
            kinds = [e["kind"] for e in (await client.timeline(inc["id"]))["events"]]
            await wait_until(lambda: len(rx.delivered()) == 2, what="opened and cleared announced")
    assert refused and inc["id"].startswith("P1-") and "NovaVmsRecorderDown" in inc["id"]
    assert inc["title"].startswith("NovaVmsRecorderDown: Recorder 127.0.0.1:")
    assert kinds == ["alert_firing", "opened", "alert_cleared"]
    assert after["state"] == "investigating" and after["resolved_at"] is None
    assert "the alert cleared" in rx.delivered()[1]["text"]


async def _more(am: int, want: float) -> bool:
    return await notifications(am) >= want
