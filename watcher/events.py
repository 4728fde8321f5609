"""The values that flow between sources, rules, the engine and the store.

Times are float seconds since the Unix epoch, UTC, in event time (the log's own
timestamp) unless a name says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class LogLine:
    """One physical line as a source read it, before grouping and rules.

    `at` is the line's own timestamp, or None when it has none (a traceback
    frame): the grouper then treats it as a continuation of the record before.
    `fields` carries structured fields a source already has (journald's
    PRIORITY, SYSLOG_IDENTIFIER, ...); JSON and logfmt fields are parsed from
    `text` by the rules. `cursor` is the source's opaque resume point after this
    line (journald __CURSOR, docker nanosecond timestamp, file offset).
    """

    source: str
    text: str
    at: float | None
    cursor: str | None = None
    fields: Mapping[str, str] | None = None
    stream: str = ""


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
class Note:
    """Something for the timeline of every open incident covering `source` (a recreated container)."""

    source: str
    at: float
    kind: str
    text: str
    detail: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ContainerStopped:
    """Docker reported `kill`, `stop` or `die` for a watched container: snapshot it before removal."""

    source: str
    container: str
    action: str
    at: float


SourceEvent = LogLine | Chunk | Watermark | Gap | SourceDown | Note | ContainerStopped


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
    """What a transition announces; the timeline and the outbox use these names."""

    OPENED = "opened"
    MITIGATED = "mitigated"
    STREAK_RESET = "streak_reset"
    GAP = "gap"
    BLIND = "blind"
    RECOVERED = "recovered"
    RESOLVED = "resolved"
    REGRESSED = "regressed"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Transition:
    """Something that happened to an incident, at event time `at`."""

    incident: str
    kind: Kind
    at: float
    state: State
    detail: Mapping[str, object] = field(default_factory=dict)
