"""What goes on an incident's timeline: transitions, notes, and what each kind of entry says.

One frozen dataclass per kind of entry says what it is about. The engine's
transitions and the sources' notes carry one of these; the store keeps
it as JSON (`to_json`), and whoever reads a timeline row or an outbox payload back
gets the dataclass again (`from_json`), so no module reads a detail by string key.
`from_json` takes what it knows and fills the rest with defaults: rows written by
an older watcher still read.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping
from dataclasses import dataclass

from watcher.events import Kind, State
from watcher.times import format_duration


@dataclass(frozen=True, slots=True)
class OpenedDetail:
    title: str = ""
    scope: tuple[str, ...] = ()
    window: float = 0.0
    sources: tuple[str, ...] = ()
    """The sources the scope matched when the incident opened (or reopened)."""
    orgs: tuple[str, ...] = ()
    """The orgs named on it (`--org`): status says whether each is still affected."""
    by: str = ""
    """Who reopened it (an opening's is the incident's `opened_by`)."""


@dataclass(frozen=True, slots=True)
class MitigatedDetail:
    action: str = ""
    streak_start: float | None = None


@dataclass(frozen=True, slots=True)
class BreakDetail:
    """An error or a gap that broke the streak (`streak_reset`) or a resolution (`regressed`)."""

    source: str = ""
    rule: str | None = None
    """The error rule; None for a gap."""
    message: str = ""
    streak_start: float | None = None
    """Where the streak starts again: the end of the break."""
    stamped: float | None = None
    """An error's own stamp when it was not trusted (counted at its arrival instead)."""


@dataclass(frozen=True, slots=True)
class GapDetail:
    source: str = ""
    start: float | None = None
    end: float | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SourcesDetail:
    """The sources an incident cannot see (`blind`) or sees again (`recovered`)."""

    sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ResolvedDetail:
    streak_start: float | None = None
    window: float = 0.0
    sources: tuple[str, ...] = ()
    lines: int = 0
    """Lines read in scope since the mitigation: the evidence."""
    evidence: tuple[str, ...] = ()
    """Per source in scope: lines checked, running or not, the span proven."""
    impact: tuple[str, ...] = ()
    """Whom the errors hit (the orgs, when each was last seen), one sentence each."""


@dataclass(frozen=True, slots=True)
class ChangedDetail:
    """An open incident's scope, window or named orgs changed (the old values beside the new)."""

    scope: tuple[str, ...] = ()
    window: float = 0.0
    orgs: tuple[str, ...] = ()
    old_scope: tuple[str, ...] = ()
    old_window: float = 0.0
    old_orgs: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    """The sources the scope matches now."""
    streak_start: float | None = None
    """Where the streak stands after the change (a wider scope restarts it: its new sources'
    errors before the change were not watched for this incident)."""
    by: str = ""

    def changes(self) -> list[str]:
        """`scope a → a, b`, `window 15m → 20m`, `orgs none → org-a`: what differs."""
        pairs = (
            ("scope", ", ".join(self.old_scope), ", ".join(self.scope)),
            ("window", format_duration(round(self.old_window, 3)), format_duration(round(self.window, 3))),
            ("orgs", ", ".join(self.old_orgs) or "none", ", ".join(self.orgs) or "none"),
        )
        return [f"{what} {before} → {after}" for what, before, after in pairs if before != after]


@dataclass(frozen=True, slots=True)
class ImpactDetail:
    """Impact confirmed: error records over a span long enough for a customer-facing status."""

    records: int = 0
    orgs: int = 0
    first: float | None = None
    """The first error record's time: when the impact started."""


@dataclass(frozen=True, slots=True)
class TextDetail:
    """What a person wrote on the timeline: a note, or a hypothesis of the cause."""

    text: str = ""
    by: str = ""


@dataclass(frozen=True, slots=True)
class MitigationFailedDetail:
    """A mitigation failed: the incident regressed after it, or was not resolved within twice its window."""

    action: str = ""
    mitigated_at: float | None = None
    reason: str = ""
    failures: int = 0
    """Failed mitigations of the incident so far, this one included."""


@dataclass(frozen=True, slots=True)
class EscalatedDetail:
    """The runbook escalates to the engineering lead, for `cause` (once per cause)."""

    cause: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ClosedDetail:
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SourceDownDetail:
    source: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class NotRunningDetail:
    """What a source reads stopped running (a container, a unit): a gap from `since` once it runs again."""

    source: str = ""
    reason: str = ""
    since: float | None = None


@dataclass(frozen=True, slots=True)
class CannotResolveDetail:
    """Why an incident cannot resolve (empty: nothing stands in its way any more)."""

    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ClockSkewDetail:
    """A source's live records are stamped this far from their arrival (positive: ahead)."""

    source: str = ""
    skew: float = 0.0
    tolerance: float = 0.0


@dataclass(frozen=True, slots=True)
class RecreatedDetail:
    source: str = ""
    text: str = ""
    old_image: str = ""
    new_image: str = ""


@dataclass(frozen=True, slots=True)
class SnapshotDetail:
    file: str = ""
    path: str = ""
    bytes: int = 0
    sha256: str = ""
    complete: bool = True
    missing: tuple[str, ...] = ()
    reason: str = ""
    trigger: str = ""
    source: str | None = None
    """The source whose event triggered it (a stopped container); None for a requested one."""
    by: str = ""
    """Who took it (`user@host`); the daemon itself for a stopped container."""


