"""`watcher postmortem` on a real incident: the file's sections and facts checked against the
incident's record (`watcher timeline --format json`), read back by a markdown parser."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.cli.markdown import HEADINGS, check_markdown
from tests.daemon.harness import AsyncClient, append, healthy, process, stamp
from tests.daemon.runbook_support import INCIDENT, failing, runbook_config, texts
from tests.daemon.test_runbook_life import cli, ok, refused
from tests.receiver import Answer, Receiver
from tests.support import wait_until
from watcher import config
from watcher.names import default_user
from watcher.times import format_duration, format_time, short_time

P1 = "P1-20261203-liveview"


def section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


@pytest.mark.slow
async def test_postmortem_sections_and_facts_match_the_record(tmp_path: Path) -> None:
    """A whole incident (dead-lettered announcement, escalation, snapshot, failed mitigation, a
    mitigation recorded after the fact, resolution, note, close), then its postmortem."""
    async with Receiver() as rx:
        rx.answer(Answer(404))  # the first announcement, "opened", is dead-lettered
        log = tmp_path / "edge.log"
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
        runbook = 'no_hypothesis_after = "1s"\nconfirm_records = 3\nconfirm_over = "0s"'
        cfg = runbook_config(tmp_path, rx, window=1.0, source=source, runbook=runbook)
        settings = config.load(cfg)
        out = tmp_path / "docs" / "superpowers" / "plans"
        with process(cfg):
            await wait_until(lambda: healthy(settings.http.port), what="daemon up")
            async with AsyncClient(settings) as client:
                title = "Live view black for Org A"
                await ok(cfg, "incident", "open", P1, "--title", title, "--org", "org-a")
                now = stamp(time.time())
                append(
                    log, *(json.dumps({"ts": now, "level": "error", "org_id": f"org-{c}"}) for c in "aabc")
                )
                await wait_until(lambda: bool(texts(rx, INCIDENT, "ESCALATE")), what="the escalation")
                await ok(cfg, "incident", "hypothesis", P1, "deploy 14:02 broke the SFU keyframe path")
                await ok(cfg, "snapshot", "--incident", P1, "--reason", "before restarting sfu")
                async with failing(log):
                    await ok(cfg, "incident", "mitigate", P1, "--action", "restarted sfu")

                    async def first_failed() -> bool:
                        events = (await client.timeline(P1))["events"]
                        return any(e["kind"] == "mitigation_failed" for e in events)

                    await wait_until(first_failed, what="the first mitigation failed")
                rollback = format_time(time.time()) or ""
                await ok(cfg, "incident", "mitigate", P1, "--action", "rolled back sfu", "--at", rollback)

                async def resolved() -> bool:
                    return bool((await client.timeline(P1))["summary"]["resolved_at"])

                await wait_until(resolved, what="resolved")
                await ok(cfg, "incident", "note", P1, "Org A confirms live view back")
                await ok(cfg, "incident", "close", P1, "--reason", "verified")
                record = json.loads(await ok(cfg, "timeline", P1, "--format", "json"))
                wrote = await ok(cfg, "postmortem", P1, "--out", str(out))
                again = await refused(cfg, "postmortem", P1, "--out", str(out))
                text = (out / f"{record['opened_at'][:10]}-p1-liveview.md").read_text()
                await ok(cfg, "postmortem", P1, "--out", str(tmp_path / "by"), "--by")
                with_by = (tmp_path / "by" / f"{record['opened_at'][:10]}-p1-liveview.md").read_text()
                forced = await ok(cfg, "postmortem", P1, "--out", str(out), "--force")
                code = (await cli(cfg, "postmortem", "P1-nothing", "--out", str(out))).returncode
    day = record["opened_at"][:10]
    assert f"wrote {out / f'{day}-p1-liveview.md'} (due " in wrote
    assert "exists (someone may have edited it): --force overwrites it" in again
    assert forced.startswith("wrote ")
    assert code == 1
    assert check_markdown(text) == ["Postmortem: Live view black for Org A", *HEADINGS]
    s, h, events = record["summary"], record["handling"], record["events"]

    summary = section(text, "1. Summary")
    assert f"opened {short_time(s['opened_at'])}" in summary
    assert f"resolved {short_time(s['resolved_at'])}." in summary
    assert f"**How long**: {format_duration(round(s['time_to_resolve']))} from opening" in summary

    impact = section(text, "2. Impact")
    assert "- Orgs with errors: 3." in impact  # the failing lines after these name no org
    assert "- Named org `org-a`: 2 error record(s), last error " in impact
    assert f"- Impact confirmed at {short_time(h['impact_confirmed_at'])}." in impact

    timeline = section(text, "3. Timeline")
    rows = [ln for ln in timeline.splitlines() if ln.startswith("| 20")]
    kinds = "".join("r" if e["kind"] == "streak_reset" else "." for e in events)
    runs = [len(run) for run in kinds.split(".") if run]
    assert len(rows) == kinds.count(".") + sum(min(n, 2) for n in runs)  # of a run: first and last
    assert "Note: Org A confirms live view back" in timeline

    (hypothesis,) = h["hypotheses"]
    root = section(text, "4. Root cause")
    assert f"{short_time(hypothesis['at'])}: deploy 14:02 broke the SFU keyframe path — _[to write:" in root

    well = section(text, "5. What went well")
    (snapshot,) = h["snapshots"]
    assert f"`{snapshot['file']}`, {snapshot['bytes']:,} bytes, sha256 `{snapshot['sha256']}`" in well
    assert f"Time to mitigate: {format_duration(round(s['time_to_mitigate']))}." in well

    wrong = section(text, "6. What went wrong")
    (failure,) = h["failures"]
    made = short_time(failure["mitigated_at"])
    assert f"Mitigation failed: restarted sfu (made {made}): not resolved within 2s" in wrong
    (escalation,) = h["escalations"]
    escalated = short_time(escalation["at"])
    assert f"Escalated (no_hypothesis) at {escalated}: no hypothesis recorded 1s" in wrong
    assert "Announcement `opened` to incident queued " in wrong
    assert ": dead-lettered after 1 attempt(s)" in wrong

    assert "| action | owner | date | issue |" in section(text, "7. Action items")
    assert default_user() not in text
    assert f"| {default_user()} |" in with_by
