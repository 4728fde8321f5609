"""The daemon's state as the API's documents (watcher.schema)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from watcher import details
from watcher.classify.grouping import ClassifyStats
from watcher.engine import IncidentStatus
from watcher.engine.evidence import Down, SourceEvidence
from watcher.engine.impact import ImpactSummary, OrgStatus
from watcher.facts import Facts, Span, facts, in_event_order, who
from watcher.schema import (
    ChannelDoc,
    DeliveryDoc,
    EvidenceDoc,
    HandlingDoc,
    ImpactDoc,
    IncidentDoc,
    IncidentRowDoc,
    OrgDoc,
    OutboxDoc,
    SourceDoc,
    SpanDoc,
    SummaryDoc,
    TimelineDoc,
    error_doc,
)
from watcher.store.outbox import Backlog, Delivery
from watcher.store.rows import IncidentRow, TimelineRow
from watcher.times import format_time


def incident_doc(s: IncidentStatus) -> IncidentDoc:
    return {
        "id": s.id,
        "title": s.title,
        "state": str(s.state),
        "scope": list(s.scope),
        "window": s.window,
        "opened_at": format_time(s.opened_at),
        "mitigated_at": format_time(s.mitigated_at),
        "streak_start": format_time(s.streak_start),
        "verified_to": format_time(s.verified_to),
        "clean_streak": round(s.clean_streak, 3),
        "progress": round(min(1.0, s.clean_streak / s.window), 4) if s.window else 0.0,
        "resolved_at": format_time(s.resolved_at),
        "errors": s.errors,
        "gaps": s.gaps,
        "lines": s.lines,
        "last_error": None if s.last_error is None else error_doc(s.last_error),
        "blind_sources": list(s.blind_sources),
        "sources": list(s.sources),
        "cannot_resolve": [b.text() for b in s.blockers],
        "evidence": [evidence_doc(e) for e in s.evidence],
        "orgs": [n.org for n in s.impact.named],
        "impact": impact_doc(s.impact),
    }


def impact_doc(i: ImpactSummary) -> ImpactDoc:
    return {
        "records": i.records,
        "first": format_time(i.first),
        "last": format_time(i.last),
        "orgs": i.orgs,
        "affected": i.affected,
        "untracked": i.untracked,
        "cap": i.cap,
        "confirmed_at": format_time(i.confirmed_at),
        "named": [org_doc(n) for n in i.named],
        "lines": list(i.lines()),
    }


def org_doc(o: OrgStatus) -> OrgDoc:
    return {
        "org": o.org,
        "first": format_time(o.first),
        "last": format_time(o.last),
        "records": o.records,
        "affected": o.affected,
    }


def incident_row_doc(row: IncidentRow, state: str) -> IncidentRowDoc:
    return {
        "id": row.id,
        "title": row.title,
        "state": state,
        "scope": list(row.scope),
        "window": row.window,
        "orgs": list(row.orgs),
        "opened_at": format_time(row.opened_at),
        "opened_by": row.opened_by,
        "mitigations": len(row.mitigations),
        "closed_at": format_time(row.closed_at),
    }


def delivery_doc(d: Delivery) -> DeliveryDoc:
    return {
        "channel": d.channel,
        "kind": d.kind,
        "queued_at": format_time(d.created_at),
        "status": d.status,
        "done_at": format_time(d.done_at),
        "delay": None if d.done_at is None or d.status != "sent" else round(d.done_at - d.created_at, 3),
        "attempts": d.attempts,
        "last_error": d.last_error,
    }


def evidence_doc(e: SourceEvidence) -> EvidenceDoc:
    return {
        "source": e.source,
        "lines": e.lines,
        "running": e.running,
        "proven_from": format_time(e.proven_from),
        "proven_to": format_time(e.proven_to),
        "last_record": format_time(e.last_record),
        "text": e.text(),
    }


def source_doc(
    name: str,
    up: bool,
    reason: str | None,
    watermark: float | None,
    now: float,
    stats: ClassifyStats,
    *,
    liveness: tuple[bool, Down | None] = (False, None),
    skew: float | None = None,
) -> SourceDoc:
    """`liveness`: whether the source reports it, and why it does not run (None: it runs)."""
    reports, down = liveness
    not_running = None
    if down is not None:
        since = format_time(down.since) if down.since > float("-inf") else None
        not_running = down.reason + (f" since {since}" if since else "")
    return {
        "name": name,
        "up": up,
        "reason": reason,
        "watermark": format_time(watermark),
        "lag": None if watermark is None else round(max(0.0, now - watermark), 3),
        "lines": stats.lines,
        "errors": stats.errors,
        "running": (down is None) if reports else None,
        "not_running": not_running,
        "clock_skew": None if skew is None else round(skew, 3),
    }


def outbox_doc(backlog: Mapping[str, Backlog]) -> OutboxDoc:
    """Totals, and per channel what is stuck and why."""
    channels: dict[str, ChannelDoc] = {
        name: {
            "pending": b.pending,
            "dead": b.dead,
            "oldest_pending": format_time(b.oldest_pending),
            "last_error": b.last_error,
        }
        for name, b in sorted(backlog.items())
    }
    return {
        "pending": sum(b.pending for b in backlog.values()),
        "dead": sum(b.dead for b in backlog.values()),
        "channels": channels,
    }


def timeline_doc(incident: IncidentRow, rows: Sequence[TimelineRow], now: float) -> TimelineDoc:
    ordered = in_event_order(rows)
    f = facts(incident, rows)
    return {
        "id": incident.id,
        "title": incident.title,
        "scope": list(incident.scope),
        "window": incident.window,
        "opened_at": format_time(incident.opened_at),
        "closed_at": format_time(incident.closed_at),
        "mitigations": [
            {"at": format_time(m.at), "action": m.action, "by": m.by} for m in incident.mitigations
        ],
        "events": [
            {
                "at": format_time(r.at),
                "kind": str(r.kind),
                "state": r.state,
                "detail": details.to_json(r.detail),
                "recorded_at": format_time(r.recorded_at),
                "by": who(incident, r),
            }
            for r in ordered
        ],
        "summary": summary_doc(f, ordered, now),
        "handling": handling_doc(f),
        "orgs": list(incident.orgs),
    }


def handling_doc(f: Facts) -> HandlingDoc:
    return {
        "reopened_at": format_time(f.reopened_at),
        "hypotheses": [{"at": format_time(e.at), "text": e.text, "by": e.by} for e in f.hypotheses],
        "notes": [{"at": format_time(e.at), "text": e.text, "by": e.by} for e in f.notes],
        "failures": [
            {
                "at": format_time(x.at),
                "mitigated_at": format_time(x.mitigated_at),
                "action": x.action,
                "reason": x.reason,
            }
            for x in f.failures
        ],
        "escalations": [
            {"at": format_time(e.at), "cause": e.cause, "reason": e.reason} for e in f.escalations
        ],
        "impact_confirmed_at": format_time(f.impact_confirmed_at),
        "snapshots": [
            {
                "at": format_time(x.at),
                "file": x.detail.file,
                "bytes": x.detail.bytes,
                "sha256": x.detail.sha256,
                "complete": x.detail.complete,
                "trigger": x.detail.trigger,
            }
            for x in f.snapshots
        ],
    }


def summary_doc(f: Facts, ordered: Sequence[TimelineRow], now: float) -> SummaryDoc:
    def spans(found: Sequence[Span]) -> list[SpanDoc]:
        return [
            {"start": format_time(s.start), "end": format_time(s.end), "seconds": round(s.length(now), 3)}
            for s in found
        ]

    states = [r.state for r in ordered if r.state is not None]
    return {
        "state": states[-1] if states else None,
        "opened_at": format_time(f.opened_at),
        "opened_by": f.opened_by,
        "first_mitigated_at": format_time(f.first_mitigated_at),
        "mitigations": f.mitigations,
        "time_to_mitigate": f.time_to_mitigate,
        "resolved_at": format_time(f.resolved_at),
        "time_to_resolve": f.time_to_resolve,
        "regressions": f.regressions,
        "blind": spans(f.blind),
        "blind_seconds": round(sum(s.length(now) for s in f.blind), 3),
        "gaps": spans(f.gaps),
        "closed_at": format_time(f.closed_at),
        "closed_by": f.closed_by,
        "close_reason": f.close_reason,
    }
