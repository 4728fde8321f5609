"""The daemon's HTTP API against an in-memory daemon: routes, guards, request bodies, the token."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from tests.daemon.fake_api import (
    AUTH,
    TOKEN,
    Api,
    FakeControl,
    call,
    open_p1,
    running,
)
from watcher.daemon.api import MAX_BODY, ApiServer
from watcher.daemon.token import load_or_create_token, read_token
from watcher.errors import DaemonError
from watcher.metrics import Metrics
from watcher.schema import StatusDoc


class TestPlainRoutes:
    async def test_metrics_needs_no_token(self, api: Api) -> None:
        """GET /metrics answers without a token in the Prometheus text format."""
        http, base = api
        async with http.get(base + "/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert "watcher_source_lines_total" in await resp.text()

    async def test_healthz_ok(self, api: Api) -> None:
        """/healthz answers 200 ok while health() says so."""
        assert await call(api, "GET", "/healthz") == (200, "ok\n")

    async def test_healthz_unhealthy(self, control: FakeControl) -> None:
        """/healthz answers 503 with health()'s reason."""
        unhealthy = running(control, health=lambda: (False, "state store is read-only"))
        async with unhealthy as server, aiohttp.ClientSession() as http:
            status, text = await call((http, f"http://127.0.0.1:{server.port}"), "GET", "/healthz")
        assert (status, text) == (503, "state store is read-only\n")

    async def test_readyz_is_not_healthz(self, control: FakeControl) -> None:
        """/healthz says the process is alive while /readyz says which sources are down and why."""
        down = "cloud: DOWN: unix:///var/run/docker.sock: no Docker socket there"
        server_up = running(control, ready=lambda: (False, down))
        async with server_up as server, aiohttp.ClientSession() as http:
            api = (http, f"http://127.0.0.1:{server.port}")
            assert await call(api, "GET", "/healthz") == (200, "ok\n")
            assert await call(api, "GET", "/readyz") == (503, down + "\n")

    async def test_unknown_endpoint(self, api: Api) -> None:
        """An unknown path is a JSON 404 and a wrong method a JSON 405."""
        assert await call(api, "GET", "/api/v2/nope") == (
            404,
            {"error": "no such endpoint: GET /api/v2/nope"},
        )
        http, base = api
        async with http.delete(base + "/metrics", headers=AUTH) as resp:
            assert (resp.status, await resp.json()) == (405, {"error": "DELETE is not allowed on /metrics"})
            assert "GET" in resp.headers["Allow"]

    async def test_control_bug_is_500(self, caplog: pytest.LogCaptureFixture) -> None:
        """An unexpected exception in the daemon is a logged 500 with a JSON error, not a traceback."""

        class Broken(FakeControl):
            def status(self) -> StatusDoc:
                raise RuntimeError("boom")

        async with running(Broken()) as server, aiohttp.ClientSession() as http:
            with caplog.at_level(logging.ERROR, logger="watcher.daemon.api"):
                status, body = await call((http, f"http://127.0.0.1:{server.port}"), "GET", "/api/v1/status")
        assert status == 500
        assert "internal error" in body["error"]
        assert "boom" in caplog.text


