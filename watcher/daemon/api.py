"""The daemon's local HTTP server: /metrics, /healthz, /readyz and the JSON API the CLI drives.

Security model: the server listens on loopback by default. Reads (metrics,
status, timeline) are open to local users; every POST needs the bearer token
from `<state_dir>/api-token` (Alertmanager sends it as its webhook's
`http_config.authorization` credentials). Log text reaches a reader redacted, as in the
announcements (watcher.redact, with the webhook URLs): every document the API
answers with has its strings redacted, unless the request asks `?redact=false`
and holds the token. A Host header that is not ours is refused on every route, so
a web page the SRE has open cannot reach the API through DNS rebinding.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from watcher.config.alerts import AlertmanagerConfig
from watcher.daemon import alert_payload, requests
from watcher.daemon.control import Control
from watcher.errors import (
    DaemonError,
    IncidentClosed,
    IncidentExists,
    IncidentNotClosed,
    IncidentNotFound,
    InputError,
    SnapshotError,
    StoreError,
)
from watcher.events import Kind
from watcher.evidence import Request
from watcher.metrics import Metrics
from watcher.names import check_incident_id
from watcher.redact import redact_doc

MAX_BODY = 64 * 1024
ALERTMANAGER = "/api/v1/alerts/alertmanager"
_M = TypeVar("_M", bound=requests.Body)
_LOOPBACK_NAMES = frozenset({"localhost"})
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})
log = logging.getLogger(__name__)


class _Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class ApiServer:
    def __init__(
        self,
        control: Control,
        metrics: Metrics,
        *,
        listen: str,
        token: str,
        health: Callable[[], tuple[bool, str]],
        alerts: AlertmanagerConfig | None = None,
        ready: Callable[[], tuple[bool, str]] | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        """`secrets`: literals redacted wherever they appear (the webhook URLs)."""
        self._control = control
        self._alerts = alerts or AlertmanagerConfig()
        self._metrics = metrics
        self._listen = listen
        host, _, port = listen.rpartition(":")
        self._host = host.strip("[]").lower()
        self._requested_port = int(port)
        self._token = token.encode()
        self._health = health
        self._ready = ready or health
        self._secrets = tuple(secrets)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

        app = web.Application(middlewares=[self._guard_middleware()], client_max_size=MAX_BODY)
        app.router.add_get("/metrics", self._get_metrics)
        app.router.add_get("/healthz", self._get_healthz)
        app.router.add_get("/readyz", self._get_readyz)
        app.router.add_get("/api/v1/status", self._get_status)
        app.router.add_get("/api/v1/incidents", self._get_incidents)
        app.router.add_post("/api/v1/incidents", self._post_incident)
        app.router.add_patch("/api/v1/incidents/{id}", self._patch_incident)
        app.router.add_post("/api/v1/incidents/{id}/mitigations", self._post_mitigation)
        app.router.add_post("/api/v1/incidents/{id}/notes", self._post_note)
        app.router.add_post("/api/v1/incidents/{id}/hypotheses", self._post_hypothesis)
        app.router.add_post("/api/v1/incidents/{id}/close", self._post_close)
        app.router.add_post("/api/v1/incidents/{id}/reopen", self._post_reopen)
        app.router.add_get("/api/v1/incidents/{id}/timeline", self._get_timeline)
        app.router.add_get("/api/v1/incidents/{id}/statuspage", self._get_statuspage)
        app.router.add_get("/api/v1/incidents/{id}/postmortem", self._get_postmortem)
        app.router.add_post("/api/v1/snapshots", self._post_snapshot)
        app.router.add_post(ALERTMANAGER, self._post_alertmanager)
        app.router.add_post("/api/v1/snapshots/recorded", self._post_recorded_snapshot)
        self._app = app

    @property
    def address(self) -> str:
        """`host:port` it listens on, with the real port."""
        host = self._host or "0.0.0.0"
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def port(self) -> int:
        """The bound port once started (the real one when `listen` asked for port 0)."""
        return self._site.port if self._site is not None else self._requested_port

    async def start(self) -> None:
        # No access log: scrapes every 15 s would drown the daemon's own log.
        runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=3.0)
        await runner.setup()
        site = web.TCPSite(runner, self._host or None, self._requested_port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            # asyncio rewraps bind errors into a long sentence; errno gives the short reason.
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            reason = reason[:1].lower() + reason[1:]
            raise DaemonError(f"cannot listen on {self._listen}: {reason}") from None
        self._runner, self._site = runner, site
        log.info("API and /metrics listening on %s", site.name)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # Guards, in order: Host (421), then for POSTs Origin (403), token (401), size (413).

    def _guard_middleware(self) -> Middleware:
        @web.middleware
        async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            try:
                if not self._host_allowed(request.headers.get("Host", "")):
                    raise _Refused(421, "refused: the Host header does not name this server")
                if request.method not in ("GET", "HEAD"):
                    self._check_mutation(request)
                return await handler(request)
            except _Refused as exc:
                return _error(exc.status, exc.message, exc.headers)
            except web.HTTPException as exc:
                allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
                return _error(exc.status, _http_sentence(exc, request), allow)
            except Exception:
                log.exception("API %s %s failed", request.method, request.path)
                return _error(500, "internal error in the watcher daemon; its log has the details")

        return guard

    def _host_allowed(self, header: str) -> bool:
        name, port = _split_host(header.strip().lower())
        if name is None:
            return False
        if name in _LOOPBACK_NAMES or _is_ip(name, loopback=True):
            # Any port: an `ssh -L` tunnel changes it, and rebinding needs a foreign *name*.
            return True
        if name == self._host and port in (None, self.port):
            return True
        # Listening on every interface, scrapers address us by IP; an IP literal cannot be rebound.
        return self._host in _WILDCARDS and _is_ip(name, loopback=False)

    def _check_mutation(self, request: web.Request) -> None:
        origin = request.headers.get("Origin")
        if origin is not None and not self._host_allowed(urlsplit(origin).netloc):
            raise _Refused(403, "refused: cross-origin requests cannot change incidents")
        self._check_token(request)
        limit = self._limit(request)
        if request.content_length is not None and request.content_length > limit:
            raise _Refused(413, f"request body is larger than {limit // 1024} KiB")

    def _check_token(self, request: web.Request, why: str = "") -> None:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("utf-8", "replace"), self._token
        ):
            raise _Refused(
                401,
                f"missing or wrong API token{why}: send `Authorization: Bearer <token>` with the token "
                "from the daemon's state_dir/api-token",
                {"WWW-Authenticate": 'Bearer realm="watcher"'},
            )

    def _limit(self, request: web.Request) -> int:
        return self._alerts.max_body if request.path == ALERTMANAGER else MAX_BODY

    async def _document(
        self, request: web.Request, doc: Mapping[str, Any], status: int = 200
    ) -> web.Response:
        """`doc` as JSON with its log text redacted, or as it is for a token holder asking `?redact=false`.

        Redacted in a worker thread: a long timeline is megabytes of text, and /healthz
        and the pipeline must not wait for it.
        """
        asked = request.query.get("redact", "true")
        if asked not in ("true", "false"):
            raise _Refused(400, f"redact must be true or false, not {asked[:20]!r}")
        if asked == "false":
            self._check_token(request, " (unredacted log text needs it)")
            return web.json_response(doc, status=status)
        redacted = await asyncio.to_thread(redact_doc, doc, self._secrets)
        return web.json_response(redacted, status=status)

    # Routes

    async def _get_metrics(self, request: web.Request) -> web.Response:
        body, content_type = self._metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _get_healthz(self, request: web.Request) -> web.Response:
        ok, reason = self._health()
        return web.Response(status=200 if ok else 503, text=("ok" if ok else reason) + "\n")

    async def _get_readyz(self, request: web.Request) -> web.Response:
        """Every source up: 200; otherwise 503 and one line per source that is not, with why."""
        ok, text = self._ready()
        return web.Response(status=200 if ok else 503, text=text + "\n")

    async def _get_status(self, request: web.Request) -> web.Response:
        return await self._document(request, self._control.status())

    async def _get_incidents(self, request: web.Request) -> web.Response:
        listed = request.query.get("all", "false")
        if listed not in ("true", "false"):
            raise _Refused(400, f"all must be true or false, not {listed[:20]!r}")
        return await self._document(request, self._control.incidents(listed == "true"))

    async def _post_incident(self, request: web.Request) -> web.Response:
        body = await _body(request, requests.OpenIncident)
        with _control_errors():
            result = await self._control.open_incident(
                body.id, body.title, list(body.scope), body.window, _by(request), body.orgs
            )
        return await self._document(request, result, status=201)

    async def _patch_incident(self, request: web.Request) -> web.Response:
        incident = _incident_id(request.match_info["id"])
        b = await _body(request, requests.Change)
        with _control_errors():
            result = await self._control.change(incident, _by(request), b.scope, b.window, b.orgs)
        return await self._document(request, result)

    async def _post_mitigation(self, request: web.Request) -> web.Response:
        incident = _incident_id(request.match_info["id"])
        body = await _body(request, requests.Mitigation)
        with _control_errors():
            result = await self._control.mitigate(incident, body.action, _by(request), body.at)
        return await self._document(request, result, status=201)

    async def _post_note(self, request: web.Request) -> web.Response:
        return await self._text(request, Kind.NOTE)

    async def _post_hypothesis(self, request: web.Request) -> web.Response:
        return await self._text(request, Kind.HYPOTHESIS)

    async def _text(self, request: web.Request, kind: Kind) -> web.Response:
        incident = _incident_id(request.match_info["id"])
        body = await _body(request, requests.Text)
        with _control_errors():
            result = await self._control.note(incident, kind, body.text, _by(request))
        return await self._document(request, result, status=201)

    async def _post_close(self, request: web.Request) -> web.Response:
        incident = _incident_id(request.match_info["id"])
        body = await _body(request, requests.Close)
        with _control_errors():
            result = await self._control.close(incident, body.reason, _by(request))
        return await self._document(request, result)

    async def _post_reopen(self, request: web.Request) -> web.Response:
        incident = _incident_id(request.match_info["id"])
        await _body(request, requests.Reopen)
        with _control_errors():
            result = await self._control.reopen(incident, _by(request))
        return await self._document(request, result)

    async def _get_timeline(self, request: web.Request) -> web.Response:
        incident = _incident_id(request.match_info["id"])
        with _control_errors():
            result = self._control.timeline(incident)
        return await self._document(request, result)

    async def _get_statuspage(self, request: web.Request) -> web.Response:
        incident = _incident_id(request.match_info["id"])
        with _control_errors():
            result = self._control.statuspage(incident)
        return await self._document(request, result)

    async def _get_postmortem(self, request: web.Request) -> web.Response:
        incident = _incident_id(request.match_info["id"])
        with _control_errors():
            result = self._control.postmortem(incident)
        return await self._document(request, result)

    async def _post_snapshot(self, request: web.Request) -> web.Response:
        b = await _body(request, requests.Snapshot)
        req = Request(b.reason, b.incident, b.scope, b.since, b.until, b.redact, b.trigger)
        with _control_errors():
            result = await self._control.snapshot(req, _by(request))
        return await self._document(request, result, status=201)

    async def _post_recorded_snapshot(self, request: web.Request) -> web.Response:
        """A snapshot the CLI wrote itself: counted, and on its incident's timeline."""
        taken = await _body(request, requests.SnapshotTaken)
        with _control_errors():
            result = self._control.record_snapshot(taken, _by(request))
        return web.json_response(result, status=201)

    async def _post_alertmanager(self, request: web.Request) -> web.Response:
        """A webhook notification. Alertmanager retries only 5xx answers: a body it sent wrong
        is refused with 4xx (never better on a retry), trouble on our side is a 503."""
        limit = self._limit(request)
        raw = bytearray()
        async for chunk in request.content.iter_chunked(64 * 1024):  # no Content-Length: count
            raw += chunk
            if len(raw) > limit:
                raise _Refused(413, f"request body is larger than {limit // 1024} KiB")
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise _Refused(400, "the notification is not valid JSON") from None
        try:
            notification = alert_payload.parse(doc, self._alerts.max_alerts)
        except ValueError as exc:
            raise _Refused(400, str(exc)) from None
        try:
            result = await self._control.alertmanager(notification)
        except StoreError as exc:
            log.error("Alertmanager notification for %s not recorded: %s", notification.group_key, exc)
            raise _Refused(503, "the watcher could not record the notification; retry") from None
        return web.json_response(result)


