"""The API server in front of an in-memory daemon (FakeControl), and calls to it over HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from watcher.daemon.alert_payload import Notification
from watcher.daemon.api import ApiServer
from watcher.daemon.requests import SnapshotTaken
from watcher.errors import IncidentClosed, IncidentExists, IncidentNotClosed, IncidentNotFound
from watcher.events import Kind
from watcher.evidence import Request
from watcher.metrics import Metrics
from watcher.schema import (
    AlertDoc,
    IncidentDoc,
    IncidentListDoc,
    PostmortemDoc,
    RecordedDoc,
    SnapshotDoc,
    StatusDoc,
    StatuspageDoc,
    TimelineDoc,
)

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def incident_doc(incident: str, record: dict[str, Any]) -> IncidentDoc:
    """The document the daemon answers an incident command with, for the fake's record."""
    return {
        "id": incident,
        "title": record["title"],
        "state": "closed" if record["closed"] else "investigating",
        "scope": record["scope"],
        "window": record["window"] or 900.0,
        "opened_at": None,
        "mitigated_at": None,
        "streak_start": None,
        "verified_to": None,
        "clean_streak": 0.0,
        "progress": 0.0,
        "resolved_at": None,
        "errors": 0,
        "gaps": 0,
        "lines": 0,
        "last_error": None,
        "blind_sources": [],
        "sources": [],
    }


