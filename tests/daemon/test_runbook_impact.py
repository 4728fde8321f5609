"""Impact by org on a real daemon: generated multi-org logs in two formats, exact counts in status,
the on-call update and RESOLVED; 100,000 orgs held to the configured cap."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

import pytest
from rich.console import Console

from tests.daemon.harness import AsyncClient, incident, stamp
from tests.daemon.harness import running as daemon_running
from tests.daemon.runbook_support import INCIDENT, ONCALL, metric, metrics_text, runbook_config, texts
from tests.receiver import Receiver
from tests.support import wait_until
from watcher import config
from watcher.cli.status_view import status_view
from watcher.config import Settings
from watcher.store.schema import DB_NAME


def sources(tmp: Path) -> str:
    """`edge` writes JSON with an org_id field; `gw` writes text with `org=...` in the message."""
    return f"""
[[sources]]
name = "edge"
kind = "file"
path = "{tmp / "edge.log"}"
quiet_ok = true
impact_field = "org_id"
[[sources]]
name = "gw"
kind = "file"
path = "{tmp / "gw.log"}"
quiet_ok = true
impact_regex = 'org=(\\S+)'
[[rules]]
name = "level"
field = "level"
values = ["error"]
[[rules]]
name = "text"
regex = "^ERROR "
"""


def generate(tmp: Path, seed: int = 15) -> tuple[set[str], dict[str, int], int]:
    """Both logs, shuffled: errors of 150 orgs (some in both formats), errors naming no org, and
    info lines of orgs that had no error. The distinct orgs with errors, the error records per
    org, and all error records."""
    rng = random.Random(seed)
    now = time.time()
    per_org: dict[str, int] = {}
    edge, gw = [], []
    records = 0
    for i in range(600):
        org = f"org-{rng.randrange(150):03d}"
        at = stamp(now + i * 0.001)
        kind = rng.random()
        if kind < 0.45:
            edge.append(f'{{"ts":"{at}","level":"error","org_id":"{org}","msg":"keyframe lost"}}')
        elif kind < 0.85:
            gw.append(f"{at} ERROR org={org} camera={i} stream dropped")
        elif kind < 0.95:
            edge.append(f'{{"ts":"{at}","level":"info","org_id":"idle-{org}","msg":"ok"}}')
            continue
        else:
            edge.append(f'{{"ts":"{at}","level":"error","msg":"no org on this one"}}')
            records += 1
            continue
        per_org[org] = per_org.get(org, 0) + 1
        records += 1
    (tmp / "edge.log").write_text("".join(line + "\n" for line in edge))
    (tmp / "gw.log").write_text("".join(line + "\n" for line in gw))
    return set(per_org), per_org, records


def short(settings: Settings, heartbeat: float) -> Settings:
    """The on-call update every `heartbeat` seconds: below the minute a user may configure."""
    notify = settings.notify.model_copy(update={"heartbeat": heartbeat})
    return settings.model_copy(update={"notify": notify})


async def test_impact_counts_on_a_generated_multi_org_log(tmp_path: Path) -> None:
    """Exact distinct orgs and records across a JSON and a text source; the named org's count;
    in status, the on-call update, RESOLVED and /metrics (counts only, never an org id)."""
    async with Receiver() as rx:
        cfg = runbook_config(tmp_path, rx, window=600.0, source=sources(tmp_path))
        settings = short(config.load(cfg), heartbeat=1.0)
        async with daemon_running(settings) as daemon, AsyncClient(daemon.settings) as client:
            await client.open_incident("P1-orgs", "live view black", [], None, ["org-007", "org-zzz"])
            orgs, per_org, records = generate(tmp_path)

            async def counted() -> bool:
                return bool((await incident(client, "P1-orgs"))["impact"]["records"] == records)

            await wait_until(counted, what="every error record counted")
            doc = await client.status()
            impact = (await incident(client, "P1-orgs"))["impact"]
            port = settings.http.port

            async def exported() -> bool:  # the metrics are refreshed each second
                return await metric(port, 'watcher_incident_orgs{incident="P1-orgs"}') == len(orgs)

            await wait_until(exported, what="the org count in /metrics")
            exposition = await metrics_text(port)
            await wait_until(lambda: bool(texts(rx, ONCALL, "org(s) had errors")), what="the on-call update")

            await client.change("P1-orgs", window="1s")
            await client.mitigate("P1-orgs", "rolled back sfu")
            await wait_until(lambda: bool(texts(rx, INCIDENT, "RESOLVED")), what="RESOLVED")
        assert (impact["orgs"], impact["affected"], impact["untracked"]) == (len(orgs), len(orgs), 0)
        named = {n["org"]: n for n in impact["named"]}
        assert named["org-007"]["records"] == per_org["org-007"] and named["org-007"]["affected"]
        assert named["org-zzz"] == {
            "org": "org-zzz",
            "first": None,
            "last": None,
            "records": 0,
            "affected": False,
        }
        assert impact["lines"][0].startswith(f"{len(orgs)} org(s) had errors, {len(orgs)} still affected")
        assert "org-0" not in exposition and "idle-" not in exposition
        console = Console(record=True, width=200)
        console.print(status_view(doc))
        assert f"impact: {len(orgs)} org(s) had errors" in console.export_text()
        update = texts(rx, ONCALL, "org(s) had errors")[0]
        assert f"{len(orgs)} org(s) had errors" in update
        assert f"org-007: still affected, {per_org['org-007']} error record(s)" in update
        (resolved,) = texts(rx, INCIDENT, "RESOLVED")
        assert f"{len(orgs)} org(s) had errors, 0 still affected" in resolved
        assert f"org-007: clear, {per_org['org-007']} error record(s)" in resolved
        assert "org-zzz: no error seen" in resolved


@pytest.mark.slow
async def test_100000_orgs_are_held_to_the_cap(tmp_path: Path) -> None:
    """100,000 distinct orgs with max_orgs = 1,000: every record counted, 1,000 orgs named (in the
    engine, the store and the metric), the rest counted as untracked."""
    log = tmp_path / "edge.log"
    async with Receiver() as rx:
        source = f"""