@contextlib.contextmanager
def _control_errors() -> Iterator[None]:
    """Turn the Control protocol's exceptions into HTTP answers; anything else is a bug (500)."""
    try:
        yield
    except IncidentNotFound as exc:
        raise _Refused(404, str(exc)) from None
    except IncidentExists as exc:
        raise _Refused(409, str(exc)) from None
    except (IncidentClosed, IncidentNotClosed, SnapshotError, InputError) as exc:
        raise _Refused(400, str(exc)) from None


async def _body(request: web.Request, model: type[_M]) -> _M:
    raw = await request.read()  # raises 413 past client_max_size even without Content-Length
    try:
        doc = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise _Refused(400, "request body is not valid JSON") from None
    except RecursionError:
        raise _Refused(400, "request body is nested too deeply") from None
    try:
        return requests.parse(model, doc)
    except ValueError as exc:
        raise _Refused(400, str(exc)) from None


def _incident_id(value: str) -> str:
    try:
        return check_incident_id(value)
    except ValueError as exc:
        raise _Refused(400, str(exc)) from None


def _by(request: web.Request) -> str:
    """Who made the call, for the timeline: the CLI sends user@host."""
    user = request.headers.get("X-Watcher-User", "").strip()
    if not user:
        return "api"
    if len(user) > 128 or not user.isprintable():
        raise _Refused(400, "X-Watcher-User must be a short printable name such as alice@bastion")
    return user


def _split_host(value: str) -> tuple[str | None, int | None]:
    """`name[:port]` or `[v6][:port]` into its parts; (None, None) when malformed."""
    if value.startswith("["):
        name, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None, None
        port = rest[1:] if rest else None
    elif value.count(":") == 1:
        name, _, port = value.partition(":")
    else:
        name, port = value, None
    if not name or (port is not None and not port.isdigit()):
        return None, None
    return name, int(port) if port is not None else None


def _is_ip(name: str, *, loopback: bool) -> bool:
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or not loopback


def _http_sentence(exc: web.HTTPException, request: web.Request) -> str:
    if exc.status == 404:
        return f"no such endpoint: {request.method} {request.path}"
    if exc.status == 405:
        return f"{request.method} is not allowed on {request.path}"
    if exc.status == 413:
        return f"request body is larger than {MAX_BODY // 1024} KiB"
    return exc.reason


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)