class FakeControl:
    """An in-memory daemon: incidents in a dict, every mutating call recorded with its `by`."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, ...]] = []

    def status(self) -> StatusDoc:
        return {
            "now": 0.0,
            "incidents": [incident_doc(i, r) for i, r in sorted(self.records.items())],
            "sources": [],
            "outbox": {"pending": 0, "dead": 0, "channels": {}},
        }

    async def open_incident(
        self,
        incident: str,
        title: str,
        scope: list[str],
        window: float | None,
        by: str,
        orgs: Sequence[str] = (),
    ) -> IncidentDoc:
        if incident in self.records:
            raise IncidentExists(f"incident {incident} is already open")
        record = {
            "title": title,
            "scope": scope,
            "window": window,
            "orgs": list(orgs),
            "closed": False,
            "mitigations": [],
        }
        self.records[incident] = record
        self.calls.append(("open", incident, by, *orgs))
        return incident_doc(incident, record)

    def incidents(self, include_closed: bool) -> IncidentListDoc:
        rows = [(i, r) for i, r in sorted(self.records.items()) if include_closed or not r["closed"]]
        return {
            "incidents": [
                {
                    "id": i,
                    "title": r["title"],
                    "state": "closed" if r["closed"] else "investigating",
                    "scope": r["scope"],
                    "window": r["window"] or 900.0,
                    "orgs": r["orgs"],
                    "opened_at": None,
                    "opened_by": "",
                    "mitigations": len(r["mitigations"]),
                    "closed_at": None,
                }
                for i, r in rows
            ]
        }

    async def mitigate(self, incident: str, action: str, by: str, at: float | None = None) -> IncidentDoc:
        record = self._get(incident)
        if record["closed"]:
            raise IncidentClosed(f"incident {incident} is closed; open a new one")
        record["mitigations"].append({"at": at, "action": action, "by": by})
        self.calls.append(("mitigate", incident, action, by))
        return incident_doc(incident, record)

    async def change(
        self,
        incident: str,
        by: str,
        scope: Sequence[str] | None = None,
        window: float | None = None,
        orgs: Sequence[str] | None = None,
    ) -> IncidentDoc:
        record = self._open(incident)
        record["scope"] = list(scope) if scope is not None else record["scope"]
        record["window"] = window if window is not None else record["window"]
        record["orgs"] = list(orgs) if orgs is not None else record["orgs"]
        self.calls.append(("change", incident, repr((scope, window, orgs)), by))
        return incident_doc(incident, record)

    async def note(self, incident: str, kind: Kind, text: str, by: str) -> IncidentDoc:
        record = self._open(incident)
        self.calls.append((str(kind), incident, text, by))
        return incident_doc(incident, record)

    async def close(self, incident: str, reason: str, by: str) -> IncidentDoc:
        record = self._get(incident)
        record["closed"] = True
        self.calls.append(("close", incident, reason, by))
        return incident_doc(incident, record)

    async def reopen(self, incident: str, by: str) -> IncidentDoc:
        record = self._get(incident)
        if not record["closed"]:
            raise IncidentNotClosed(f"incident {incident} is open; only a closed incident can be reopened")
        record["closed"] = False
        self.calls.append(("reopen", incident, by))
        return incident_doc(incident, record)

    def statuspage(self, incident: str) -> StatuspageDoc:
        self._get(incident)
        return {
            "incident": incident,
            "publishable": False,
            "withheld": "impact not confirmed yet",
            "phase": None,
            "started_at": None,
            "ended_at": None,
            "affected_orgs": None,
            "more_orgs": False,
            "updated_at": None,
            "text": None,
        }

    def postmortem(self, incident: str) -> PostmortemDoc:
        raise NotImplementedError("the postmortem is tested against the real daemon")

    def timeline(self, incident: str) -> TimelineDoc:
        record = self._get(incident)
        return {
            "id": incident,
            "title": record["title"],
            "scope": record["scope"],
            "window": record["window"] or 900.0,
            "opened_at": None,
            "closed_at": None,
            "mitigations": record["mitigations"],
            "events": [],
        }

    async def snapshot(self, req: Request, by: str) -> SnapshotDoc:
        if req.incident is not None:
            self._get(req.incident)
        scope, redact = ",".join(req.scope), str(req.redact)
        self.calls.append(("snapshot", req.incident or "", req.reason, scope, req.trigger, redact, by))
        return {"path": "/s.tar.gz", "size": 1, "sha256": "0" * 64, "complete": True, "missing": []}

    async def alertmanager(self, notification: Notification) -> AlertDoc:
        self.calls.append(("alertmanager", notification.group_key, str(len(notification.alerts))))
        return {"incident": None, "opened": False, "new": 0, "ignored": len(notification.alerts)}

    def record_snapshot(self, taken: SnapshotTaken, by: str) -> RecordedDoc:
        if taken.incident is not None:
            self._get(taken.incident)
        self.calls.append(("recorded", taken.incident or "", taken.path, by))
        return {"incident": taken.incident, "trigger": str(taken.trigger)}

    def _open(self, incident: str) -> dict[str, Any]:
        record = self._get(incident)
        if record["closed"]:
            raise IncidentClosed(f"incident {incident} is closed; open a new one")
        return record

    def _get(self, incident: str) -> dict[str, Any]:
        if incident not in self.records:
            raise IncidentNotFound(f"no incident named {incident}")
        return self.records[incident]


@contextlib.asynccontextmanager
async def running(
    control: Any,
    *,
    metrics: Metrics | None = None,
    health: Callable[[], tuple[bool, str]] = lambda: (True, ""),
    ready: Callable[[], tuple[bool, str]] | None = None,
    listen: str = "127.0.0.1:0",
    secrets: tuple[str, ...] = (),
) -> AsyncIterator[ApiServer]:
    """A real ApiServer on a free loopback port, stopped on exit."""
    if metrics is None:
        metrics = Metrics(CollectorRegistry(), sources=["cloud"], rules=["panic"])
    server = ApiServer(
        control, metrics, listen=listen, token=TOKEN, health=health, ready=ready, secrets=secrets
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


Api = tuple[aiohttp.ClientSession, str]


async def call(
    api: Api, method: str, path: str, *, headers: dict[str, str] | None = None, **kw: Any
) -> tuple[int, Any]:
    http, base = api
    async with http.request(method, base + path, headers=headers, **kw) as resp:
        if resp.content_type == "application/json":
            return resp.status, await resp.json()
        return resp.status, await resp.text()


async def open_p1(api: Api, **extra: Any) -> tuple[int, Any]:
    body = {"id": "P1-gw", "title": "gateways drop streams", **extra}
    return await call(api, "POST", "/api/v1/incidents", json=body, headers=AUTH)
