"""A loopback fake of PagerDuty's Events API v2 that keeps alerts as PagerDuty does.

`POST /v2/enqueue` (trigger, acknowledge, resolve) and `POST /v2/change/enqueue`:
202 with `{"status": "success", ...}`; 400 with PagerDuty's `invalid event` body for
a routing key that is not 32 characters or an event without what it needs. Alerts
are kept per (routing_key, dedup_key): a trigger opens one (or is merged into the open
one), a resolve closes it, and an acknowledge or resolve for an alert that is not
open is dropped with 202, as PagerDuty does. A test can answer the next calls with
429 or 500.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.loopback import LoopbackServer

KEY = "0123456789abcdef0123456789abcdef"
ESCALATION_KEY = "fedcba9876543210fedcba9876543210"


@dataclass(frozen=True, slots=True)
class Event:
    path: str
    body: dict[str, Any]
    status: int
    effect: str
    """What it did: opened, merged, resolved, dropped, change, refused, or the injected status."""

    @property
    def action(self) -> str:
        return "change" if self.path.endswith("change/enqueue") else str(self.body.get("event_action"))

    @property
    def key(self) -> str:
        return str(self.body.get("routing_key"))

    @property
    def dedup(self) -> str | None:
        value = self.body.get("dedup_key")
        return None if value is None else str(value)


@dataclass
class PagerDutyFake(LoopbackServer):
    events: list[Event] = field(default_factory=list)
    open: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """(routing_key, dedup_key) -> the trigger's payload, while the alert is open."""
    incidents: list[tuple[str, str]] = field(default_factory=list)
    """Every alert ever opened, in order: a trigger after a resolve is a new one."""
    failing: deque[int] = field(default_factory=deque)

    def __post_init__(self) -> None:
        super().__init__()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2/"

    def fail_next(self, *statuses: int) -> None:
        self.failing.extend(statuses)

    def accepted(self) -> list[Event]:
        return [e for e in self.events if e.status == 202]

    def log(self) -> list[tuple[str, str, str | None, str]]:
        """(action, routing key, dedup key, effect) of every accepted event, in order."""
        return [(e.action, e.key, e.dedup, e.effect) for e in self.accepted()]

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v2/enqueue", self._handle)
        router.add_post("/v2/change/enqueue", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        if self.failing:
            status = self.failing.popleft()
            self.events.append(Event(request.path, body, status, str(status)))
            return web.json_response({"status": "error", "message": "injected"}, status=status)
        change = request.path.endswith("change/enqueue")
        problem = self._invalid(body, change)
        if problem is not None:
            self.events.append(Event(request.path, body, 400, "refused"))
            answer = {"status": "invalid event", "message": "Event object is invalid", "errors": [problem]}
            return web.json_response(answer, status=400)
        effect = "change" if change else self._apply(body)
        self.events.append(Event(request.path, body, 202, effect))
        if change:
            return web.json_response({"message": "Change event processed", "status": "success"}, status=202)
        answer = {"status": "success", "message": "Event processed", "dedup_key": body.get("dedup_key")}
        return web.json_response(answer, status=202)

    @staticmethod
    def _invalid(body: dict[str, Any], change: bool) -> str | None:
        if not re.fullmatch(r"[A-Za-z0-9]{32}", str(body.get("routing_key", ""))):
            return "Length of 'routing_key' is incorrect (should be 32 characters)"
        payload = body.get("payload") or {}
        action = body.get("event_action")
        if change or action == "trigger":
            if not payload.get("summary") or len(payload["summary"]) > 1024:
                return "'payload.summary' is missing or longer than 1024 characters"
            if not change and (not payload.get("source") or payload.get("severity") not in _SEVERITIES):
                return "'payload.source' or 'payload.severity' is missing or invalid"
            return None
        if action not in ("acknowledge", "resolve"):
            return "'event_action' is invalid"
        return None if body.get("dedup_key") else "'dedup_key' is required"

    def _apply(self, body: dict[str, Any]) -> str:
        key = (str(body["routing_key"]), str(body.get("dedup_key")))
        action = body["event_action"]
        if action == "trigger":
            if key in self.open:
                return "merged"
            self.open[key] = body["payload"]
            self.incidents.append(key)
            return "opened"
        if key not in self.open:
            return "dropped"
        if action == "resolve":
            del self.open[key]
            return "resolved"
        return "acknowledged"


_SEVERITIES = ("critical", "error", "warning", "info")
