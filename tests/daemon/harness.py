"""The daemon in tests: a config file, the daemon in-process or as a process, and what to ask it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests.support import free_port
from watcher import config
from watcher.cli.client import Client
from watcher.config.endpoint import Endpoint
from watcher.daemon.daemon import Daemon
from watcher.schema import (
    IncidentDoc,
    IncidentListDoc,
    PostmortemDoc,
    SnapshotDoc,
    StatusDoc,
    StatuspageDoc,
    TimelineDoc,
)
from watcher.times import format_time

WINDOW = 3.0


def config_file(
    tmp: Path, body: str, *, window: float, port: int | None = None, blind_after: str | None = "2s"
) -> Path:
    """tmp/watcher.toml: state under tmp, the API on a loopback port, a short window, then `body`."""
    blind = f'blind_after = "{blind_after}"' if blind_after else ""
    path = tmp / "watcher.toml"
    path.write_text(
        f"""
state_dir = "{tmp / "state"}"
[http]
listen = "127.0.0.1:{port or free_port()}"
[resolution]
window = "{window}s"
{blind}
{body}"""
    )
    return path


def edge_source(log: Path, *, quiet_ok: bool = False) -> str:
    """The config of one file source `edge` at `log`, and one rule: JSON `level` = error.
    `quiet_ok`: the log may stay silent through a window and still prove it (an error-only log)."""
    return f"""
[[sources]]
name = "edge"
kind = "file"
path = "{log}"
quiet_ok = {str(quiet_ok).lower()}
[[rules]]
name = "level"
field = "level"
values = ["error"]
"""


def endpoint_of(settings: config.Settings) -> Endpoint:
    """Where the CLI would look for a daemon running with `settings`."""
    return Endpoint(None, settings.http.listen, settings.state_dir, "from the test's settings")


class AsyncClient:
    """The CLI's client for a test whose daemon runs in the test's own event loop: each call in a
    thread, so the loop keeps serving it."""

    def __init__(
        self, where: config.Settings | Endpoint, *, user: str | None = None, timeout: float = 5.0
    ) -> None:
        endpoint = where if isinstance(where, Endpoint) else endpoint_of(where)
        self.sync = Client(endpoint, user=user, timeout=timeout)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def status(self) -> StatusDoc:
        return await asyncio.to_thread(self.sync.status)

    async def open_incident(
        self, incident: str, title: str, scope: list[str], window: str | None, orgs: list[str] | None = None
    ) -> IncidentDoc:
        return await asyncio.to_thread(self.sync.open_incident, incident, title, scope, window, orgs)

    async def mitigate(self, incident: str, action: str, at: str | None = None) -> IncidentDoc:
        return await asyncio.to_thread(self.sync.mitigate, incident, action, at)

    async def note(self, incident: str, text: str, *, hypothesis: bool = False) -> IncidentDoc:
        return await asyncio.to_thread(lambda: self.sync.note(incident, text, hypothesis=hypothesis))

    async def reopen(self, incident: str) -> IncidentDoc:
        return await asyncio.to_thread(self.sync.reopen, incident)

    async def incidents(self, include_closed: bool = False) -> IncidentListDoc:
        return await asyncio.to_thread(self.sync.incidents, include_closed)

    async def change(
        self, incident: str, *, scope: list[str] | None = None, window: str | None = None
    ) -> IncidentDoc:
        return await asyncio.to_thread(lambda: self.sync.change(incident, scope=scope, window=window))

    async def statuspage(self, incident: str) -> StatuspageDoc:
        return await asyncio.to_thread(self.sync.statuspage, incident)

    async def postmortem(self, incident: str) -> PostmortemDoc:
        return await asyncio.to_thread(self.sync.postmortem, incident)

    async def close(self, incident: str, reason: str) -> IncidentDoc:
        return await asyncio.to_thread(self.sync.close, incident, reason)

    async def timeline(self, incident: str) -> TimelineDoc:
        return await asyncio.to_thread(self.sync.timeline, incident)

    async def snapshot(self, request: dict[str, object]) -> SnapshotDoc:
        return await asyncio.to_thread(self.sync.snapshot, request)


def write_config(tmp: Path, log: Path, port: int, window: float = WINDOW) -> Path:
    return config_file(tmp, edge_source(log), window=window, port=port)


def stamp(at: float) -> str:
    return format_time(at) or ""


def append(log: Path, *lines: str) -> None:
    with log.open("a") as fh:
        fh.write("".join(line + "\n" for line in lines))


async def incident(client: AsyncClient, incident_id: str = "P1-test") -> dict[str, Any]:
    doc = await client.status()
    incidents: list[dict[str, Any]] = doc["incidents"]  # type: ignore[assignment]
    return next(i for i in incidents if i["id"] == incident_id)


@asynccontextmanager
async def running(settings: config.Settings) -> AsyncIterator[Daemon]:
    daemon = Daemon(settings)
    await daemon.startup()
    task = asyncio.create_task(daemon.run())
    await daemon.ready.wait()
    try:
        yield daemon
    finally:
        daemon.should_exit.set()
        await task
        await daemon.shutdown()


@contextmanager
def process(cfg: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`watcher run` as a user starts it: the installed entry point in a subprocess."""
    exe = Path(sys.executable).with_name("watcher")
    proc = subprocess.Popen([str(exe), "run", "--config", str(cfg)], stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


async def healthy(port: int) -> bool:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as resp:
        return resp.status == 200
