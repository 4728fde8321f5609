"""The JSON documents the API serves and the CLI reads, typed once for both.

`/api/v1/status` is a `StatusDoc`, `/api/v1/incidents/{id}/timeline` a `TimelineDoc`;
an incident command answers with an `IncidentDoc`. Times are RFC 3339 UTC strings
(None when unknown); durations are seconds. The daemon builds them
(watcher.daemon.status), the client returns them, the CLI's views render them, and
`--json` prints them as served. A timeline event's `detail` is the JSON of its
watcher.details dataclass: read it with `details.from_json(kind, detail)`.

No `from __future__ import annotations` here: TypedDict must see `NotRequired` itself to
know which keys are optional (the CLI checks answers against `__required_keys__`).
"""

# typing's TypedDict: nothing validates these with pydantic (which on Python < 3.12 would need
# typing_extensions'), and the CLI should not pay for importing typing_extensions.
from typing import TYPE_CHECKING, NotRequired, TypedDict

from watcher.times import format_time

if TYPE_CHECKING:
    from watcher.events import ErrorEvent


class ErrorDoc(TypedDict):
    time: str | None
    source: str
    rule: str
    message: str
    stream: NotRequired[str]
    """Only for a further byte stream (a container's stderr)."""


class EvidenceDoc(TypedDict):
    """One source's part of an incident's verdict (DESIGN §2.1)."""

    source: str
    lines: int
    """Lines read from it since the mitigation."""
    running: bool | None
    """Whether what it reads runs (a container, a unit); null when it does not report that."""
    proven_from: str | None
    proven_to: str | None
    last_record: str | None
    text: str


class OrgDoc(TypedDict):
    """One org an incident's errors hit (or one named on it)."""

    org: str
    first: str | None
    last: str | None
    """None: no error seen for it."""
    records: int
    affected: bool


class ImpactDoc(TypedDict):
    """Whom an incident's errors hit (watcher.engine.impact): counts, times, the named orgs."""

    records: int
    """Error records in scope."""
    first: str | None
    last: str | None
    orgs: int
    affected: int
    untracked: int
    """Error records of orgs beyond `cap`: counted, not named."""
    cap: int
    confirmed_at: str | None
    """When impact was confirmed (enough records over long enough for a customer-facing status)."""
    named: list[OrgDoc]
    lines: list[str]


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
    cannot_resolve: NotRequired[list[str]]
    """Why it cannot resolve now, one line per reason (`cloud/api: no running container since ...`).
    (NotRequired here and below: a daemon from before evidence does not send them.)"""
    evidence: NotRequired[list[EvidenceDoc]]
    orgs: NotRequired[list[str]]
    """The orgs named on it (`--org`)."""
    impact: NotRequired[ImpactDoc]


class IncidentRowDoc(TypedDict):
    """One incident in `watcher incident list`: open ones with their state, closed ones as closed."""

    id: str
    title: str
    state: str
    scope: list[str]
    window: float
    orgs: list[str]
    opened_at: str | None
    opened_by: str
    mitigations: int
    closed_at: str | None


class IncidentListDoc(TypedDict):
    incidents: list[IncidentRowDoc]
    """Oldest first."""


class StatuspageDoc(TypedDict):
    """A customer-facing status draft (watcher.runbook.statuspage): counts and times, never log
    text, host names, hypotheses or causes. Publishing it stays a person's decision."""

    incident: str
    publishable: bool
    withheld: str | None
    """Why there is nothing to publish yet (impact not confirmed), when not publishable."""
    phase: str | None
    """investigating, identified, monitoring or resolved."""
    started_at: str | None
    ended_at: str | None
    affected_orgs: int | None
    """None when no source names orgs (impact_field)."""
    more_orgs: bool
    """More orgs than counted were affected (beyond runbook.max_orgs)."""
    updated_at: str | None
    text: str | None


class SourceDoc(TypedDict):
    name: str
    up: bool
    reason: str | None
    watermark: str | None
    lag: float | None
    lines: int
    errors: int
    running: NotRequired[bool | None]
    """Whether what it reads runs; null when it does not report that."""
    not_running: NotRequired[str | None]
    """Why it does not, and since when."""
    clock_skew: NotRequired[float | None]
    """The newest live line's own stamp minus its arrival, in seconds."""


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


class RecordedDoc(TypedDict):
    """The answer to a snapshot the CLI took itself (`POST /api/v1/snapshots/recorded`)."""

    incident: str | None
    trigger: str


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
    by: NotRequired[str | None]
    """Who did it, where a person did: opened, mitigated, closed, a snapshot taken."""


class SpanDoc(TypedDict):
    start: str | None
    end: str | None
    """None while it lasts."""
    seconds: float


class SummaryDoc(TypedDict):
    """What the record proves (watcher.facts): the head of the postmortem's timeline."""

    state: str | None
    opened_at: str | None
    opened_by: str
    first_mitigated_at: str | None
    mitigations: int
    time_to_mitigate: float | None
    resolved_at: str | None
    """The resolution that stands; None while unresolved or after a regression."""
    time_to_resolve: float | None
    regressions: int
    blind: list[SpanDoc]
    blind_seconds: float
    gaps: list[SpanDoc]
    closed_at: str | None
    closed_by: str | None
    close_reason: str | None


class EntryDoc(TypedDict):
    """What a person wrote (a note, a hypothesis)."""

    at: str | None
    text: str
    by: str


class FailureDoc(TypedDict):
    at: str | None
    mitigated_at: str | None
    action: str
    reason: str


class EscalationDoc(TypedDict):
    at: str | None
    cause: str
    reason: str


class SnapshotFactDoc(TypedDict):
    at: str | None
    file: str
    bytes: int
    sha256: str
    complete: bool
    trigger: str


class HandlingDoc(TypedDict):
    """What people wrote and what the runbook's clock decided (watcher.facts), for the postmortem."""

    reopened_at: str | None
    hypotheses: list[EntryDoc]
    notes: list[EntryDoc]
    failures: list[FailureDoc]
    escalations: list[EscalationDoc]
    impact_confirmed_at: str | None
    snapshots: list[SnapshotFactDoc]


class TimelineDoc(TypedDict):
    id: str
    title: str
    scope: list[str]
    window: float
    opened_at: str | None
    closed_at: str | None
    mitigations: list[MitigationDoc]
    events: list[EventDoc]
    """In event-time order."""
    summary: NotRequired[SummaryDoc]
    handling: NotRequired[HandlingDoc]
    orgs: NotRequired[list[str]]


class DeliveryDoc(TypedDict):
    """An announcement about the incident and what became of it."""

    channel: str
    kind: str
    queued_at: str | None
    status: str
    """pending, sent or dead."""
    done_at: str | None
    delay: float | None
    """Seconds from queued to sent; None while not sent."""
    attempts: int
    """Failed attempts before the last one (a message sent at once has 0)."""
    last_error: str | None


class PostmortemDoc(TypedDict):
    """Everything `watcher postmortem` writes from: the timeline (with what the record proves),
    whom the errors hit, and what became of the announcements."""

    timeline: TimelineDoc
    impact: ImpactDoc
    orgs: list[OrgDoc]
    """Every org tracked, by its first error."""
    announcements: list[DeliveryDoc]
    generated_at: str | None


def error_doc(event: "ErrorEvent") -> ErrorDoc:
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
