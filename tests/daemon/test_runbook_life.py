"""The rest of an incident's life as a user types it: the installed `watcher` against a running
daemon, every entry on the timeline and announced to the incident channel; and the
customer-facing status draft, withheld until impact is confirmed and free of log text after."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from tests.daemon.harness import AsyncClient, append, healthy, process, stamp
from tests.daemon.runbook_support import INCIDENT, runbook_config, texts
from tests.receiver import Receiver
from tests.support import wait_until
from watcher import config
from watcher.times import format_time, parse_time

WATCHER = str(Path(sys.executable).with_name("watcher"))


async def cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    run = [WATCHER, *args, "--config", str(cfg)]
    return await asyncio.to_thread(subprocess.run, run, capture_output=True, text=True, timeout=60)


async def ok(cfg: Path, *args: str) -> str:
    done = await cli(cfg, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def refused(cfg: Path, *args: str) -> str:
    """The one line a refused command prints on stderr (exit 1, no traceback)."""
    done = await cli(cfg, *args)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    return " ".join(done.stderr.split())


async def test_the_incident_life_as_a_user_types_it(tmp_path: Path) -> None:
    """open --org, hypothesis, note, list, mitigate --at (bounded to the past after the opening),
    change (on the timeline), close, list --all, reopen: each on the timeline and announced."""
    async with Receiver() as rx:
        cfg = runbook_config(tmp_path, rx, window=600.0)
        settings = config.load(cfg)
        with process(cfg):
            await wait_until(lambda: healthy(settings.http.port), what="daemon up")
            p1 = "P1-20261203-liveview"
            opened = await ok(
                cfg, *("incident", "open", p1, "--title", "Live view black for Org A", "--org", "org-a")
            )
            assert f"opened {p1}" in opened
            await ok(cfg, "incident", "hypothesis", p1, "deploy 14:02 broke the SFU keyframe path")
            await ok(cfg, "incident", "note", p1, "Org A confirms live view black")
            listed = await ok(cfg, "incident", "list")
            assert p1 in listed and "INVESTIGATING" in listed

            future = format_time(time.time() + 3600)
            assert f"the mitigation time {future} is in the future" in await refused(
                cfg, "incident", "mitigate", p1, "--action", "x", "--at", future or ""
            )
            early = "2020-01-01T00:00:00Z"
            assert f"is before {p1} (re)opened at" in await refused(
                cfg, "incident", "mitigate", p1, "--action", "x", "--at", early
            )
            assert "--at: " in await refused(cfg, "incident", "mitigate", p1, "--action", "x", "--at", "soon")
            at = format_time(time.time() - 0.5) or ""
            await ok(cfg, "incident", "mitigate", p1, "--action", "rolled back sfu to 2026.12.02", "--at", at)
            await ok(cfg, "incident", "change", p1, "--window", "20m", "--scope", "edge*")
            assert "nothing to change" in await refused(cfg, "incident", "change", p1)

            await ok(cfg, "incident", "close", p1, "--reason", "customer confirmed")
            assert p1 not in await ok(cfg, "incident", "list")
            listed_all = json.loads(await ok(cfg, "incident", "list", "--all", "--json"))["incidents"]
            assert [(i["id"], i["state"], i["orgs"]) for i in listed_all] == [(p1, "closed", ["org-a"])]
            assert "is closed" in await refused(cfg, "incident", "note", p1, "late note")
            assert f"reopened {p1}" in await ok(cfg, "incident", "reopen", p1)
            assert "only a closed incident can be reopened" in await refused(cfg, "incident", "reopen", p1)
            doc = json.loads(await ok(cfg, "timeline", p1, "--format", "json"))
            markdown = await ok(cfg, "timeline", p1, "--format", "markdown")
            await wait_until(lambda: bool(texts(rx, INCIDENT, "reopened")), what="the reopening announced")
    kinds = [e["kind"] for e in doc["events"]]
    assert kinds == ["opened", "hypothesis", "note", "mitigated", "changed", "closed", "reopened"]
    mitigated = next(e for e in doc["events"] if e["kind"] == "mitigated")
    assert parse_time(mitigated["at"]) == parse_time(at)
    assert doc["mitigations"][0]["at"] == mitigated["at"]
    assert "Changed: scope * → edge*; window 10m → 20m" in markdown
    assert "Hypothesis (for a person to confirm): deploy 14:02 broke the SFU keyframe path" in markdown
    assert "| Hypotheses | 1 |" in markdown
    heads = [t.split(" ", 2)[:2] for t in texts(rx, INCIDENT)]
    announced = ["opened:", "hypothesis:", "note:", "mitigation", "changed", "closed:", "reopened:"]
    assert heads == [[f"*{p1}*", kind] for kind in announced]


async def test_statuspage_withheld_until_impact_is_confirmed_and_free_of_log_text(tmp_path: Path) -> None:
    """Before 5 error records over 1s: exit 3, nothing to post. After: counts and times only, no
    log line, host or source name, title or hypothesis; monitoring while verified, resolved after."""
    async with Receiver() as rx:
        log = tmp_path / "gw-berlin-01.log"
        source = f"""
