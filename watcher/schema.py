"""The JSON documents the API serves and the CLI reads, typed once for both.

`/api/v1/status` is a `StatusDoc`, `/api/v1/incidents/{id}/timeline` a `TimelineDoc`;
an incident command answers with an `IncidentDoc`. Times are RFC 3339 UTC strings
(None when unknown); durations are seconds. The daemon builds them
(watcher.daemon.status), the client returns them, the CLI's views render them, and
`--json` prints them as served. A timeline event's `detail` is the JSON of its
watcher.details dataclass: read it with `details.from_json(kind, detail)`.
"""

from __future__ import annotations

from typing import NotRequired

# typing_extensions, not typing: pydantic validates TypedDicts only from it on Python < 3.12.
from typing_extensions import TypedDict

from watcher.events import ErrorEvent
from watcher.times import format_time


class ErrorDoc(TypedDict):
    time: str | None
    source: str
    rule: str
    message: str
    stream: NotRequired[str]
    """Only for a further byte stream (a container's stderr)."""


class IncidentDoc(TypedDict):
    id: str
    title: str
    state: str
    scope: list[str]
    window: float
    opened_at: str | None
    mitigated_at: str | None
    streak_start: str | None
    verified_to: str | None
    clean_streak: float
    progress: float
    resolved_at: str | None
    errors: int
    gaps: int
    lines: int
    last_error: ErrorDoc | None
    blind_sources: list[str]
    sources: list[str]


class SourceDoc(TypedDict):
    name: str
    up: bool
    reason: str | None
    watermark: str | None
    lag: float | None
    lines: int
    errors: int


class ChannelDoc(TypedDict):
    pending: int
    dead: int
    oldest_pending: str | None
    last_error: str | None


class OutboxDoc(TypedDict):
    pending: int
    dead: int
    channels: dict[str, ChannelDoc]


class StatusDoc(TypedDict):
    now: float
    incidents: list[IncidentDoc]
    sources: list[SourceDoc]
    outbox: OutboxDoc


class SnapshotDoc(TypedDict):
    """A snapshot written (`watcher snapshot --json`, and `POST /api/v1/snapshots`)."""

    path: str
    size: int
    sha256: str
    complete: bool
    missing: list[str]
    verified: NotRequired[bool]
    """Only from the daemon, which verified what it wrote (the file may not be readable here)."""
    problems: NotRequired[list[str]]


class MitigationDoc(TypedDict):
    at: str | None
    action: str
    by: str


class EventDoc(TypedDict):
    at: str | None
    kind: str
    state: str | None
    detail: dict[str, object]
    recorded_at: str | None


class TimelineDoc(TypedDict):
    id: str
    title: str
    scope: list[str]
    window: float
    opened_at: str | None
    closed_at: str | None
    mitigations: list[MitigationDoc]
    events: list[EventDoc]


def error_doc(event: ErrorEvent) -> ErrorDoc:
    doc: ErrorDoc = {
        "time": format_time(event.at),
        "source": event.source,
        "rule": event.rule,
        "message": event.message,
    }
    if event.stream:
        doc["stream"] = event.stream
    return doc


class AlertDoc(TypedDict):
    """What `POST /api/v1/alerts/alertmanager` answers: the group's incident (None when the
    notification concerned none), whether it was opened now, how many alert states were new
    (the rest had been seen: a retry or a reminder), and how many alerts no matcher took."""

    incident: str | None
    opened: bool
    new: int
    ignored: int