@dataclass(frozen=True, slots=True)
class AlertDetail:
    """An alert of an Alertmanager (or Grafana) notification: firing, or cleared.

    A cleared alert is news, never evidence: only the logs resolve an incident."""

    alertname: str = ""
    summary: str = ""
    fingerprint: str = ""
    starts_at: float | None = None
    ends_at: float | None = None
    """When it cleared; None while it fires."""
    labels: tuple[str, ...] = ()
    """`name=value`, sorted."""
    generator_url: str = ""


Detail = (
    OpenedDetail
    | MitigatedDetail
    | BreakDetail
    | GapDetail
    | SourcesDetail
    | ResolvedDetail
    | ClosedDetail
    | SourceDownDetail
    | RecreatedDetail
    | SnapshotDetail
    | AlertDetail
    | NotRunningDetail
    | CannotResolveDetail
    | ClockSkewDetail
    | ChangedDetail
    | ImpactDetail
    | TextDetail
    | MitigationFailedDetail
    | EscalatedDetail
)

DETAILS: Mapping[Kind, type[Detail]] = {
    Kind.OPENED: OpenedDetail,
    Kind.MITIGATED: MitigatedDetail,
    Kind.STREAK_RESET: BreakDetail,
    Kind.REGRESSED: BreakDetail,
    Kind.GAP: GapDetail,
    Kind.BLIND: SourcesDetail,
    Kind.RECOVERED: SourcesDetail,
    Kind.RESOLVED: ResolvedDetail,
    Kind.CLOSED: ClosedDetail,
    Kind.SOURCE_DOWN: SourceDownDetail,
    Kind.RECREATED: RecreatedDetail,
    Kind.SNAPSHOT: SnapshotDetail,
    Kind.ALERT_FIRING: AlertDetail,
    Kind.ALERT_CLEARED: AlertDetail,
    Kind.NOT_RUNNING: NotRunningDetail,
    Kind.CANNOT_RESOLVE: CannotResolveDetail,
    Kind.CLOCK_SKEW: ClockSkewDetail,
    Kind.REOPENED: OpenedDetail,
    Kind.CHANGED: ChangedDetail,
    Kind.IMPACT_CONFIRMED: ImpactDetail,
    Kind.NOTE: TextDetail,
    Kind.HYPOTHESIS: TextDetail,
    Kind.MITIGATION_FAILED: MitigationFailedDetail,
    Kind.ESCALATED: EscalatedDetail,
}
"""The detail class of every kind of timeline entry."""


def to_json(detail: Detail) -> dict[str, object]:
    """The detail as JSON-ready values (tuples become lists)."""
    return {
        f.name: list(v) if isinstance(v := getattr(detail, f.name), tuple) else v
        for f in dataclasses.fields(detail)
    }


def from_json(kind: Kind, value: Mapping[str, object]) -> Detail:
    """The detail of a `kind` entry from its JSON; unknown keys are ignored, missing ones defaulted."""
    cls = DETAILS[kind]
    kwargs: dict[str, typing.Any] = {}  # each value checked against its field's type
    for name, convert in _converters(kind).items():
        if name in value:
            converted = convert(value[name])
            if converted is not _SKIP:
                kwargs[name] = converted
    return cls(**kwargs)


_SKIP = object()


def _converter(hint: object) -> typing.Callable[[object], object]:
    """A JSON value of the hinted type, or _SKIP (the field keeps its default) when it is not one."""
    if typing.get_origin(hint) is tuple:
        return lambda v: tuple(str(x) for x in v) if isinstance(v, list) else _SKIP
    allowed = typing.get_args(hint) or (hint,)
    if float in allowed:
        return lambda v: (
            float(v)
            if isinstance(v, int | float) and not isinstance(v, bool)
            else (None if v is None and type(None) in allowed else _SKIP)
        )
    if int in allowed:
        return lambda v: v if isinstance(v, int) and not isinstance(v, bool) else _SKIP
    if bool in allowed:
        return lambda v: v if isinstance(v, bool) else _SKIP
    return lambda v: v if isinstance(v, str) or (v is None and type(None) in allowed) else _SKIP


@functools.cache
def _converters(kind: Kind) -> dict[str, typing.Callable[[object], object]]:
    """Per field of `kind`'s detail, a function that checks a JSON value against the field's type
    (built on first use: resolving the type hints of every kind would slow every CLI call down)."""
    cls = DETAILS[kind]
    hints = typing.get_type_hints(cls)
    return {f.name: _converter(hints[f.name]) for f in dataclasses.fields(cls)}


@dataclass(frozen=True, slots=True)
class Transition:
    """Something that happened to an incident, at event time `at`."""

    incident: str
    kind: Kind
    at: float
    state: State
    detail: Detail


@dataclass(frozen=True, slots=True)
class Note:
    """Something for the timeline of every open incident covering `source` (a recreated container).

    `text` is the sentence for the daemon's log; `detail` is what the timeline keeps."""

    source: str
    at: float
    kind: Kind
    text: str
    detail: Detail