class TestGuards:
    async def test_post_without_token(self, api: Api, control: FakeControl) -> None:
        """A POST without a token is 401 with a WWW-Authenticate challenge and changes nothing."""
        http, base = api
        async with http.post(base + "/api/v1/incidents", json={"id": "P1-gw", "title": "t"}) as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            assert "API token" in (await resp.json())["error"]
        assert control.records == {}

    @pytest.mark.parametrize("value", ["Bearer wrong", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x"])
    async def test_post_with_wrong_token(self, api: Api, value: str) -> None:
        """A wrong token or scheme is 401."""
        status, _ = await call(
            api,
            "POST",
            "/api/v1/incidents",
            json={"id": "P1-gw", "title": "t"},
            headers={"Authorization": value},
        )
        assert status == 401

    async def test_reads_need_no_token(self, api: Api) -> None:
        """Status is readable without the token."""
        status, body = await call(api, "GET", "/api/v1/status")
        assert (status, body["incidents"]) == (200, [])

    @pytest.mark.parametrize("host", ["evil.example", "evil.example:9108", "127.0.0.1.nip.io", "", "[::1"])
    @pytest.mark.parametrize(
        "method,path", [("GET", "/metrics"), ("GET", "/api/v1/status"), ("POST", "/api/v1/incidents")]
    )
    async def test_foreign_host_is_421(
        self, api: Api, control: FakeControl, host: str, method: str, path: str
    ) -> None:
        """A Host that is not ours is refused on every route, even with a valid token (DNS rebinding)."""
        status, body = await call(
            api, method, path, json={"id": "P1-gw", "title": "t"}, headers={**AUTH, "Host": host}
        )
        assert status == 421
        assert "Host" in body["error"]
        assert control.records == {}

    @pytest.mark.parametrize(
        "host", ["localhost", "LOCALHOST:{port}", "127.0.0.1:{port}", "[::1]:{port}", "localhost:9999"]
    )
    async def test_local_hosts_are_accepted(self, api: Api, host: str) -> None:
        """localhost, 127.0.0.1 and [::1] are ours, with our port, none, or a tunnel's."""
        port = api[1].rpartition(":")[2]
        status, _ = await call(api, "GET", "/api/v1/status", headers={"Host": host.format(port=port)})
        assert status == 200

    async def test_cross_origin_post_is_403(self, api: Api, control: FakeControl) -> None:
        """A POST from a web page on another origin is refused even with the token."""
        status, body = await open_p1_with(api, {**AUTH, "Origin": "http://evil.example"})
        assert status == 403
        assert "cross-origin" in body["error"]
        assert control.records == {}

    async def test_body_too_large(self, api: Api) -> None:
        """A body over the limit is 413, whether it declares its length or is chunked."""
        big = b'{"id": "P1-gw", "title": "' + b"x" * MAX_BODY + b'"}'
        status, body = await call(api, "POST", "/api/v1/incidents", data=big, headers=AUTH)
        assert status == 413
        assert "64 KiB" in body["error"]

        async def chunks() -> AsyncIterator[bytes]:
            yield big

        status, body = await call(api, "POST", "/api/v1/incidents", data=chunks(), headers=AUTH)
        assert status == 413
        assert "64 KiB" in body["error"]


async def open_p1_with(api: Api, headers: dict[str, str]) -> tuple[int, Any]:
    return await call(api, "POST", "/api/v1/incidents", json={"id": "P1-gw", "title": "t"}, headers=headers)


NO_UNIT = "window: expected a duration such as 90s, 15m or 2h, got a number"


class TestIncidentRoutes:
    async def test_open_passes_parsed_fields(self, api: Api, control: FakeControl) -> None:
        """Opening passes id, title, scope, the window in seconds, and who asked."""
        headers = {**AUTH, "X-Watcher-User": "alice@bastion"}
        status, body = await call(
            api,
            "POST",
            "/api/v1/incidents",
            json={"id": "P1-gw", "title": "drops", "scope": ["gw/*"], "window": "15m"},
            headers=headers,
        )
        assert status == 201
        assert (body["id"], body["title"], body["scope"], body["window"]) == (
            "P1-gw",
            "drops",
            ["gw/*"],
            900.0,
        )
        assert control.calls == [("open", "P1-gw", "alice@bastion")]

    async def test_window_in_seconds_and_default(self, api: Api, control: FakeControl) -> None:
        """A window arrives in seconds; no window leaves the daemon's default (None); by defaults to api."""
        await open_p1(api, window="10m")
        assert control.records["P1-gw"]["window"] == 600.0
        await call(api, "POST", "/api/v1/incidents", json={"id": "P1-b", "title": "t"}, headers=AUTH)
        assert control.records["P1-b"]["window"] is None
        assert control.calls[-1] == ("open", "P1-b", "api")

    async def test_open_twice_is_409(self, api: Api) -> None:
        """Opening an existing id is 409 with the daemon's sentence."""
        await open_p1(api)
        assert await open_p1(api) == (409, {"error": "incident P1-gw is already open"})

    async def test_unknown_incident_is_404(self, api: Api) -> None:
        """Mitigating, closing or reading an unknown incident is 404 naming it."""
        expected = (404, {"error": "no incident named P1-none"})
        path = "/api/v1/incidents/P1-none"
        assert await call(api, "POST", path + "/mitigations", json={"action": "x"}, headers=AUTH) == expected
        assert await call(api, "POST", path + "/close", headers=AUTH) == expected
        assert await call(api, "GET", path + "/timeline") == expected

    async def test_mitigate_closed_is_400(self, api: Api) -> None:
        """IncidentClosed from the daemon (mitigating a closed incident) is 400 with its sentence."""
        await open_p1(api)
        assert (
            await call(api, "POST", "/api/v1/incidents/P1-gw/close", json={"reason": "dup"}, headers=AUTH)
        )[0] == 200
        status, body = await call(
            api, "POST", "/api/v1/incidents/P1-gw/mitigations", json={"action": "restart"}, headers=AUTH
        )
        assert (status, body) == (400, {"error": "incident P1-gw is closed; open a new one"})

    async def test_round_trip(self, api: Api, control: FakeControl) -> None:
        """Open, mitigate, close, then the timeline shows each step with its author."""
        headers = {**AUTH, "X-Watcher-User": "bob@gw"}
        await open_p1(api)
        await call(
            api, "POST", "/api/v1/incidents/P1-gw/mitigations", json={"action": "restart gw"}, headers=headers
        )
        await call(api, "POST", "/api/v1/incidents/P1-gw/close", headers=headers)
        status, body = await call(api, "GET", "/api/v1/incidents/P1-gw/timeline")
        assert status == 200
        assert body["mitigations"] == [{"at": None, "action": "restart gw", "by": "bob@gw"}]
        assert control.calls == [
            ("open", "P1-gw", "api"),
            ("mitigate", "P1-gw", "restart gw", "bob@gw"),
            ("close", "P1-gw", "", "bob@gw"),
        ]

    @pytest.mark.parametrize(
        "body,needle",
        [
            ({"id": "P1 gw", "title": "t"}, "id must be"),
            ({"id": "-P1", "title": "t"}, "id must be"),
            ({"id": "P1-" + "x" * 62, "title": "t"}, "id must be"),
            ({"id": "P1-gw\n", "title": "t"}, "id must be"),
            ({"id": "P1-gw", "title": " "}, "title must be"),
            ({"id": "P1-gw"}, "missing field 'title'"),
            ({"id": "P1-gw", "title": "t", "owner": "me"}, "unknown field 'owner'"),
            ({"id": "P1-gw", "title": "t", "window": "soon"}, "window: expected a duration"),
            ({"id": "P1-gw", "title": "t", "window": "0s"}, "window: must be between 1s and 24h, got 0s"),
            ({"id": "P1-gw", "title": "t", "window": "25h"}, "window: must be between 1s and 24h"),
            ({"id": "P1-gw", "title": "t", "window": 600}, "window: 600 has no unit: write 600s or 600m"),
            ({"id": "P1-gw", "title": "t", "window": "1" + "0" * 400 + "s"}, "window: expected a duration"),
            ({"id": "P1-gw", "title": "t", "window": 10**400}, "window: expected a duration"),
            ({"id": "P1-gw", "title": "t", "window": True}, "window: expected a duration"),
            ({"id": "P1-gw", "title": "t", "scope": ["*"] * 101}, "scope takes at most 100 globs"),
            ({"id": "P1-gw", "title": "t", "scope": "gw/*"}, "scope must be a list"),
            ([1, 2], "must be a JSON object"),
        ],
    )
    async def test_bad_input_is_400(self, api: Api, control: FakeControl, body: Any, needle: str) -> None:
        """Malformed fields are 400 with a sentence naming the field; the daemon is not called."""
        status, answer = await call(api, "POST", "/api/v1/incidents", json=body, headers=AUTH)
        assert status == 400
        assert needle in answer["error"]
        assert control.calls == []

    async def test_not_json_is_400(self, api: Api) -> None:
        """A body that is not JSON is 400."""
        status, body = await call(api, "POST", "/api/v1/incidents", data=b"id=P1", headers=AUTH)
        assert (status, body) == (400, {"error": "request body is not valid JSON"})

    @pytest.mark.parametrize(
        ("raw", "needle"),
        [
            (
                b'{"id": "P1-gw", "title": "t", "window": Infinity}',
                NO_UNIT,
            ),
            (
                b'{"id": "P1-gw", "title": "t", "window": NaN}',
                NO_UNIT,
            ),
            (
                b'{"id": "P1-gw", "title": "t", "window": -Infinity}',
                NO_UNIT,
            ),
            (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
        ],
    )
    async def test_infinity_nan_and_deep_nesting_are_400_not_500(
        self, api: Api, control: FakeControl, raw: bytes, needle: str
    ) -> None:
        """Issue case 1: `"window": NaN` was HTTP 500, Infinity crash-looped the daemon."""
        status, answer = await call(api, "POST", "/api/v1/incidents", data=raw, headers=AUTH)
        assert status == 400 and needle in answer["error"], answer
        assert control.calls == []

    @pytest.mark.parametrize("since", ["Infinity", "NaN", "1e400", "-1", "253402300800"])
    async def test_snapshot_times_must_be_finite_and_representable(self, api: Api, since: str) -> None:
        """A snapshot's since/until are Unix seconds a timestamp can show, or the request is 400."""
        raw = b'{"reason": "r", "since": ' + since.encode() + b"}"
        status, answer = await call(api, "POST", "/api/v1/snapshots", data=raw, headers=AUTH)
        assert status == 400 and "since must be Unix seconds" in answer["error"], answer

    async def test_bad_path_id_is_400(self, api: Api) -> None:
        """An invalid id in the path is refused before reaching the daemon."""
        status, body = await call(api, "GET", "/api/v1/incidents/.hidden/timeline")
        assert status == 400
        assert "incident id must be" in body["error"]

    async def test_bad_user_header_is_400(self, api: Api) -> None:
        """An X-Watcher-User that is too long is refused rather than written to the timeline."""
        status, body = await open_p1_with(api, {**AUTH, "X-Watcher-User": "u" * 200})
        assert status == 400
        assert "X-Watcher-User" in body["error"]


class TestLifecycle:
    async def test_port_taken(self, control: FakeControl) -> None:
        """Starting on a port in use raises DaemonError naming the address."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            listen = f"127.0.0.1:{taken.getsockname()[1]}"
            server = ApiServer(
                control,
                Metrics(CollectorRegistry(), sources=[], rules=[]),
                listen=listen,
                token=TOKEN,
                health=lambda: (True, ""),
            )
            with pytest.raises(DaemonError, match=f"^cannot listen on {listen}: address already in use$"):
                await server.start()

    async def test_stop_releases_the_port(self, control: FakeControl) -> None:
        """After stop() the same port can be bound again."""
        async with running(control) as server:
            port = server.port
        async with running(control, listen=f"127.0.0.1:{port}") as again:
            assert again.port == port


class TestToken:
    def test_created_private(self, tmp_path: Path) -> None:
        """The first start creates state_dir/api-token, mode 0600, with a long random token."""
        token = load_or_create_token(tmp_path / "state")
        path = tmp_path / "state" / "api-token"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text().strip() == token
        assert len(token) >= 40
        assert [p.name for p in path.parent.iterdir()] == ["api-token"]

    def test_reused(self, tmp_path: Path) -> None:
        """Later starts and the CLI get the same token."""
        token = load_or_create_token(tmp_path)
        assert load_or_create_token(tmp_path) == token
        assert read_token(tmp_path) == token

    def test_racing_creators_agree(self, tmp_path: Path) -> None:
        """Concurrent first starts end with one token that all of them use."""
        with ThreadPoolExecutor(8) as pool:
            tokens = set(pool.map(lambda _: load_or_create_token(tmp_path), range(16)))
        assert tokens == {read_token(tmp_path)}

    def test_loosened_mode_is_tightened(self, tmp_path: Path) -> None:
        """A token file readable by others is set back to 0600 by the daemon."""
        load_or_create_token(tmp_path)
        (tmp_path / "api-token").chmod(0o644)
        load_or_create_token(tmp_path)
        assert stat.S_IMODE((tmp_path / "api-token").stat().st_mode) == 0o600

    def test_missing(self, tmp_path: Path) -> None:
        """The CLI explains a missing token."""
        with pytest.raises(
            DaemonError, match=r"^no API token in .*: has the daemon ever started with this state_dir\?$"
        ):
            read_token(tmp_path)

    def test_empty(self, tmp_path: Path) -> None:
        """An empty token file is an error that says how to recover."""
        (tmp_path / "api-token").write_text("\n")
        with pytest.raises(DaemonError, match="does not hold a token: delete it"):
            load_or_create_token(tmp_path)

    def test_unreadable(self, tmp_path: Path) -> None:
        """A user who cannot read the token is told to run as the watcher's user or with sudo."""
        load_or_create_token(tmp_path)
        expected = (
            f"cannot read {tmp_path}/api-token: permission denied (run as the watcher's user or with sudo)"
        )
        assert _read_token_as_other_user(tmp_path) == expected


def _read_token_as_other_user(state_dir: Path) -> str:
    """read_token's error for a user other than the file's owner (root reads everything)."""
    if os.geteuid() != 0:
        (state_dir / "api-token").chmod(0)
        with pytest.raises(DaemonError) as info:
            read_token(state_dir)
        return str(info.value)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child drops to nobody and reports what read_token said
        try:
            os.setgid(65534)
            os.setuid(65534)
            read_token(state_dir)
            os.write(w, b"read it")
        except DaemonError as exc:
            os.write(w, str(exc).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        message = fh.read().decode()
    os.waitpid(pid, 0)
    return message


class TestRedactedReads:
    """Issue case 6: log text (and titles, actions) reached local readers raw through the read API."""

    SECRET_TITLE = "login failed password=hunter22 for https://hooks.example.test/T/B/hooksecret"

    async def test_reads_are_redacted_like_announcements(self, control: FakeControl) -> None:
        """Status, timeline and command answers hide credentials and the configured webhook URLs."""
        secrets = ("https://hooks.example.test/T/B/hooksecret",)
        async with running(control, secrets=secrets) as server, aiohttp.ClientSession() as http:
            api = (http, f"http://127.0.0.1:{server.port}")
            opened = await open_p1(api, title=self.SECRET_TITLE)
            status = await call(api, "GET", "/api/v1/status")
            timeline = await call(api, "GET", "/api/v1/incidents/P1-gw/timeline")
        for code, doc in (opened, status, timeline):
            assert code in (200, 201)
            assert "hunter22" not in json.dumps(doc) and "hooksecret" not in json.dumps(doc)
        assert timeline[1]["title"] == "login failed password=[REDACTED] for [REDACTED]"

    async def test_unredacted_needs_the_token(self, api: Api) -> None:
        """`?redact=false` is 401 without the token and the text as it is with it."""
        await open_p1(api, title=self.SECRET_TITLE)
        status, body = await call(api, "GET", "/api/v1/status?redact=false")
        assert status == 401 and "unredacted log text needs it" in body["error"]
        status, body = await call(api, "GET", "/api/v1/status?redact=false", headers=AUTH)
        assert status == 200 and body["incidents"][0]["title"] == self.SECRET_TITLE

    async def test_redact_takes_true_or_false(self, api: Api) -> None:
        """Anything else is a 400, not a silent default."""
        status, body = await call(api, "GET", "/api/v1/status?redact=no")
        assert (status, body) == (400, {"error": "redact must be true or false, not 'no'"})
