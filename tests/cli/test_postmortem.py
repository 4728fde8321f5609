"""The postmortem draft: the runbook's seven sections, every fact from the record, valid markdown.

The document is built from a hand-made record through the daemon's own document builders
(watcher.daemon.status), so what is checked here is what `watcher postmortem` writes; the
daemon end to end is tests/daemon/test_runbook_postmortem.py.
"""

from __future__ import annotations

from datetime import date

import pytest

from tests.cli.markdown import HEADINGS, check_markdown
from tests.runbook.record import Record
from watcher.cli import postmortem as pm
from watcher.daemon.status import delivery_doc, impact_doc, org_doc, timeline_doc
from watcher.details import BreakDetail, GapDetail, ImpactDetail, SnapshotDetail, SourcesDetail, TextDetail
from watcher.engine.impact import Impact, ImpactPolicy
from watcher.events import Kind
from watcher.schema import PostmortemDoc
from watcher.store.outbox import Delivery
from watcher.store.rows import IncidentRow
from watcher.times import format_time

T0 = 1_796_306_700.0  # 2026-12-03T14:05:00Z, a Thursday
W = 900.0
SHA = "ab" * 32


def liveview() -> Record:
    """P1-20261203-liveview: the runbook's example, with everything a postmortem reports."""
    row = IncidentRow(
        "P1-20261203-liveview",
        "Live view black for Org A",
        ("cloud/*", "gw/*"),
        W,
        T0,
        None,
        None,
        (),
        opened_by="alice@bastion",
        orgs=("org-a",),
    )
    rec = Record(row=row)
    snap = SnapshotDetail(
        "20261203T141500Z-P1-20261203-liveview-before-rollback.tar.gz",
        "/var/lib/novavms-watcher/snapshots/x.tar.gz",
        48_211,
        SHA,
        trigger="then",
        reason="before rollback",
        by="alice@bastion",
    )
    rec.add(T0 + 240, Kind.IMPACT_CONFIRMED, ImpactDetail(12, 3, T0 - 60), "investigating")
    rec.hypothesis(T0 + 1300, "deploy 14:02 broke the SFU keyframe path")
    rec.add(T0 + 600, Kind.SNAPSHOT, snap)
    rec.mitigate(T0 + 610, "restarted sfu")
    for i in range(5):  # an error every second: a run of resets
        rec.add(T0 + 620 + i, Kind.STREAK_RESET, BreakDetail("cloud/sfu", "level", f"boom {i}", T0 + 620 + i))
    rec.add(T0 + 700, Kind.BLIND, SourcesDetail(("gw/gw-berlin-01",)), "blind")
    rec.add(T0 + 760, Kind.RECOVERED, SourcesDetail(("gw/gw-berlin-01",)), "verifying")
    rec.add(
        T0 + 800, Kind.GAP, GapDetail("cloud/sfu", T0 + 780, T0 + 800, "container recreated"), "verifying"
    )
    rec.failed(T0 + 610 + 2 * W, T0 + 610, "restarted sfu", 1)
    rec.escalated(T0 + 1200, "no_hypothesis")
    rec.mitigate(T0 + 2800, "rolled back sfu to 2026.12.02")
    rec.resolve(T0 + 2800 + W)
    rec.add(T0 + 3800, Kind.NOTE, TextDetail("Org A confirms live view back", "carol@bastion"))
    return rec.close(T0 + 3900)


def document(rec: Record) -> PostmortemDoc:
    impact = Impact(100, rec.row.orgs)
    policy = ImpactPolicy(records=3, over=60.0)
    for i, org in enumerate(["org-a", "org-b", "org-a", "org-c"] * 3):
        impact.record(org, T0 - 60 + 20 * i, policy)
    upto = T0 + 2800 + W
    sent = Delivery("incident", "opened", T0, "sent", T0 + 1, 1, None)
    late = Delivery("incident", "mitigated", T0 + 610, "sent", T0 + 790, 3, "429")
    dead = Delivery("oncall", "heartbeat", T0 + 900, "dead", T0 + 960, 0, "404 Not Found")
    return {
        "timeline": timeline_doc(rec.row, rec.rows, T0 + 4000),
        "impact": impact_doc(impact.summary(upto, W)),
        "orgs": [org_doc(o) for o in impact.statuses(upto, W)],
        "announcements": [delivery_doc(d) for d in (sent, late, dead)],
        "generated_at": format_time(T0 + 4000),
    }


def section(text: str, title: str) -> str:
    """The body of the `## title` section."""
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


