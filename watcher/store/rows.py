"""What the store hands back: one frozen row type per table. Times are float epoch seconds, UTC."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from watcher.details import Detail
from watcher.events import Kind


@dataclass(frozen=True, slots=True)
class MitigationRow:
    at: float
    action: str
    by: str


@dataclass(frozen=True, slots=True)
class IncidentRow:
    """`mitigations` oldest first: the engine's `M` is the last one's `at`."""

    id: str
    title: str
    scope: tuple[str, ...]
    window: float
    opened_at: float
    closed_at: float | None
    close_reason: str | None
    mitigations: tuple[MitigationRow, ...]
    opened_by: str = ""
    closed_by: str | None = None
    orgs: tuple[str, ...] = ()
    """The orgs named on it (`--org`)."""


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """`state` is None for notes (kinds that are not transitions).

    `recorded_at` is the wall-clock time of writing: later than `at` for backfilled events.
    """

    incident: str
    at: float
    kind: Kind
    state: str | None
    detail: Detail
    recorded_at: float
    seq: int


@dataclass(frozen=True, slots=True)
class ResumePoint:
    source: str
    cursor: str | None
    watermark: float | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    channel: str
    kind: str
    payload: Mapping[str, object]
    created_at: float
    attempts: int
    next_attempt_at: float
    last_error: str | None


@dataclass(frozen=True, slots=True)
class HeldRow:
    """An announcement held back by a rate limit (a streak reset summary): due at `due_at`."""

    channel: str
    incident: str
    kind: str
    payload: Mapping[str, object]
    due_at: float
