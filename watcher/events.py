"""The values that flow between sources, rules, the engine and the store.

Times are float seconds since the Unix epoch, UTC, in event time (the log's own
timestamp) unless a name says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MAX_MESSAGE = 4096
"""Characters of an error's message that are kept, stored and announced; the rest is cut, marked."""


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text`, or its start and a mark saying how much was cut; at most `limit` characters either way.

    Idempotent: a clipped text is short enough to pass unchanged.
    """
    if len(text) <= limit:
        return text
    mark = f" … [cut: {len(text):,} characters in all]"
    return text[: max(0, limit - len(mark))] + mark


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
    live: bool = False
    """Read as it was written (the source was caught up): its records' own stamps are checked
    against their arrival. Backlog keeps its stamps."""


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
class Liveness:
    """Whether what a source reads runs (a container, a systemd unit), in the source's event time.

    `alive`: it runs since `at`. Not alive: it was last known running at `at` (a container's
    stop, the last check that found the unit active) and is not running now, for `reason`
    ("no running container (exited)", "unit novavms-gateway is inactive")."""

    source: str
    at: float
    alive: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a source must show to count as evidence (DESIGN §2.1), as the engine needs it.

    By default a source must show at least one record in a window for that window to
    resolve; `quiet_ok` waives that (an error-only log). `every`: at least one record
    (matching `match`, when set) that often, else a gap from the last one. `liveness`:
    the source reports `Liveness`; until its first report it is not known to run."""

    quiet_ok: bool = False
    every: float | None = None
    match: str | None = None
    """The expect_match pattern, for the reasons given when it is missed."""
    liveness: bool = False


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
    arrived: float | None = None
    """When a live record was read (the watcher's clock); None for a backlog or a recorded file,
    whose records keep their own stamps. The engine trusts `at` only when it is plausible
    against this (engine/evidence.py, `counted_at`)."""
    org: str | None = None
    """Whom it hit: the value of its source's `impact_field` (an org id), when it has one."""


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
    REOPENED = "reopened"
    CHANGED = "changed"
    IMPACT_CONFIRMED = "impact_confirmed"
    CLOSED = "closed"
    SOURCE_DOWN = "source_down"
    RECREATED = "recreated"
    SNAPSHOT = "snapshot"
    ALERT_FIRING = "alert_firing"
    ALERT_CLEARED = "alert_cleared"
    NOT_RUNNING = "not_running"
    CANNOT_RESOLVE = "cannot_resolve"
    CLOCK_SKEW = "clock_skew"
    NOTE = "note"
    HYPOTHESIS = "hypothesis"
    MITIGATION_FAILED = "mitigation_failed"
    ESCALATED = "escalated"


TRANSITIONS: tuple[Kind, ...] = tuple(Kind)[: list(Kind).index(Kind.CLOSED) + 1]
"""The kinds the engine decides (each with the state it left the incident in); the rest are notes."""
HEARTBEAT = "heartbeat"
"""The on-call update: announced like a transition, but about every open incident at once."""
ALERT_NOTES: tuple[Kind, ...] = (Kind.ALERT_FIRING, Kind.ALERT_CLEARED)
"""Notes an Alertmanager notification puts on an incident's timeline; announced like transitions."""
RUNBOOK_NOTES: tuple[Kind, ...] = (Kind.NOTE, Kind.HYPOTHESIS, Kind.MITIGATION_FAILED, Kind.ESCALATED)
"""Notes about the incident's handling (a person's note or hypothesis, the runbook's clock):
announced like transitions."""
ANNOUNCED: tuple[str, ...] = (*TRANSITIONS, *ALERT_NOTES, *RUNBOOK_NOTES, HEARTBEAT)
"""What can be announced, routed and given a template."""


class Cause(StrEnum):
    """Why the runbook escalates an incident to the engineering lead (watcher.runbook.escalation)."""

    NO_HYPOTHESIS = "no_hypothesis"
    MITIGATIONS_FAILED = "mitigations_failed"


class Trigger(StrEnum):
    """What made an evidence snapshot: a person (`manual`), `--then`, or a watched container stopping."""

    MANUAL = "manual"
    CONTAINER_STOP = "container_stop"
    THEN = "then"