class TestPostmortem:
    def test_file_name_is_the_day_and_the_slug(self) -> None:
        """YYYY-MM-DD-<slug>.md: the day it opened, the id without P1 date stamp, lower case."""
        assert pm.filename(document(liveview())) == "2026-12-03-p1-liveview.md"

    def test_seven_sections_in_order_and_valid_markdown(self) -> None:
        """The runbook's sections, as h2, in order; every table parses with its columns."""
        text = pm.render(document(liveview()))
        assert check_markdown(text) == ["Postmortem: Live view black for Org A", *HEADINGS]

    def test_summary_facts(self) -> None:
        """What, when, how long: from the record, beside a marked blank for the paragraph."""
        s = section(pm.render(document(liveview())), "1. Summary")
        assert "_[to write: one paragraph, no jargon" in s
        assert "**When** (UTC): opened 2026-12-03 14:05:00Z; first mitigated 2026-12-03 14:15:10Z;" in s
        assert "resolved 2026-12-03 15:06:40Z." in s
        assert "**How long**: 1h1m40s from opening to the resolution" in s
        assert "**State** when drafted: closed" in s

    def test_impact_orgs_and_named_org(self) -> None:
        """Distinct orgs, each with its records and times; the named org; confirmation."""
        s = section(pm.render(document(liveview())), "2. Impact")
        assert "- Error records in scope: 12" in s
        assert "- Orgs with errors: 3." in s
        assert "- Named org `org-a`: 6 error record(s), last error " in s
        assert "- Impact confirmed at " in s
        assert "| `org-a` | 6 |" in s and "| `org-b` | 3 |" in s and "| `org-c` | 3 |" in s
        assert "_[to write: broken (e.g. live view black) or degraded" in s

    def test_timeline_is_every_entry_in_utc(self) -> None:
        """One row per entry of the record, in event order; of a run of streak resets the first
        and the last, saying how many are left out."""
        rec = liveview()
        s = section(pm.render(document(rec)), "3. Timeline")
        rows = [ln for ln in s.splitlines() if ln.startswith("| 20")]
        assert len(rows) == len(rec.rows) - 3
        resets = [r for r in rows if "Streak reset" in r]
        assert "boom 0" in resets[0] and "(3 more streak resets before this one)" in resets[1]
        assert "boom 4" in resets[1]
        assert rows[0].startswith("| 2026-12-03 14:05:00Z | Incident opened: Live view black for Org A")
        assert "Mitigation failed: restarted sfu" in s and "Note: Org A confirms live view back" in s

    def test_root_cause_lists_hypotheses_for_a_person_to_confirm(self) -> None:
        """Never a cause of its own: the hypotheses as recorded, each with a blank to confirm or reject."""
        s = section(pm.render(document(liveview())), "4. Root cause")
        assert "_[to write: the technical cause, citing file paths and commit SHAs]_" in s
        assert "for a person to confirm or reject (not a finding)" in s
        assert "deploy 14:02 broke the SFU keyframe path — _[to write: confirmed or rejected]_" in s

    def test_no_hypothesis_says_so(self) -> None:
        """Without a hypothesis the section says none was recorded; it invents nothing."""
        s = section(pm.render(document(Record().close(1_796_000_100.0))), "4. Root cause")
        assert "No hypothesis was recorded during the incident." in s

    def test_went_well_has_the_times_and_the_snapshot(self) -> None:
        """Times to mitigate and resolve, the snapshot's name and sha256, announcements on time."""
        s = section(pm.render(document(liveview())), "5. What went well")
        assert "Time to mitigate: 10m10s." in s
        assert "Time to resolve: 1h1m40s, proven from the logs" in s
        assert (
            f"`20261203T141500Z-P1-20261203-liveview-before-rollback.tar.gz`, 48,211 bytes, sha256 `{SHA}`"
            in s
        )
        assert "Announcements: 1 of 2 delivered within 1m." in s

    def test_went_wrong_has_failures_blind_gaps_and_late_announcements(self) -> None:
        """Failed mitigations, blind spans, gaps, delayed and dead-lettered announcements."""
        s = section(pm.render(document(liveview())), "6. What went wrong")
        day = "2026-12-03 "
        assert f"Mitigation failed: restarted sfu (made {day}14:15:10Z): not resolved within 30m" in s
        assert f"Escalated (no_hypothesis) at {day}14:25:00Z: no_hypothesis (the runbook's rule)." in s
        assert f"Blind (sources not seen) from {day}14:16:40Z to {day}14:17:40Z (1m)." in s
        assert f"Gap (logs never read) from {day}14:18:00Z to {day}14:18:20Z." in s
        late = "delivered 3m late, after 4 attempt(s)."
        assert f"Announcement `mitigated` to incident queued {day}14:15:10Z: {late}" in s
        dead = "dead-lettered after 1 attempt(s): 404 Not Found."
        assert f"Announcement `heartbeat` to oncall queued {day}14:20:00Z: {dead}" in s

    def test_action_items_table_and_due_date(self) -> None:
        """An empty table with owner and date columns; due 5 business days after the resolution."""
        text = pm.render(document(liveview()))
        s = section(text, "7. Action items")
        assert "| action | owner | date | issue |" in s
        assert "Postmortem due 2026-12-10." in s
        assert "| Due | 2026-12-10 (5 business days after the resolution) |" in text

    def test_blameless_unless_asked(self) -> None:
        """No person's name without --by; with it, who did each entry."""
        doc = document(liveview())
        for name in ("alice@bastion", "bob@bastion", "carol@bastion"):
            assert name not in pm.render(doc)
        with_by = pm.render(doc, by=True)
        assert "| time (UTC) | event | by |" in with_by and "alice@bastion" in with_by
        assert check_markdown(with_by) == ["Postmortem: Live view black for Org A", *HEADINGS]

    @pytest.mark.parametrize(
        ("start", "due"),
        [
            (date(2026, 12, 3), date(2026, 12, 10)),  # Thursday
            (date(2026, 12, 4), date(2026, 12, 11)),  # Friday
            (date(2026, 12, 5), date(2026, 12, 11)),  # Saturday
            (date(2026, 12, 7), date(2026, 12, 14)),  # Monday
        ],
    )
    def test_business_days(self, start: date, due: date) -> None:
        """Five weekdays later, weekends skipped."""
        assert pm.add_business_days(start, 5) == due
