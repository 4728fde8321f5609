"""The markdown timeline: a sentence with its details for every kind, the summary, the order."""

from __future__ import annotations

import dataclasses

import pytest

from watcher import details
from watcher.cli.timeline import describe, timeline_markdown
from watcher.details import DETAILS, Detail
from watcher.events import Kind
from watcher.schema import EventDoc, SummaryDoc, TimelineDoc

AT = 1795788000.0  # 2026-11-27T14:00:00Z
SAMPLES: dict[Kind, Detail] = {
    Kind.OPENED: details.OpenedDetail("Live view black", ("edge*",), 900.0, ("edge", "edge-2")),
    Kind.MITIGATED: details.MitigatedDetail("flag live_view_v2 reverted", AT),
    Kind.STREAK_RESET: details.BreakDetail("cloud/api", "level", "2026-11-27T14:01:00Z db timeout", AT + 60),
    Kind.GAP: details.GapDetail("cloud/api", AT + 30, AT + 90, "container removed before it was read"),
    Kind.BLIND: details.SourcesDetail(("gw/gw-berlin-01",)),
    Kind.RECOVERED: details.SourcesDetail(("gw/gw-berlin-01",)),
    Kind.RESOLVED: details.ResolvedDetail(AT + 90, 900.0, ("cloud/api", "gw/gw-berlin-01"), 48211),
    Kind.REGRESSED: details.BreakDetail("gw/gw-berlin-01", "priority", "rtsp | timeout `x`", AT + 1200),
    Kind.CLOSED: details.ClosedDetail("resolved, postmortem scheduled"),
    Kind.SOURCE_DOWN: details.SourceDownDetail(
        "gw/gw-paris-07", "watcher@gw-paris-07:22: connection refused"
    ),
    Kind.RECREATED: details.RecreatedDetail(
        "cloud/api", "cloud/api recreated", "novavms/api:2026.11.27", "novavms/api:2026.11.26"
    ),
    Kind.SNAPSHOT: details.SnapshotDetail(
        "20261127T100500Z-P1-x-before-rollback.tar.gz",
        "/var/lib/novavms-watcher/snapshots/20261127T100500Z-P1-x-before-rollback.tar.gz",
        1234567,
        "ab" * 32,
        False,
        ("gw/gw-paris-07: journal: connection refused",),
        "before rollback",
        "then",
        None,
        "alice@bastion",
    ),
    Kind.NOT_RUNNING: details.NotRunningDetail("cloud/api", "no running container (exited)", AT + 120),
    Kind.CANNOT_RESOLVE: details.CannotResolveDetail(("cloud/api: no running container since 14:02:00Z",)),
    Kind.CLOCK_SKEW: details.ClockSkewDetail("edge", 3600.2, 60.0),
    Kind.REOPENED: details.OpenedDetail("Live view black", ("edge*",), 900.0, ("edge",), ("org-a",), "bob@b"),
    Kind.CHANGED: details.ChangedDetail(
        ("edge*", "gw/*"), 1200.0, ("org-a",), ("edge*",), 900.0, (), ("edge", "gw/gw-1"), AT + 300
    ),
    Kind.IMPACT_CONFIRMED: details.ImpactDetail(12, 3, AT - 120),
    Kind.NOTE: details.TextDetail("Org A confirms live view back", "carol@b"),
    Kind.HYPOTHESIS: details.TextDetail("deploy 14:02 broke the SFU keyframe path", "carol@b"),
    Kind.MITIGATION_FAILED: details.MitigationFailedDetail(
        "restarted sfu", AT + 60, "not resolved within 30m (twice its window)", 2
    ),
    Kind.ESCALATED: details.EscalatedDetail("mitigations_failed", "2 mitigations failed"),
    Kind.ALERT_FIRING: details.AlertDetail(
        "RecorderDown", "recorder gw-3 down", "fp1", AT, None, ("severity=P1",)
    ),
    Kind.ALERT_CLEARED: details.AlertDetail("RecorderDown", "", "fp1", AT, AT + 300),
}
EXPECTED = {
    Kind.OPENED: ["Live view black", "edge*", "15m", "edge, edge-2"],
    Kind.MITIGATED: ["flag live_view_v2 reverted"],
    Kind.STREAK_RESET: ["Streak reset", "cloud/api", "[level]", "`db timeout`"],
    Kind.GAP: ["Gap in cloud/api", "14:00:30Z", "14:01:30Z", "1m", "container removed before it was read"],
    Kind.BLIND: ["BLIND", "gw/gw-berlin-01"],
    Kind.RECOVERED: ["Sources back", "gw/gw-berlin-01"],
    Kind.RESOLVED: [
        "RESOLVED",
        "15m",
        "cloud/api, gw/gw-berlin-01",
        "14:01:30Z",
        "14:16:30Z",
        "48,211 lines",
    ],
    Kind.REGRESSED: ["REGRESSION", "gw/gw-berlin-01", "[priority]", "rtsp | timeout 'x'"],
    Kind.CLOSED: ["Closed: resolved, postmortem scheduled"],
    Kind.SOURCE_DOWN: ["gw/gw-paris-07 down", "watcher@gw-paris-07:22: connection refused"],
    Kind.RECREATED: ["cloud/api recreated", "image novavms/api:2026.11.27 → novavms/api:2026.11.26"],
    Kind.SNAPSHOT: [
        "before the mitigation",
        "PARTIAL",
        "gw/gw-paris-07: journal: connection refused",
        "20261127T100500Z-P1-x-before-rollback.tar.gz",
        "1,234,567 bytes",
        "sha256:" + "ab" * 32,
        "before rollback",
    ],
    Kind.NOT_RUNNING: ["cloud/api", "no running container (exited)", "since 2026-11-27T14:02:00"],
    Kind.CANNOT_RESOLVE: ["Cannot resolve", "cloud/api: no running container since 14:02:00Z"],
    Kind.CLOCK_SKEW: ["Clock skew in edge", "+3600.2s", "beyond 1m"],
    Kind.REOPENED: ["reopened", "needs a mitigation", "Live view black", "orgs named: org-a"],
    Kind.CHANGED: ["scope edge* → edge*, gw/*", "window 15m → 20m", "orgs none → org-a", "14:05:00"],
    Kind.IMPACT_CONFIRMED: ["Impact confirmed", "12 error records", "since 2026-11-27 13:58:00Z", "3 org"],
    Kind.NOTE: ["Note: Org A confirms live view back"],
    Kind.HYPOTHESIS: ["Hypothesis", "to confirm", "deploy 14:02 broke the SFU keyframe path"],
    Kind.MITIGATION_FAILED: [
        "Mitigation failed",
        "restarted sfu",
        "14:01:00",
        "not resolved within 30m",
        "2 failed",
    ],
    Kind.ESCALATED: ["ESCALATED", "engineering lead", "2 mitigations failed"],
    Kind.ALERT_FIRING: ["Alert firing", "RecorderDown (recorder gw-3 down)", "[severity=P1]"],
    Kind.ALERT_CLEARED: ["Alert cleared", "RecorderDown", "resolves only on the logs' evidence"],
}


