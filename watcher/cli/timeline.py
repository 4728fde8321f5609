"""`watcher timeline ID --format markdown`: the postmortem's timeline, ready to paste.

A summary first (opened, mitigated, resolved, the times to mitigate and to resolve,
regressions, blind spans, gaps, closed), then every entry in event-time order with
its UTC time, who did it where a person did, and the time it was recorded where that
differs (an error read late, a snapshot queued while the daemon was down). Every kind
of entry is a sentence with its details: the source and reason of a source that went
down, `image X → Y` of a recreated container, a snapshot's file and sha256.
"""

from __future__ import annotations

from watcher import details
from watcher.details import (
    AlertDetail,
    BreakDetail,
    CannotResolveDetail,
    ChangedDetail,
    ClockSkewDetail,
    ClosedDetail,
    Detail,
    EscalatedDetail,
    GapDetail,
    ImpactDetail,
    MitigatedDetail,
    MitigationFailedDetail,
    NotRunningDetail,
    OpenedDetail,
    RecreatedDetail,
    ResolvedDetail,
    SnapshotDetail,
    SourceDownDetail,
    SourcesDetail,
    TextDetail,
)
from watcher.events import Kind
from watcher.schema import EventDoc, HandlingDoc, SummaryDoc, TimelineDoc
from watcher.times import (
    format_duration,
    format_time,
    human_time,
    parse_time,
    short_time,
    without_leading_stamp,
)

MAX_MESSAGE = 300
"""Characters of a log line quoted in the timeline; the rest is in the JSON and the snapshot."""
RECORDED_LATE = 1.0
"""Seconds between event time and recording past which the recording time is shown."""


def describe(kind: Kind, d: Detail) -> str:
    """One timeline entry as a sentence, with its details."""
    if isinstance(d, OpenedDetail):
        covered = f"; {len(d.sources)} sources then: {', '.join(d.sources)}" if d.sources else ""
        named = f"; orgs named: {', '.join(d.orgs)}" if d.orgs else ""
        verb = "reopened (needs a mitigation after this)" if kind is Kind.REOPENED else "opened"
        what = f"scope {', '.join(d.scope)}, window {_span(d.window)}{covered}{named}"
        return f"Incident {verb}: {d.title} ({what})"
    if isinstance(d, TextDetail):
        return (
            f"Hypothesis (for a person to confirm): {d.text}"
            if kind is Kind.HYPOTHESIS
            else f"Note: {d.text}"
        )
    if isinstance(d, ChangedDetail | ImpactDetail | MitigationFailedDetail | EscalatedDetail):
        return _runbook(d)
    if isinstance(d, MitigatedDetail):
        return f"Mitigation: {d.action}"
    if isinstance(d, BreakDetail):
        return _break(kind, d)
    if isinstance(d, GapDetail):
        return f"Gap in {d.source}{_between(d.start, d.end)}: {d.reason}; counts as an error"
    if isinstance(d, SourcesDetail):
        names = ", ".join(d.sources)
        if kind is Kind.BLIND:
            return f"BLIND: cannot see {names}; the streak cannot complete"
        return f"Sources back: {names}"
    if isinstance(d, ResolvedDetail):
        return (
            f"RESOLVED: no errors for {_span(d.window)} in {', '.join(d.sources)}"
            f"{_between(d.streak_start, None if d.streak_start is None else d.streak_start + d.window)}"
            f"; {d.lines:,} lines checked"
            f"{''.join(f'; {e}' for e in (*d.evidence, *d.impact))}"
        )
    if isinstance(d, NotRunningDetail):
        since = f" since {format_time(d.since)}" if d.since is not None else ""
        return f"{d.source}: {d.reason}{since} (cannot prove anything while it does not run)"
    if isinstance(d, CannotResolveDetail):
        if not d.reasons:
            return "Evidence complete again: nothing keeps it from resolving"
        return "Cannot resolve: " + "; ".join(d.reasons)
    if isinstance(d, ClockSkewDetail):
        return (
            f"Clock skew in {d.source}: live lines stamped {d.skew:+.1f}s from their arrival "
            f"(beyond {format_duration(d.tolerance)}): its errors count at their arrival"
        )
    if isinstance(d, ClosedDetail):
        return f"Closed: {d.reason or 'no reason given'}"
    if isinstance(d, SourceDownDetail):
        return f"Source {d.source} down: {d.reason}"
    if isinstance(d, RecreatedDetail):
        return f"{d.source} recreated: image {d.old_image or '?'} → {d.new_image or '?'}"
    if isinstance(d, AlertDetail):
        return _alert(d)
    return _snapshot(d)


def _runbook(d: ChangedDetail | ImpactDetail | MitigationFailedDetail | EscalatedDetail) -> str:
    """The runbook's entries: a change of scope or window, impact confirmed, a failed mitigation,
    an escalation."""
    if isinstance(d, ChangedDetail):
        changes = d.changes()
        streak = f"; streak from {_at(d.streak_start)}" if d.streak_start is not None else ""
        return f"Changed: {'; '.join(changes) or 'nothing'}{streak}"
    if isinstance(d, ImpactDetail):
        since = f" since {_at(d.first)}" if d.first is not None else ""
        return (
            f"Impact confirmed: {d.records:,} error records{since}, {d.orgs:,} org(s); "
            "a customer-facing status may go out (watcher statuspage)"
        )
    if isinstance(d, MitigationFailedDetail):
        made = f" (made {_at(d.mitigated_at)})" if d.mitigated_at is not None else ""
        return f"Mitigation failed: {d.action}{made}: {d.reason}; {d.failures} failed so far"
    return f"ESCALATED to the engineering lead: {d.reason}"


