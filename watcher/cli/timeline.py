"""`watcher timeline ID --format markdown`: the incident's record as a table for the postmortem."""

from __future__ import annotations

from watcher import details
from watcher.details import (
    BreakDetail,
    CannotResolveDetail,
    ClockSkewDetail,
    ClosedDetail,
    Detail,
    GapDetail,
    MitigatedDetail,
    NotRunningDetail,
    OpenedDetail,
    ResolvedDetail,
    SnapshotDetail,
    SourcesDetail,
)
from watcher.events import Kind
from watcher.schema import EventDoc, TimelineDoc
from watcher.times import format_duration, format_time


def describe(kind: Kind, d: Detail) -> str:
    """One timeline entry as a sentence."""
    if isinstance(d, OpenedDetail):
        return f"Incident opened: {d.title} (scope {', '.join(d.scope)})"
    if isinstance(d, MitigatedDetail):
        return f"Mitigation: {d.action}"
    if isinstance(d, BreakDetail):
        label = "Streak reset" if kind is Kind.STREAK_RESET else "REGRESSION"
        msg = d.message.replace("`", "'")[:300]
        stamped = "" if d.stamped is None else f" (stamped {format_time(d.stamped)}: counted at its arrival)"
        return f"{label} by {d.source} [{d.rule}]: `{msg}`{stamped}"
    if isinstance(d, GapDetail):
        return f"Gap in {d.source}: {d.reason}"
    if isinstance(d, SourcesDetail):
        names = ", ".join(d.sources)
        return f"Blind: cannot see {names}" if kind is Kind.BLIND else f"Sources back: {names}"
    if isinstance(d, ResolvedDetail):
        evidence = "".join(f"; {e}" for e in d.evidence)
        return f"RESOLVED: no errors for {format_duration(d.window)} in {', '.join(d.sources)}{evidence}"
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
    if isinstance(d, SnapshotDetail):
        partial = "" if d.complete else " PARTIAL"
        return f"Evidence snapshot{partial} ({d.trigger}): {d.file} sha256:{d.sha256}, {d.reason}"
    return str(kind)


def _row(e: EventDoc) -> str:
    kind = Kind(e["kind"])
    text = describe(kind, details.from_json(kind, e["detail"])).replace("|", "\\|").replace("\n", " ")
    return f"| {e['at']} | {text} |"


def timeline_markdown(doc: TimelineDoc) -> str:
    head = [f"## Timeline: {doc['id']} — {doc['title']}", "", "| time (UTC) | event |", "| --- | --- |"]
    return "\n".join(head + [_row(e) for e in doc["events"]])
