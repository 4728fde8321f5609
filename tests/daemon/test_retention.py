"""Retention: old snapshots, delivered announcements and closed incidents go; closed incidents'
metric series go after a short grace, their streak frozen meanwhile."""

from __future__ import annotations

import os
import time
from pathlib import Path

import aiohttp

from tests.daemon.harness import AsyncClient, config_file, edge_source, running
from tests.support import wait_until
from watcher import config
from watcher.config import RetentionConfig
from watcher.daemon.retention import prune
from watcher.details import MitigatedDetail
from watcher.events import Kind
from watcher.snapshot.collect import snapshots_dir
from watcher.store import Store
from watcher.store.alerts import AlertKey
from watcher.store.threads import SlackMessage

DAY = 86400.0


def test_prune_what_is_past_its_retention(tmp_path: Path) -> None:
    """Each kind by its own clock; 0 keeps forever; dead letters and the newest heartbeat stay."""
    now = 100 * DAY
    store = Store.open(tmp_path)
    store.create_incident("P1-old", "t", ["*"], 900, now - 95 * DAY, "a@b")
    store.add_note("P1-old", now - 95 * DAY, Kind.MITIGATED, MitigatedDetail("x"))
    store.add_mitigation("P1-old", now - 95 * DAY, "x", "a@b")
    store.close_incident("P1-old", now - 91 * DAY, "done", "a@b")
    store.create_incident("P1-recent", "t", ["*"], 900, now - 95 * DAY, "a@b")
    store.close_incident("P1-recent", now - 1 * DAY, "done", "a@b")
    store.create_incident("P1-open", "t", ["*"], 900, now - 200 * DAY, "a@b")
    sent_old = store.outbox.enqueue("incident", "opened", {}, now - 9 * DAY)
    store.outbox.mark_sent(sent_old, now - 9 * DAY)
    heartbeat = store.outbox.enqueue("oncall", "heartbeat", {}, now - 9 * DAY)
    store.outbox.mark_sent(heartbeat, now - 9 * DAY)
    dead = store.outbox.enqueue("incident", "opened", {}, now - 9 * DAY)
    store.outbox.mark_dead(dead, now - 9 * DAY, "HTTP 404")
    sent_new = store.outbox.enqueue("incident", "opened", {}, now - 1 * DAY)
    store.outbox.mark_sent(sent_new, now - 1 * DAY)
    for incident in ("P1-old", "P1-recent"):  # what the integrations keep per incident
        store.slack_messages.put("slack-incident", incident, SlackMessage("C1", "1.2"), now - 95 * DAY)
        store.alerts.record(incident, [AlertKey("fp", now - 95 * DAY, "firing")], incident, now - 95 * DAY)
        store.outbox.hold("incident", incident, "streak_reset", {}, now - 91 * DAY)
    archives = snapshots_dir(tmp_path)
    archives.mkdir(parents=True)
    for name, age in (("old.tar.gz", 31), ("new.tar.gz", 1), (".x.part", 31)):
        (archives / name).write_bytes(b"x")
        os.utime(archives / name, (now - age * DAY, now - age * DAY))

    done = prune(RetentionConfig(), store, tmp_path, now)

    assert done == [
        "1 snapshot(s) older than the retention",
        "1 delivered announcement(s)",
        "1 closed incident(s) with their timelines",
    ]
    assert sorted(p.name for p in archives.iterdir()) == [".x.part", "new.tar.gz"]
    assert [i.id for i in store.incidents(include_closed=True)] == ["P1-open", "P1-recent"]
    assert store.timeline("P1-old") == []
    for table in ("slack_messages", "alerts", "held_announcements"):
        assert store.query(f"SELECT incident FROM {table}") == [("P1-recent",)], table
    left = [r[0] for r in store.query("SELECT id FROM outbox ORDER BY id")]
    assert left == [heartbeat, dead, sent_new]
    keep_all = RetentionConfig.model_validate(
        {"snapshots": "0s", "sent_announcements": "0s", "closed_incidents": "0s"}
    )
    assert prune(keep_all, store, tmp_path, now + 1000 * DAY) == []
    store.close()


async def test_closed_incident_series_go_after_the_grace(tmp_path: Path) -> None:
    """Closed: state closed and a frozen streak, scraped for `closed_metrics`, then no series."""
    log = tmp_path / "edge.log"
    log.write_text('{"level":"info"}\n')
    body = edge_source(log) + '[retention]\nclosed_metrics = "2s"\n'
    settings = config.load(config_file(tmp_path, body, window=600))
    url = f"http://127.0.0.1:{settings.http.port}/metrics"

    async def series() -> dict[str, float]:
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            text = await resp.text()
        return {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if 'incident="P1-gone"' in line
        }

    async with running(settings), AsyncClient(settings) as client:
        await client.open_incident("P1-gone", "t", [], None)
        await client.mitigate("P1-gone", "x")
        closed_at = time.monotonic()
        await client.close("P1-gone", "done")
        seen: list[dict[str, float]] = []

        async def gone() -> bool:
            now = await series()
            if now:
                seen.append(now)
            return not now

        await wait_until(gone, within=20, what="the series to go")
        assert time.monotonic() - closed_at >= 1.5, "they went before the grace"
        assert seen and all(s['watcher_incident_state{incident="P1-gone",state="closed"}'] == 1 for s in seen)
        streaks = {s['watcher_incident_clean_streak_seconds{incident="P1-gone"}'] for s in seen}
        assert len(streaks) == 1, f"the streak of a closed incident moved: {streaks}"
        assert [i["id"] for i in (await client.status())["incidents"]] == []
