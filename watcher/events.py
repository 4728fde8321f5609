"""The values that flow between sources, rules, the engine and the store.

Times are float seconds since the Unix epoch, UTC, in event time (the log's own
timestamp) unless a name says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Chunk:
    """Whole lines as bytes, for sources that read byte streams (files): no per-line objects.

    `data` ends with a newline; `cursor` is the resume point just after it. `stream`
    names the byte stream within the source ("stdout"/"stderr" of a container; "" for
    one stream): the daemon groups multi-line records within one stream only. A chunk
    with no data only moves the resume point.
    """

    source: str
    data: bytes
    cursor: str | None = None
    stream: str = ""


@dataclass(frozen=True, slots=True)
class Watermark:
    """The source has every record up to and including `at`."""

    source: str
    at: float


@dataclass(frozen=True, slots=True)
class Gap:
    """An interval of a source that can never be read back."""

    source: str
    start: float
    end: float
    reason: str


@dataclass(frozen=True, slots=True)
class SourceDown:
    """The source lost its connection; its watermark is frozen until it is back."""

    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """One error record: a multi-line traceback is one event carrying its first matching line."""

    source: str
    at: float | None
    """The record's own time, or the receive time; None only for an untimed file being classified."""
    rule: str
    message: str
    stream: str = ""
    """The byte stream when the source has several and it is not the first (a container's stderr)."""


class State(StrEnum):
    INVESTIGATING = "investigating"
    VERIFYING = "verifying"
    BLIND = "blind"
    RESOLVED = "resolved"
    REGRESSED = "regressed"
    CLOSED = "closed"


class Kind(StrEnum):
    """Every kind of timeline entry: the transitions of an incident, then the notes about it.

    The timeline, the outbox, the routes and the templates all use these names."""

    OPENED = "opened"
    MITIGATED = "mitigated"
    STREAK_RESET = "streak_reset"
    GAP = "gap"
    BLIND = "blind"
    RECOVERED = "recovered"
    RESOLVED = "resolved"
    REGRESSED = "regressed"
    CLOSED = "closed"
    SOURCE_DOWN = "source_down"
    RECREATED = "recreated"
    SNAPSHOT = "snapshot"
    ALERT_FIRING = "alert_firing"
    ALERT_CLEARED = "alert_cleared"


TRANSITIONS: tuple[Kind, ...] = tuple(Kind)[: list(Kind).index(Kind.CLOSED) + 1]
"""The kinds the engine decides (each with the state it left the incident in); the rest are notes."""
HEARTBEAT = "heartbeat"
"""The on-call update: announced like a transition, but about every open incident at once."""
ALERT_NOTES: tuple[Kind, ...] = (Kind.ALERT_FIRING, Kind.ALERT_CLEARED)
"""Notes an Alertmanager notification puts on an incident's timeline; announced like transitions."""
ANNOUNCED: tuple[str, ...] = (*TRANSITIONS, *ALERT_NOTES, HEARTBEAT)
"""What can be announced, routed and given a template."""


class Trigger(StrEnum):
    """What made an evidence snapshot: a person (`manual`), `--then`, or a watched container stopping."""

    MANUAL = "manual"
    CONTAINER_STOP = "container_stop"
    THEN = "then"
