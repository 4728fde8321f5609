"""What an announcement says before it is rendered: the payload of an outbox row.

Three shapes: a transition of an incident (with its typed detail), the on-call
heartbeat, and `watcher notify test`'s message. The announcer writes them to the
outbox as JSON (`to_json`); the sender reads them back (`news_from_json`) and hands
them to the renderer. JSON mode sends `to_json` itself to receivers, so its shape
is part of the contract:

  transition: {incident, title, kind, at, state, detail}; a streak reset's detail
              also says how many resets were held back before it (`also`)
  heartbeat:  {at, incidents: [{incident, title, state, changed, clean_streak, window,
               streak_start, errors, blind_sources, fingerprint, impact}]}
  test:       {at, channel, host}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from watcher import details
from watcher.details import Detail
from watcher.events import HEARTBEAT, Kind, State

TEST = "test"


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


News = TransitionNews | HeartbeatNews | CheckNews


def kind_of(news: News) -> str:
    """The outbox row's kind (and the route and template key) of `news`."""
    if isinstance(news, TransitionNews):
        return str(news.kind)
    return HEARTBEAT if isinstance(news, HeartbeatNews) else TEST


def news_from_json(kind: str, payload: Mapping[str, object]) -> News:
    """An outbox row's payload as the news it was written from."""
    if kind == HEARTBEAT:
        return HeartbeatNews.from_json(payload)
    if kind == TEST:
        return CheckNews.from_json(payload)
    return TransitionNews.from_json(payload)


def _map(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