def event(kind: Kind, at: float, recorded: float | None = None, by: str | None = None) -> EventDoc:
    from watcher.times import format_time

    return {
        "at": format_time(at),
        "kind": str(kind),
        "state": None,
        "detail": details.to_json(SAMPLES[kind]),
        "recorded_at": format_time(recorded if recorded is not None else at + 0.2),
        "by": by,
    }


def doc(events: list[EventDoc], summary: SummaryDoc | None = None) -> TimelineDoc:
    d: TimelineDoc = {
        "id": "P1-x",
        "title": "Live view black",
        "scope": ["edge*"],
        "window": 900.0,
        "opened_at": None,
        "closed_at": None,
        "mitigations": [],
        "events": events,
    }
    if summary is not None:
        d["summary"] = summary
    return d


def test_every_kind_has_a_sample() -> None:
    """A new kind of timeline entry must come with its sentence (and this test with a sample)."""
    assert set(SAMPLES) == set(Kind) == set(DETAILS)


@pytest.mark.parametrize("kind", list(Kind), ids=str)
def test_every_kind_reads_as_a_sentence_with_its_details(kind: Kind) -> None:
    """Not a bare kind name: the source, reason, image, file and hash the JSON has."""
    text = describe(kind, SAMPLES[kind])
    for part in EXPECTED[kind]:
        assert part in text, (part, text)
    row = timeline_markdown(doc([event(kind, AT)])).splitlines()[-1]
    assert row.count(" | ") == 2, f"a | in the text must not add a column: {row}"


def test_a_detail_field_changed_shows() -> None:
    """Each sample value that is text reaches the sentence (guards against a dropped field)."""
    for kind, detail in SAMPLES.items():
        text = describe(kind, detail)
        for f in dataclasses.fields(detail):
            value = getattr(detail, f.name)
            if f.name in ("reason", "action", "source", "title", "new_image", "sha256") and value:
                assert str(value).replace("`", "'") in text, (kind, f.name)


def test_recorded_time_shown_where_it_differs_and_who() -> None:
    """A late entry shows when it was recorded; a person's entry shows who."""
    md = timeline_markdown(
        doc([event(Kind.MITIGATED, AT, by="alice@bastion"), event(Kind.REGRESSED, AT + 60, recorded=AT + 95)])
    )
    rows = md.splitlines()[-2:]
    assert rows[0].startswith(
        "| 2026-11-27 14:00:00Z | Mitigation: flag live_view_v2 reverted | alice@bastion |"
    )
    assert rows[1].startswith("| 2026-11-27 14:01:00Z (recorded 14:01:35Z) | REGRESSION")


def test_summary_head() -> None:
    """Opened, mitigated, resolved with the times to mitigate and resolve, regressions, blind spans."""
    summary: SummaryDoc = {
        "state": "closed",
        "opened_at": "2026-11-27T10:00:00.000Z",
        "opened_by": "alice@bastion",
        "first_mitigated_at": "2026-11-27T10:04:12.000Z",
        "mitigations": 2,
        "time_to_mitigate": 252.0,
        "resolved_at": "2026-11-27T10:31:00.000Z",
        "time_to_resolve": 1860.0,
        "regressions": 1,
        "blind": [
            {"start": "2026-11-27T10:07:00.000Z", "end": "2026-11-27T10:08:30.000Z", "seconds": 90.0},
        ],
        "blind_seconds": 90.0,
        "gaps": [],
        "closed_at": "2026-11-27T11:00:00.000Z",
        "closed_by": "bob@laptop",
        "close_reason": "resolved",
    }
    md = timeline_markdown(doc([], summary))
    for line in (
        "| State | closed |",
        "| Opened | 2026-11-27 10:00:00Z by alice@bastion |",
        "| Mitigated | 2026-11-27 10:04:12Z (time to mitigate 4m12s); 2 mitigation(s) |",
        "| Resolved | 2026-11-27 10:31:00Z (time to resolve 31m) |",
        "| Regressions | 1 |",
        "| Blind | 1 span(s), 1m30s in total: 2026-11-27 10:07:00Z to 2026-11-27 10:08:30Z |",
        "| Gaps | none |",
        "| Closed | 2026-11-27 11:00:00Z by bob@laptop: resolved |",
    ):
        assert line in md.splitlines(), line