def _at(at: float | None) -> str:
    return "?" if at is None else human_time(at)


def _break(kind: Kind, d: BreakDetail) -> str:
    what = f"an error in {d.source} [{d.rule}]" if d.rule is not None else f"a gap in {d.source}"
    msg = without_leading_stamp(d.message).replace("`", "'")
    quoted = f": `{msg[:MAX_MESSAGE]}{'…' if len(msg) > MAX_MESSAGE else ''}`" if msg else ""
    if d.stamped is not None:
        quoted += f" (stamped {format_time(d.stamped)}: counted at its arrival)"
    if kind is Kind.REGRESSED:
        return f"REGRESSION after resolution, by {what}{quoted}; verification starts again"
    return f"Streak reset by {what}{quoted}"


def _alert(d: AlertDetail) -> str:
    what = d.alertname + (f" ({d.summary})" if d.summary else "")
    labels = f" [{', '.join(d.labels)}]" if d.labels else ""
    if d.ends_at is None:
        return f"Alert firing: {what}{labels}"
    # An alert's end is news, not evidence: the sentence must not read as a resolution.
    cleared = f"Alert cleared at {format_time(d.ends_at)}: {what}{labels}"
    return cleared + "; the incident resolves only on the logs' evidence"


def _snapshot(d: SnapshotDetail) -> str:
    trigger = {"manual": "taken by hand", "then": "taken before the mitigation (--then)"}.get(
        d.trigger, f"taken when {d.source or 'a container'} stopped"
    )
    partial = f" PARTIAL, missing: {'; '.join(d.missing)};" if not d.complete else ""
    return f"Evidence snapshot {trigger}:{partial} {d.file} ({d.bytes:,} bytes) sha256:{d.sha256}; {d.reason}"


def _span(seconds: float) -> str:
    return format_duration(round(seconds, 3))


def _between(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return ""
    return f" from {short_time(format_time(start))} to {short_time(format_time(end))} ({_span(end - start)})"


def when(e: EventDoc) -> str:
    at, recorded = e["at"], e["recorded_at"]
    text = short_time(at)
    if at and recorded and parse_time(recorded) - parse_time(at) > RECORDED_LATE:
        text += f" (recorded {short_time(recorded, at[:10])})"
    return text


def event_text(e: EventDoc) -> str:
    """An event of the API's timeline as its sentence."""
    kind = Kind(e["kind"])
    return describe(kind, details.from_json(kind, e["detail"]))


def _row(e: EventDoc) -> str:
    return table_row([when(e), event_text(e), e.get("by") or ""])


def table_row(cells: list[str]) -> str:
    """A markdown table row: a `|` or a line break in a cell would end the cell or the row."""
    return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def _summary(s: SummaryDoc, h: HandlingDoc | None) -> list[str]:
    def took(seconds: float | None, what: str) -> str:
        return f" ({what} {_span(seconds)})" if seconds is not None else ""

    mitigated = "not yet"
    if s["first_mitigated_at"]:
        mitigated = f"{short_time(s['first_mitigated_at'])}{took(s['time_to_mitigate'], 'time to mitigate')}"
        mitigated += f"; {s['mitigations']} mitigation(s)" if s["mitigations"] > 1 else ""
    resolved = "not yet" if not s["resolved_at"] else short_time(s["resolved_at"])
    resolved += took(s["time_to_resolve"], "time to resolve")
    blind = "none"
    if s["blind"]:
        spans = ", ".join(
            f"{short_time(b['start'])} to {short_time(b['end']) if b['end'] else 'now'}" for b in s["blind"]
        )
        blind = f"{len(s['blind'])} span(s), {_span(s['blind_seconds'])} in total: {spans}"
    closed = "no" if not s["closed_at"] else f"{short_time(s['closed_at'])} by {s['closed_by'] or '?'}"
    if s["closed_at"] and s["close_reason"]:
        closed += f": {s['close_reason']}"
    rows = [
        ("State", s["state"] or "?"),
        ("Opened", f"{short_time(s['opened_at'])} by {s['opened_by'] or '?'}"),
        ("Mitigated", mitigated),
        ("Resolved", resolved),
        ("Regressions", str(s["regressions"])),
        ("Blind", blind),
        ("Gaps", str(len(s["gaps"])) if s["gaps"] else "none"),
        *(
            ()
            if h is None
            else (
                ("Hypotheses", str(len(h["hypotheses"])) if h["hypotheses"] else "none recorded"),
                ("Failed mitigations", str(len(h["failures"])) if h["failures"] else "none"),
                ("Escalations", ", ".join(e["cause"] for e in h["escalations"]) or "none"),
            )
        ),
        ("Closed", closed),
    ]
    return ["| | |", "| --- | --- |", *(table_row([k, v]) for k, v in rows), ""]


def timeline_markdown(doc: TimelineDoc) -> str:
    head = [f"## Timeline: {doc['id']} — {doc['title']}", ""]
    if "summary" in doc:
        head += _summary(doc["summary"], doc.get("handling"))
    head += ["| time (UTC) | event | by |", "| --- | --- | --- |"]
    return "\n".join(head + [_row(e) for e in doc["events"]])
