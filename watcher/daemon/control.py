"""What the API asks of the daemon: the incident commands, the documents it reads, snapshots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from watcher.daemon import requests
from watcher.daemon.alert_payload import Notification
from watcher.events import Kind
from watcher.evidence import Request
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


class Control(Protocol):
    """What the API asks of the daemon (watcher.daemon.commands.Commands).

    Methods raise IncidentNotFound (404), IncidentExists (409), and IncidentClosed,
    IncidentNotClosed, SnapshotError or InputError for a request the daemon refuses (400), StoreError (503);
    the exception's sentence is passed to the user as is.
    """

    def status(self) -> StatusDoc: ...

    def incidents(self, include_closed: bool) -> IncidentListDoc: ...

    async def open_incident(
        self,
        incident: str,
        title: str,
        scope: list[str],
        window: float | None,
        by: str,
        orgs: Sequence[str] = (),
    ) -> IncidentDoc: ...

    async def mitigate(self, incident: str, action: str, by: str, at: float | None = None) -> IncidentDoc: ...

    async def change(
        self,
        incident: str,
        by: str,
        scope: Sequence[str] | None = None,
        window: float | None = None,
        orgs: Sequence[str] | None = None,
    ) -> IncidentDoc: ...

    async def note(self, incident: str, kind: Kind, text: str, by: str) -> IncidentDoc: ...

    async def close(self, incident: str, reason: str, by: str) -> IncidentDoc: ...

    async def reopen(self, incident: str, by: str) -> IncidentDoc: ...

    def timeline(self, incident: str) -> TimelineDoc: ...

    def statuspage(self, incident: str) -> StatuspageDoc: ...

    def postmortem(self, incident: str) -> PostmortemDoc: ...

    async def snapshot(self, req: Request, by: str) -> SnapshotDoc: ...

    async def alertmanager(self, notification: Notification) -> AlertDoc:
        """May raise StoreError: answered 503, which Alertmanager retries."""
        ...

    def record_snapshot(self, taken: requests.SnapshotTaken, by: str) -> RecordedDoc: ...
