"""PagerDuty Events API v2: page when an incident opens or regresses, resolve only on proof.

The transport of the `pagerduty` lane. What each announcement becomes is decided by
`events()` (pure), with `dedup_key` = the incident id, so PagerDuty's alert follows
the incident:

- opened, regressed: `trigger` on the incident routing key (after a resolve, a new
  alert: a regression pages again);
- resolved: `resolve`, and only then: the watcher's own RESOLVED verdict, which the
  engine never reaches while it cannot see a source. Sent on both routing keys, since
  follow-ups only reach the key that triggered (PagerDuty drops a resolve for an
  alert it does not have, with 202);
- escalation (the runbook's, `EscalationNews`): `trigger` on the escalation key;
- the kinds in `changes` (default: mitigated): change events, context that never pages;
- `watcher notify test`'s message: a change event too.

Answers: 202 done; 429 and 5xx retried (the sender's backoff); 400 (an invalid event,
a wrong key) dead-lettered. An announcement that needs two events (a resolve on two
keys) is retried whole; repeating a trigger or a resolve is harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp

from watcher.details import BreakDetail, OpenedDetail
from watcher.events import Kind
from watcher.notify.messages import Renderer
from watcher.notify.news import CheckNews, EscalationNews, News, TransitionNews
from watcher.notify.webhook import Delivery, Webhook
from watcher.times import format_duration, format_time

SUMMARY_LIMIT = 1024
NOTHING_TO_SEND = Delivery(204)
"""What an announcement PagerDuty has no event for comes to: done, without a call."""
PAGES = frozenset({Kind.OPENED, Kind.REGRESSED})


@dataclass(frozen=True, slots=True)
class Keys:
    incident: str | None
    """Paged on open and regression; None: only escalations page."""
    escalation: str | None


@dataclass(frozen=True, slots=True)
class Event:
    path: str
    """`enqueue` (alerts) or `change/enqueue` (change events)."""
    body: dict[str, object]


def kinds(keys: Keys, changes: frozenset[str]) -> frozenset[str]:
    """The announcement kinds the lane takes (everything else never reaches it)."""
    taken = {str(Kind.RESOLVED), "escalation"}
    if keys.incident is not None:
        taken |= {str(k) for k in PAGES} | changes
    return frozenset(taken)


def events(
    news: News, keys: Keys, *, severity: str, source: str, text: str, changes: frozenset[str]
) -> list[Event]:
    """The events for `news`; `text` is its plain rendering (redacted), for summaries and change events."""
    summary = text.split("\n", 1)[0][:SUMMARY_LIMIT]
    if isinstance(news, CheckNews):
        key = keys.incident or keys.escalation
        return [] if key is None else [_change(key, summary, source, news.at, {"text": text})]
    if isinstance(news, EscalationNews):
        if keys.escalation is None:
            return []
        about = {"incident": news.incident, "title": news.title, "cause": news.cause}
        return [_trigger(keys.escalation, news.incident, summary, severity, source, news.at, about)]
    if not isinstance(news, TransitionNews):
        return []
    kind = news.kind
    if kind is Kind.RESOLVED:
        return [
            Event("enqueue", {"routing_key": key, "event_action": "resolve", "dedup_key": news.incident})
            for key in (keys.incident, keys.escalation)
            if key is not None
        ]
    if keys.incident is None:
        return []
    if kind in PAGES:
        facts: dict[str, object] = {"incident": news.incident, "title": news.title, "state": str(news.state)}
        facts |= {"text": text, **_facts(news)}
        return [_trigger(keys.incident, news.incident, summary, severity, source, news.at, facts)]
    if str(kind) in changes:
        return [_change(keys.incident, summary, source, news.at, {"incident": news.incident, "text": text})]
    return []


def _change(key: str, summary: str, source: str, at: float, details: Mapping[str, object]) -> Event:
    payload = {
        "summary": summary,
        "source": source,
        "timestamp": format_time(at),
        "custom_details": dict(details),
    }
    return Event("change/enqueue", {"routing_key": key, "payload": payload})


def _trigger(
    key: str,
    incident: str,
    summary: str,
    severity: str,
    source: str,
    at: float,
    details: Mapping[str, object],
) -> Event:
    payload = {
        "summary": summary,
        "source": source,
        "severity": severity,
        "timestamp": format_time(at),
        "component": "novavms-watcher",
        "custom_details": dict(details),
    }
    body: dict[str, object] = {
        "routing_key": key,
        "event_action": "trigger",
        "dedup_key": incident,
        "payload": payload,
        "client": "novavms-watcher",
    }
    return Event("enqueue", body)


def _facts(news: TransitionNews) -> dict[str, object]:
    d = news.detail
    if isinstance(d, OpenedDetail):
        return {"scope": list(d.scope), "window": format_duration(d.window)}
    if isinstance(d, BreakDetail):
        return {"source": d.source, "rule": d.rule}
    return {}


class PagerDuty:
    """The transport of the `pagerduty` lane."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        events_url: str,
        keys: Keys,
        *,
        severity: str,
        source: str,
        changes: frozenset[str],
        renderer: Renderer,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        secrets = [k for k in (keys.incident, keys.escalation) if k is not None]
        self._paths = {
            path: Webhook(session, events_url + path, timeout=timeout, clock=clock, secrets=secrets)
            for path in ("enqueue", "change/enqueue")
        }
        self._keys = keys
        self._severity = severity
        self._source = source
        self._changes = changes
        self._renderer = renderer

    async def deliver(self, news: News) -> Delivery:
        text = str(self._renderer.body(news).get("text", ""))
        delivery = NOTHING_TO_SEND
        for event in events(
            news, self._keys, severity=self._severity, source=self._source, text=text, changes=self._changes
        ):
            delivery = await self._paths[event.path].post(event.body)
            if delivery.outcome != "sent":
                break
        return delivery
