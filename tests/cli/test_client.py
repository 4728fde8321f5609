from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.daemon.fake_api import TOKEN, FakeControl, running
from tests.daemon.harness import AsyncClient
from watcher.config.endpoint import TOKEN_FILE, Endpoint
from watcher.daemon.api import ApiServer
from watcher.errors import DaemonError, InputError
from watcher.names import default_user


def settings_for(listen: str, state_dir: Path) -> Endpoint:
    return Endpoint(Path("watcher.toml"), listen, state_dir, "from the config")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    (tmp_path / TOKEN_FILE).write_text(TOKEN + "\n")
    return tmp_path


@pytest.fixture
def control() -> FakeControl:
    return FakeControl()


@pytest.fixture
async def server(control: FakeControl) -> AsyncIterator[ApiServer]:
    async with running(control) as server:
        yield server


@pytest.fixture
def client(server: ApiServer, state_dir: Path) -> AsyncClient:
    return AsyncClient(settings_for(f"127.0.0.1:{server.port}", state_dir), user="carol@laptop")


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A port bound but not listening: connecting to it is refused, and nobody else can take it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


class TestRoundTrip:
    async def test_incident_lifecycle(self, client: AsyncClient, control: FakeControl) -> None:
        """open, mitigate, close, timeline and status reach the daemon with the caller's name."""
        opened = await client.open_incident("P1-gw", "gateways drop streams", ["gw/*"], "15m")
        assert (opened["id"], opened["title"], opened["scope"], opened["window"]) == (
            "P1-gw",
            "gateways drop streams",
            ["gw/*"],
            900.0,
        )
        assert (await client.mitigate("P1-gw", "restarted gw-berlin-01"))["state"] == "investigating"
        assert (await client.close("P1-gw", "verified"))["state"] == "closed"
        timeline = await client.timeline("P1-gw")
        assert timeline["mitigations"] == [
            {"at": None, "action": "restarted gw-berlin-01", "by": "carol@laptop"}
        ]
        assert control.calls == [
            ("open", "P1-gw", "carol@laptop"),
            ("mitigate", "P1-gw", "restarted gw-berlin-01", "carol@laptop"),
            ("close", "P1-gw", "verified", "carol@laptop"),
        ]
        assert [i["id"] for i in (await client.status())["incidents"]] == ["P1-gw"]

    async def test_default_window(self, client: AsyncClient, control: FakeControl) -> None:
        """Without --window the daemon's default applies (None is sent as no field)."""
        await client.open_incident("P1-gw", "t", [], None)
        assert control.records["P1-gw"]["window"] is None

    async def test_wildcard_listen_connects_to_loopback(self, server: ApiServer, state_dir: Path) -> None:
        """A daemon listening on 0.0.0.0 is reached on 127.0.0.1."""
        client = AsyncClient(settings_for(f"0.0.0.0:{server.port}", state_dir))
        assert (await client.status())["incidents"] == []

    def test_default_user_is_user_at_host(self) -> None:
        """Without --user the client names itself user@host."""
        user, _, host = default_user().partition("@")
        assert user
        assert host == socket.gethostname()


class TestErrors:
    async def test_daemon_not_running(self, refusing_port: int, state_dir: Path) -> None:
        """A refused connection says the daemon is not running and how to start it."""
        listen = f"127.0.0.1:{refusing_port}"
        with pytest.raises(DaemonError) as info:
            await AsyncClient(settings_for(listen, state_dir)).status()
        assert str(info.value) == (
            f"no watcher daemon answers on {listen}: tried config watcher.toml, state_dir {state_dir}, "
            f"address {listen} (from the config); start it (`make run`, or `systemctl start "
            "novavms-watcher`) or point the CLI at it (--config FILE, WATCHER_CONFIG=FILE, or "
            "WATCHER_HTTP__LISTEN=HOST:PORT and WATCHER_STATE_DIR=DIR)"
        )

    async def test_daemon_not_answering(self, state_dir: Path) -> None:
        """A daemon that accepts but never answers is reported after the timeout."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()  # the kernel completes the handshake; nobody ever reads the request
            listen = f"127.0.0.1:{sock.getsockname()[1]}"
            with pytest.raises(
                DaemonError, match=f"^the watcher daemon on {listen} did not answer within 0.2s"
            ):
                await AsyncClient(settings_for(listen, state_dir), timeout=0.2).status()

    async def test_server_sentence_is_the_error(self, client: AsyncClient) -> None:
        """The daemon's error sentence becomes the DaemonError message, for 409 and 404 alike."""
        await client.open_incident("P1-gw", "t", [], None)
        with pytest.raises(DaemonError, match=r"^incident P1-gw is already open$"):
            await client.open_incident("P1-gw", "t", [], None)
        with pytest.raises(DaemonError, match=r"^no incident named P1-none$"):
            await client.timeline("P1-none")

    async def test_bad_window_sentence(self, client: AsyncClient) -> None:
        """The server's validation message reaches the user unchanged."""
        with pytest.raises(DaemonError, match=r"^window: expected a duration such as 90s"):
            await client.open_incident("P1-gw", "t", [], "soon")

    async def test_wrong_token(self, server: ApiServer, tmp_path: Path) -> None:
        """A token the daemon does not accept points at the state_dir the CLI used."""
        (tmp_path / TOKEN_FILE).write_text("not-the-token\n")
        client = AsyncClient(settings_for(f"127.0.0.1:{server.port}", tmp_path))
        with pytest.raises(DaemonError, match=r"refused the API token in .*api-token: is it that daemon"):
            await client.mitigate("P1-gw", "x")

    async def test_reads_need_no_token_file(self, server: ApiServer, tmp_path: Path) -> None:
        """status works without the token file; a POST then explains that it is missing."""
        client = AsyncClient(settings_for(f"127.0.0.1:{server.port}", tmp_path))
        assert (await client.status())["incidents"] == []
        with pytest.raises(DaemonError, match=r"^no API token in "):
            await client.close("P1-gw", "")

    async def test_invalid_id_is_refused_locally(self, client: AsyncClient, control: FakeControl) -> None:
        """An id that would change the URL is refused before any request."""
        with pytest.raises(InputError, match=r"incident id must be"):
            await client.mitigate("../status", "x")
        assert control.calls == []

    async def test_another_program_on_the_port(self, state_dir: Path) -> None:
        """A non-watcher HTTP server answering on the port is named as such."""

        async def html(request: web.Request) -> web.Response:
            return web.Response(status=404, text="<html>nope</html>", content_type="text/html")

        app = web.Application()
        app.router.add_get("/api/v1/status", html)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            listen = f"127.0.0.1:{site.port}"
            with pytest.raises(DaemonError, match=r"^unexpected answer from .*: HTTP 404 .*another program"):
                await AsyncClient(settings_for(listen, state_dir)).status()
        finally:
            await runner.cleanup()
