"""The CLI's side of the daemon's HTTP API (watcher/api.py).

Every failure becomes a DaemonError whose message the CLI prints as is: the
daemon's own sentence when it answered, or what to do when it did not. The daemon
answers with log text redacted; `redact=False` asks for it as it is, which needs
the API token (readable by the daemon's user) even for a read.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, TypeVar

import aiohttp
from pydantic import TypeAdapter, ValidationError
from yarl import URL

from watcher.config import Settings
from watcher.daemon.token import TOKEN_FILE, read_token
from watcher.errors import DaemonError, DaemonNotRunning, InputError
from watcher.names import check_incident_id, default_user
from watcher.notify.webhook import describe_http_error
from watcher.schema import IncidentDoc, SnapshotDoc, StatusDoc, TimelineDoc


class Client:
    """One daemon's API. Use `async with` to reuse a connection across calls (`status --watch`)."""

    def __init__(self, settings: Settings, *, user: str | None = None, timeout: float = 5.0) -> None:
        self._listen = settings.http.listen
        host = settings.http.host
        # A wildcard listen address is not connectable; the same machine answers on loopback.
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        self._base = URL.build(scheme="http", host=host, port=settings.http.port)
        self._state_dir = settings.state_dir
        self._user = user or default_user()
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        self._session = self._new_session()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def status(self, *, redact: bool = True) -> StatusDoc:
        return _answer_as(StatusDoc, await self._request("GET", "/api/v1/status", redact=redact))

    async def open_incident(
        self, incident: str, title: str, scope: list[str], window: str | None
    ) -> IncidentDoc:
        body: dict[str, Any] = {"id": _checked(incident), "title": title, "scope": scope}
        if window is not None:
            body["window"] = window
        return _answer_as(IncidentDoc, await self._request("POST", "/api/v1/incidents", body))

    async def mitigate(self, incident: str, action: str) -> IncidentDoc:
        path = f"/api/v1/incidents/{_checked(incident)}/mitigations"
        return _answer_as(IncidentDoc, await self._request("POST", path, {"action": action}))

    async def close(self, incident: str, reason: str) -> IncidentDoc:
        path = f"/api/v1/incidents/{_checked(incident)}/close"
        return _answer_as(IncidentDoc, await self._request("POST", path, {"reason": reason}))

    async def timeline(self, incident: str, *, redact: bool = True) -> TimelineDoc:
        path = f"/api/v1/incidents/{_checked(incident)}/timeline"
        return _answer_as(TimelineDoc, await self._request("GET", path, redact=redact))

    async def snapshot(self, request: dict[str, object]) -> SnapshotDoc:
        """The daemon collects and writes the snapshot (`watcher snapshot --via-daemon`)."""
        return _answer_as(SnapshotDoc, await self._request("POST", "/api/v1/snapshots", request))

    def _new_session(self) -> aiohttp.ClientSession:
        # trust_env stays off: an HTTP_PROXY meant for the internet must not see loopback calls.
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))

    async def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, redact: bool = True
    ) -> dict[str, object]:
        headers = {"X-Watcher-User": self._user, "Accept": "application/json"}
        if method == "POST" or not redact:
            # Only now: redacted reads work for users who cannot read the token file.
            headers["Authorization"] = f"Bearer {read_token(self._state_dir)}"
        url = self._base.with_path(path)
        if not redact:
            url = url.with_query(redact="false")
        session = self._session or self._new_session()
        try:
            async with session.request(method, url, json=body, headers=headers) as resp:
                return await self._answer(resp)
        except aiohttp.ClientConnectorError:
            raise DaemonNotRunning(
                f"the watcher daemon is not running on {self._listen} "
                "(start it with `systemctl start novavms-watcher` or `make run`)"
            ) from None
        except TimeoutError:
            raise DaemonError(
                f"the watcher daemon on {self._listen} did not answer within {self._timeout:g}s "
                "(is it stuck? `systemctl status novavms-watcher` shows its state)"
            ) from None
        except aiohttp.ClientError as exc:
            raise DaemonError(
                f"lost the connection to the watcher daemon on {self._listen}: {describe_http_error(exc)}"
            ) from None
        finally:
            if session is not self._session:
                await session.close()

    async def _answer(self, resp: aiohttp.ClientResponse) -> dict[str, object]:
        try:
            data = await resp.json(content_type=None)
        except ValueError:  # also UnicodeDecodeError: not our daemon, or a truncated answer
            data = None
        if resp.status == 401:
            raise DaemonError(
                f"the daemon on {self._listen} refused the API token in {self._state_dir / TOKEN_FILE}: "
                "is the CLI using the daemon's config (same state_dir)?"
            )
        if isinstance(data, dict):
            if resp.status < 400:
                return data
            if isinstance(data.get("error"), str):
                raise DaemonError(data["error"])
        raise DaemonError(
            f"unexpected answer from {self._listen}: HTTP {resp.status} "
            "(is another program listening on that address?)"
        )


def _checked(incident: str) -> str:
    # Checked here too: an id with '/' or '?' would otherwise address another URL.
    try:
        return check_incident_id(incident)
    except ValueError as exc:
        raise InputError(str(exc)) from None


_D = TypeVar("_D")


_ADAPTERS: dict[object, TypeAdapter[Any]] = {}


def _answer_as(doc: type[_D], data: object) -> _D:
    """The daemon's answer checked against the document it promises (watcher.schema)."""
    adapter = _ADAPTERS.get(doc) or _ADAPTERS.setdefault(doc, TypeAdapter(doc))
    try:
        checked: _D = adapter.validate_python(data)
    except ValidationError as exc:
        problem = exc.errors(include_url=False)[0]
        where = ".".join(map(str, problem["loc"]))
        raise DaemonError(
            f"the daemon's answer is not a {doc.__name__} ({where}: {problem['msg']}); "
            "is the CLI the same version as the daemon?"
        ) from None
    return checked
