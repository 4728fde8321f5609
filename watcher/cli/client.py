"""The CLI's side of the daemon's HTTP API (watcher/daemon/api.py).

Every failure becomes a DaemonError whose message the CLI prints as is: the
daemon's own sentence when it answered, or, when it did not, what the CLI tried
(config, state_dir, address and where they came from) and how to point it elsewhere.
Calls block: the CLI does one thing at a time, and a test that runs the daemon in
its own event loop calls them in a thread. The daemon answers with log text redacted;
`redact=False` asks for it as it is, which needs the API token (readable by the
daemon's user) even for a read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol, TypeVar

from watcher.cli.wire import WireError, request
from watcher.errors import DaemonError, DaemonNotRunning, DaemonUnreachable, InputError
from watcher.names import check_incident_id, default_user
from watcher.schema import (
    IncidentDoc,
    IncidentListDoc,
    PostmortemDoc,
    RecordedDoc,
    SnapshotDoc,
    StatusDoc,
    StatuspageDoc,
    TimelineDoc,
)

POINT_ELSEWHERE = (
    "start it (`make run`, or `systemctl start novavms-watcher`) or point the CLI at it "
    "(--config FILE, WATCHER_CONFIG=FILE, or WATCHER_HTTP__LISTEN=HOST:PORT and WATCHER_STATE_DIR=DIR)"
)


class Target(Protocol):
    """Where a daemon's API is: this machine's (config.endpoint.Endpoint) or another site's
    (config.sites.Site)."""

    @property
    def listen(self) -> str:
        """`HOST:PORT`."""
        ...

    def token_path(self) -> Path: ...

    def tried(self) -> str:
        """What was tried, for the sentence when nothing answers there."""
        ...


class Client:
    """One daemon's API, at `endpoint`."""

    def __init__(self, endpoint: Target, *, user: str | None = None, timeout: float = 5.0) -> None:
        self.endpoint = endpoint
        host, _, port = endpoint.listen.rpartition(":")
        host = host.strip("[]")
        # A wildcard listen address is not connectable; the same machine answers on loopback.
        self._host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        self._port = int(port)
        self._user = user or default_user()
        self._timeout = timeout

    def status(self, *, redact: bool = True) -> StatusDoc:
        return _answer_as(StatusDoc, self._request("GET", "/api/v1/status", redact=redact))

    def incidents(self, include_closed: bool = False) -> IncidentListDoc:
        path = "/api/v1/incidents" + ("?all=true" if include_closed else "")
        return _answer_as(IncidentListDoc, self._request("GET", path))

    def open_incident(
        self, incident: str, title: str, scope: list[str], window: str | None, orgs: list[str] | None = None
    ) -> IncidentDoc:
        body: dict[str, Any] = {"id": _checked(incident), "title": title, "scope": scope}
        if window is not None:
            body["window"] = window
        if orgs:
            body["orgs"] = orgs
        return _answer_as(IncidentDoc, self._request("POST", "/api/v1/incidents", body))

    def mitigate(self, incident: str, action: str, at: str | None = None) -> IncidentDoc:
        """`at`: when it was made (RFC 3339), for a mitigation recorded after the fact."""
        path = f"/api/v1/incidents/{_checked(incident)}/mitigations"
        body: dict[str, Any] = {"action": action}
        if at is not None:
            body["at"] = at
        return _answer_as(IncidentDoc, self._request("POST", path, body))

    def note(self, incident: str, text: str, *, hypothesis: bool = False) -> IncidentDoc:
        what = "hypotheses" if hypothesis else "notes"
        path = f"/api/v1/incidents/{_checked(incident)}/{what}"
        return _answer_as(IncidentDoc, self._request("POST", path, {"text": text}))

    def change(
        self,
        incident: str,
        *,
        scope: list[str] | None = None,
        window: str | None = None,
        orgs: list[str] | None = None,
    ) -> IncidentDoc:
        body = {k: v for k, v in (("scope", scope), ("window", window), ("orgs", orgs)) if v is not None}
        return _answer_as(
            IncidentDoc, self._request("PATCH", f"/api/v1/incidents/{_checked(incident)}", body)
        )

    def close(self, incident: str, reason: str) -> IncidentDoc:
        path = f"/api/v1/incidents/{_checked(incident)}/close"
        return _answer_as(IncidentDoc, self._request("POST", path, {"reason": reason}))

    def reopen(self, incident: str) -> IncidentDoc:
        path = f"/api/v1/incidents/{_checked(incident)}/reopen"
        return _answer_as(IncidentDoc, self._request("POST", path, {}))

    def statuspage(self, incident: str) -> StatuspageDoc:
        path = f"/api/v1/incidents/{_checked(incident)}/statuspage"
        return _answer_as(StatuspageDoc, self._request("GET", path))

    def postmortem(self, incident: str, *, redact: bool = True) -> PostmortemDoc:
        path = f"/api/v1/incidents/{_checked(incident)}/postmortem"
        return _answer_as(PostmortemDoc, self._request("GET", path, redact=redact))

    def timeline(self, incident: str, *, redact: bool = True) -> TimelineDoc:
        path = f"/api/v1/incidents/{_checked(incident)}/timeline"
        return _answer_as(TimelineDoc, self._request("GET", path, redact=redact))

    def snapshot(self, request: dict[str, object]) -> SnapshotDoc:
        """The daemon collects and writes the snapshot (`watcher snapshot --via-daemon`)."""
        return _answer_as(SnapshotDoc, self._request("POST", "/api/v1/snapshots", request))

    def record_snapshot(self, taken: dict[str, object]) -> RecordedDoc:
        """A snapshot written here: on its incident's timeline and in watcher_snapshots_total."""
        return _answer_as(RecordedDoc, self._request("POST", "/api/v1/snapshots/recorded", taken))

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, redact: bool = True
    ) -> dict[str, object]:
        headers = {"X-Watcher-User": self._user, "Accept": "application/json"}
        if not redact:
            path += "?redact=false"
        if method != "GET" or not redact:
            from watcher.daemon.token import read_token_file

            # Only now: redacted reads work for users who cannot read the token file.
            token_file = self.endpoint.token_path()
            missing = (
                f"no API token in {token_file} (a daemon writes it to its state_dir when it first starts)"
            )
            try:
                headers["Authorization"] = f"Bearer {read_token_file(token_file, missing=missing)}"
            except DaemonError as exc:
                raise DaemonError(f"{exc}; tried {self.endpoint.tried()}; {POINT_ELSEWHERE}") from None
        data = None if body is None else json.dumps(body).encode()
        where = self.endpoint.listen
        try:
            answer = request(
                self._host, self._port, method, path, headers=headers, body=data, timeout=self._timeout
            )
        except ConnectionRefusedError:
            raise DaemonNotRunning(
                f"no watcher daemon answers on {where}: tried {self.endpoint.tried()}; {POINT_ELSEWHERE}"
            ) from None
        except TimeoutError:
            raise DaemonUnreachable(
                f"the watcher daemon on {where} did not answer within {self._timeout:g}s "
                "(is it stuck? `systemctl status novavms-watcher` shows its state)"
            ) from None
        except WireError as exc:
            raise DaemonError(
                f"unexpected answer from {where}: {exc} (is another program listening there?)"
            ) from None
        except OSError as exc:
            raise DaemonNotRunning(
                f"cannot reach the watcher daemon on {where}: {exc.strerror or exc}; "
                f"tried {self.endpoint.tried()}; {POINT_ELSEWHERE}"
            ) from None
        return self._answer(answer.status, answer.body)

    def _answer(self, status: int, body: bytes) -> dict[str, object]:
        try:
            data = json.loads(body)
        except ValueError:  # also UnicodeDecodeError: not our daemon, or a truncated answer
            data = None
        if status == 401:
            raise DaemonError(
                f"the daemon on {self.endpoint.listen} refused the API token in "
                f"{self.endpoint.token_path()}: is it that daemon's own (its state_dir/api-token)? "
                f"tried {self.endpoint.tried()}"
            )
        if isinstance(data, dict):
            if status < 400:
                return data
            if isinstance(data.get("error"), str):
                raise DaemonError(data["error"])
        raise DaemonError(
            f"unexpected answer from {self.endpoint.listen}: HTTP {status} "
            "(is another program listening on that address?)"
        )


def _checked(incident: str) -> str:
    # Checked here too: an id with '/' or '?' would otherwise address another URL.
    try:
        return check_incident_id(incident)
    except ValueError as exc:
        raise InputError(str(exc)) from None


_D = TypeVar("_D")


def _answer_as(doc: type[_D], data: dict[str, object]) -> _D:
    """The daemon's answer, checked for the keys of the document it promises (watcher.schema).

    A shallow check, not pydantic: importing pydantic would cost a CLI call more than the
    call itself, and a missing key is what a daemon of another version gives."""
    required: frozenset[str] = getattr(doc, "__required_keys__", frozenset())
    missing = sorted(required - data.keys())
    if missing:
        raise DaemonError(
            f"the daemon's answer is not a {doc.__name__} (missing {', '.join(missing)}); "
            "is the CLI the same version as the daemon?"
        )
    return data  # type: ignore[return-value]