[[sources]]
name = "edge"
kind = "file"
path = "{log}"
quiet_ok = true
impact_field = "org_id"
[[rules]]
name = "level"
field = "level"
values = ["error"]
"""
        cfg = runbook_config(tmp_path, rx, window=600.0, source=source, runbook="max_orgs = 1000")
        settings = config.load(cfg)
        async with daemon_running(settings), AsyncClient(settings) as client:
            await client.open_incident("P1-many", "every org at once", [], None, ["org-099999"])
            # Written once the incident is open: records read before it opened would count only
            # through the impact lookback (the last 10,000), and how many are read before the
            # open arrives depends on how fast the file is read.
            now = time.time()
            with log.open("w") as fh:
                for i in range(100_000):
                    fh.write(f'{{"ts":"{stamp(now + i * 1e-5)}","level":"error","org_id":"org-{i:06d}"}}\n')

            async def counted() -> bool:
                return bool((await incident(client, "P1-many"))["impact"]["records"] == 100_000)

            await wait_until(counted, within=120.0, what="100,000 error records counted")
            impact = (await incident(client, "P1-many"))["impact"]
            port = settings.http.port
            untracked = 'watcher_incident_untracked_org_records{incident="P1-many"}'

            async def exported() -> bool:
                return await metric(port, untracked) == 98_999

            await wait_until(exported, what="the counts in /metrics")
            orgs = await metric(port, 'watcher_incident_orgs{incident="P1-many"}')
            pm = await client.postmortem("P1-many")
        assert (impact["orgs"], impact["untracked"], impact["cap"]) == (1001, 98_999, 1000)
        assert [n["records"] for n in impact["named"]] == [1]  # a named org is always tracked
        assert orgs == 1001
        with sqlite3.connect(settings.state_dir / DB_NAME) as db:
            (rows,) = db.execute("SELECT count(*) FROM impact_orgs WHERE incident = 'P1-many'").fetchone()
        assert rows == 1001
        assert len(pm["orgs"]) == 1001
