"""What an announcement says before it is rendered: the payload of an outbox row.

Five shapes: a transition of an incident (with its typed detail), the on-call
heartbeat, `watcher notify test`'s message, an incident's status (what a Slack app's
living message shows; a newer one supersedes an older one not yet sent), and an
escalation (the runbook's, for the paging integration). The announcer writes them to the
outbox as JSON (`to_json`); the sender reads them back (`news_from_json`) and hands
them to the renderer. JSON mode sends `to_json` itself to receivers, so its shape
is part of the contract:

  transition: {incident, title, kind, at, state, detail}; a streak reset's detail
              also says how many resets were held back before it (`also`)
  heartbeat:  {at, incidents: [{incident, title, state, changed, clean_streak, window,
               streak_start, errors, blind_sources, fingerprint, impact}]}
  test:       {at, channel, host}
  status:     {incident, title, state, at, opened_at, mitigated_at, window, clean_streak,
               streak_start, verified_to, resolved_at, errors, gaps, lines, last_error:
               {at, source, rule, message} | null, blind_sources, sources}
  escalation: {incident, title, at, cause}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from watcher import details
from watcher.details import Detail
from watcher.engine import IncidentStatus
from watcher.events import HEARTBEAT, ErrorEvent, Kind, State

TEST = "test"
STATUS = "status"
ESCALATION = "escalation"


@dataclass(frozen=True, slots=True)
class TransitionNews:
    incident: str
    title: str
    kind: Kind
    at: float
    state: State
    detail: Detail
    also: int = 0
    """Streak resets held back by the rate limit since the previous one announced."""

    def to_json(self) -> dict[str, object]:
        detail = details.to_json(self.detail)
        if self.kind is Kind.STREAK_RESET:
            detail["also"] = self.also
        return {
            "incident": self.incident,
            "title": self.title,
            "kind": str(self.kind),
            "at": self.at,
            "state": str(self.state),
            "detail": detail,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, object]) -> TransitionNews:
        kind = Kind(str(doc.get("kind")))
        detail = _map(doc.get("detail"))
        also = detail.get("also")
        return cls(
            incident=str(doc.get("incident", "")),
            title=str(doc.get("title", "")),
            kind=kind,
            at=_num(doc.get("at")),
            state=State(str(doc.get("state"))),
            detail=details.from_json(kind, detail),
            also=also if isinstance(also, int) else 0,
        )


@dataclass(frozen=True, slots=True)
class HeartbeatLine:
    """One open incident in a heartbeat; `fingerprint` is what "no change" compares."""

    incident: str
    title: str
    state: State
    changed: bool
    clean_streak: float
    window: float
    streak_start: float | None
    errors: int
    blind_sources: tuple[str, ...]
    fingerprint: tuple[object, ...]
    impact: tuple[str, ...] = ()
    """Whom its errors hit: sentences (engine/impact.py, `ImpactSummary.lines`)."""


@dataclass(frozen=True, slots=True)
class HeartbeatNews:
    at: float
    incidents: tuple[HeartbeatLine, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "at": self.at,
            "incidents": [
                {
                    "incident": i.incident,
                    "title": i.title,
                    "state": str(i.state),
                    "changed": i.changed,
                    "clean_streak": i.clean_streak,
                    "window": i.window,
                    "streak_start": i.streak_start,
                    "errors": i.errors,
                    "blind_sources": list(i.blind_sources),
                    "fingerprint": list(i.fingerprint),
                    "impact": list(i.impact),
                }
                for i in self.incidents
            ],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, object]) -> HeartbeatNews:
        listed = doc.get("incidents")
        lines = []
        for item in listed if isinstance(listed, list) else []:
            i = _map(item)
            start = i.get("streak_start")
            errors = i.get("errors")
            lines.append(
                HeartbeatLine(
                    incident=str(i.get("incident", "")),
                    title=str(i.get("title", "")),
                    state=State(str(i.get("state"))),
                    changed=bool(i.get("changed")),
                    clean_streak=_num(i.get("clean_streak")),
                    window=_num(i.get("window")),
                    streak_start=float(start) if isinstance(start, int | float) else None,
                    errors=errors if isinstance(errors, int) else 0,
                    blind_sources=tuple(map(str, _list(i.get("blind_sources")))),
                    fingerprint=tuple(_list(i.get("fingerprint"))),
                    impact=tuple(map(str, _list(i.get("impact")))),
                )
            )
        return cls(_num(doc.get("at")), tuple(lines))


@dataclass(frozen=True, slots=True)
class CheckNews:
    at: float
    channel: str
    host: str

    def to_json(self) -> dict[str, object]:
        return {"at": self.at, "channel": self.channel, "host": self.host}

    @classmethod
    def from_json(cls, doc: Mapping[str, object]) -> CheckNews:
        return cls(_num(doc.get("at")), str(doc.get("channel", "")), str(doc.get("host", "")))


@dataclass(frozen=True, slots=True)
class LastError:
    at: float | None
    source: str
    rule: str
    message: str


@dataclass(frozen=True, slots=True)
class StatusNews:
    """An incident as it stands at `at`: what its living status message shows."""

    incident: str
    title: str
    state: State
    at: float
    opened_at: float
    mitigated_at: float | None
    window: float
    clean_streak: float
    streak_start: float | None
    verified_to: float | None
    resolved_at: float | None
    errors: int
    gaps: int
    lines: int
    last_error: LastError | None
    blind_sources: tuple[str, ...]
    sources: tuple[str, ...]
    impact: tuple[str, ...] = ()
    """Whom its errors hit: sentences (engine/impact.py, `ImpactSummary.lines`)."""

    @classmethod
    def of(cls, s: IncidentStatus, at: float) -> StatusNews:
        e: ErrorEvent | None = s.last_error
        last = None if e is None else LastError(e.at, e.source, e.rule, e.message)
        return cls(
            s.id, s.title, s.state, at, s.opened_at, s.mitigated_at, s.window, s.clean_streak,
            s.streak_start, s.verified_to, s.resolved_at, s.errors, s.gaps, s.lines, last,
            s.blind_sources, s.sources, s.impact.lines(),
        )  # fmt: skip

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {f: getattr(self, f) for f in _STATUS_FIELDS}
        doc["state"] = str(self.state)
        doc["blind_sources"] = list(self.blind_sources)
        doc["sources"] = list(self.sources)
        doc["impact"] = list(self.impact)
        e = self.last_error
        doc["last_error"] = None if e is None else {
            "at": e.at, "source": e.source, "rule": e.rule, "message": e.message
        }  # fmt: skip
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, object]) -> StatusNews:
        e = doc.get("last_error")
        last = None
        if isinstance(e, Mapping):
            last = LastError(_maybe(e.get("at")), str(e.get("source", "")), str(e.get("rule", "")),
                             str(e.get("message", "")))  # fmt: skip
        return cls(
            incident=str(doc.get("incident", "")),
            title=str(doc.get("title", "")),
            state=State(str(doc.get("state"))),
            at=_num(doc.get("at")),
            opened_at=_num(doc.get("opened_at")),
            mitigated_at=_maybe(doc.get("mitigated_at")),
            window=_num(doc.get("window")),
            clean_streak=_num(doc.get("clean_streak")),
            streak_start=_maybe(doc.get("streak_start")),
            verified_to=_maybe(doc.get("verified_to")),
            resolved_at=_maybe(doc.get("resolved_at")),
            errors=int(_num(doc.get("errors"))),
            gaps=int(_num(doc.get("gaps"))),
            lines=int(_num(doc.get("lines"))),
            last_error=last,
            blind_sources=tuple(map(str, _list(doc.get("blind_sources")))),
            sources=tuple(map(str, _list(doc.get("sources")))),
            impact=tuple(map(str, _list(doc.get("impact")))),
        )


_STATUS_FIELDS = (
    "incident", "title", "at", "opened_at", "mitigated_at", "window", "clean_streak",
    "streak_start", "verified_to", "resolved_at", "errors", "gaps", "lines",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class EscalationNews:
    """The runbook escalated `incident` (no hypothesis in time, mitigations failed): page on it."""

    incident: str
    title: str
    at: float
    cause: str

    def to_json(self) -> dict[str, object]:
        return {"incident": self.incident, "title": self.title, "at": self.at, "cause": self.cause}

    @classmethod
    def from_json(cls, doc: Mapping[str, object]) -> EscalationNews:
        return cls(
            str(doc.get("incident", "")),
            str(doc.get("title", "")),
            _num(doc.get("at")),
            str(doc.get("cause", "")),
        )


News = TransitionNews | HeartbeatNews | CheckNews | StatusNews | EscalationNews
IncidentNews = TransitionNews | StatusNews | EscalationNews
"""News about one incident."""


def kind_of(news: News) -> str:
    """The outbox row's kind (and the route and template key) of `news`."""
    if isinstance(news, TransitionNews):
        return str(news.kind)
    if isinstance(news, StatusNews):
        return STATUS
    if isinstance(news, EscalationNews):
        return ESCALATION
    return HEARTBEAT if isinstance(news, HeartbeatNews) else TEST


def news_from_json(kind: str, payload: Mapping[str, object]) -> News:
    """An outbox row's payload as the news it was written from."""
    readers: dict[str, Callable[[Mapping[str, object]], News]] = {
        HEARTBEAT: HeartbeatNews.from_json,
        TEST: CheckNews.from_json,
        STATUS: StatusNews.from_json,
        ESCALATION: EscalationNews.from_json,
    }
    return readers.get(kind, TransitionNews.from_json)(payload)


def _map(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _maybe(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
