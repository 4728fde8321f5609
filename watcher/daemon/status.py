"""The JSON shapes of `/api/v1/status` and `/api/v1/incidents/{id}/timeline`.

Times are RFC 3339 UTC strings; durations are seconds. The CLI renders these
same documents, so what `--json` prints is what the API serves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from watcher import details
from watcher.classify.grouping import ClassifyStats
from watcher.engine import IncidentStatus
from watcher.events import ErrorEvent
from watcher.store import IncidentRow, TimelineRow
from watcher.times import format_time


def event_json(event: ErrorEvent) -> dict[str, object]:
    out: dict[str, object] = {
        "time": format_time(event.at),
        "source": event.source,
        "rule": event.rule,
        "message": event.message,
    }
    if event.stream:
        out["stream"] = event.stream
    return out


def incident_json(s: IncidentStatus) -> dict[str, object]:
    last = s.last_error
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
        "last_error": None if last is None else event_json(last),
        "blind_sources": list(s.blind_sources),
        "sources": list(s.sources),
    }


def source_json(
    name: str, up: bool, reason: str | None, watermark: float | None, now: float, stats: ClassifyStats
) -> dict[str, object]:
    return {
        "name": name,
        "up": up,
        "reason": reason,
        "watermark": format_time(watermark),
        "lag": None if watermark is None else round(max(0.0, now - watermark), 3),
        "lines": stats.lines,
        "errors": stats.errors,
    }


def outbox_json(channels: Mapping[str, Mapping[str, object]]) -> dict[str, object]:
    """Totals, and per channel what is stuck and why (`store.outbox_channels()`)."""
    return {
        "pending": sum(_int(c.get("pending")) for c in channels.values()),
        "dead": sum(_int(c.get("dead")) for c in channels.values()),
        "channels": {
            name: {**c, "oldest_pending": format_time(_time(c.get("oldest_pending")))}
            for name, c in sorted(channels.items())
        },
    }


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _time(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def timeline_json(incident: IncidentRow, rows: Sequence[TimelineRow]) -> dict[str, object]:
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
                "kind": r.kind,
                "state": r.state,
                "detail": details.to_json(r.detail),
                "recorded_at": format_time(r.recorded_at),
            }
            for r in rows
        ],
    }