[[sources]]
name = "gw-berlin-01"
kind = "file"
path = "{log}"
quiet_ok = true
impact_field = "org_id"
[[rules]]
name = "level"
field = "level"
values = ["error"]
"""
        runbook = 'confirm_records = 5\nconfirm_over = "1s"\nservice = "NovaVMS live view"'
        cfg = runbook_config(tmp_path, rx, window=600.0, source=source, runbook=runbook)
        settings = config.load(cfg)
        secret = "SFU keyframe 0xdeadbeef token=hunter2 on gw-berlin-01.novalien.net"
        p1 = "P1-sp"
        with process(cfg):
            await wait_until(lambda: healthy(settings.http.port), what="daemon up")
            async with AsyncClient(settings) as client:
                await client.open_incident(p1, "gw-berlin-01 live view black for Org A", [], None)
                await client.note(p1, "bad deploy of sfu 2026.12.03 on gw-berlin-01", hypothesis=True)
                append(log, *(_error(time.time() - 3 + i * 0.2, f"org-{i % 3}", secret) for i in range(4)))
                await wait_until(lambda: _records(client, p1, 4), what="four error records")
                withheld = await cli(cfg, "statuspage", p1)
                assert withheld.returncode == 3 and withheld.stdout == ""
                assert "withheld: impact not confirmed yet" in withheld.stderr
                append(log, _error(time.time(), "org-3", secret))
                await wait_until(lambda: _records(client, p1, 5), what="five error records")
                identified = await ok(cfg, "statuspage", p1)
                await client.mitigate(p1, "rolled back sfu")
                monitoring = json.loads(await ok(cfg, "statuspage", p1, "--json"))
                await client.change(p1, window="1s")

                async def resolved() -> bool:
                    return bool((await client.statuspage(p1))["phase"] == "resolved")

                await wait_until(resolved, what="the draft resolved")
                out = tmp_path / "drafts" / "status.txt"
                assert f"wrote {out}" in await ok(cfg, "statuspage", p1, "--out", str(out))
    final = out.read_text()
    assert identified.startswith("Identified: NovaVMS live view\n")
    assert "affecting 4 organisations since " in identified
    assert monitoring["phase"] == "monitoring" and monitoring["affected_orgs"] == 4
    assert monitoring["text"].startswith("Monitoring: NovaVMS live view")
    assert final.startswith("Resolved: NovaVMS live view\n\nThis incident has been resolved.")
    for draft in (identified, monitoring["text"], final):
        for leak in ("keyframe", "0xdeadbeef", "hunter2", "gw-berlin", "novalien", "Org A", "deploy", "sfu"):
            assert leak not in draft, (leak, draft)


def _error(at: float, org: str, message: str) -> str:
    return json.dumps({"ts": stamp(at), "level": "error", "org_id": org, "msg": message})


async def _records(client: AsyncClient, incident: str, n: int) -> bool:
    doc = await client.status()
    found = [i for i in doc["incidents"] if i["id"] == incident]
    return bool(found and found[0].get("impact", {}).get("records") == n)
