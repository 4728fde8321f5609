"""The daemon on a real Docker engine: a stopped service proves nothing (DESIGN §2.1).

Containers print a line every 0.2 s (so records are never what is missing); what each
test changes is whether they run: stopped and started, paused, crash-looping,
recreated, or never there at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.errors import NotFound
from docker.models.containers import Container

from tests.daemon.harness import AsyncClient, config_file, incident, running
from tests.dockerd import IMAGE, Dockerd
from tests.support import wait_until
from watcher import config
from watcher.schema import SourceDoc
from watcher.sources.docker.lane import time_ns
from watcher.times import parse_time

pytestmark = pytest.mark.docker

WINDOW = 3.0
TICK = "trap 'exit 0' TERM; while true; do echo tick; sleep 0.2; done"


def settings(tmp: Path, engine: Dockerd, selector: str) -> config.Settings:
    body = f"""
[[sources]]
name = "cloud"
kind = "docker"
docker_host = "{engine.host}"
{selector}
[[rules]]
name = "boom"
regex = 'ERROR'
"""
    return config.load(config_file(tmp, body, window=WINDOW))


@pytest.fixture
def dc(docker_engine: Dockerd) -> Iterator[docker.DockerClient]:
    client = docker_engine.client()
    yield client
    client.close()


@pytest.fixture
def made(dc: docker.DockerClient) -> Iterator[list[Container]]:
    """Containers a test started: removed afterwards whatever happened."""
    out: list[Container] = []
    yield out
    for c in out:
        with contextlib.suppress(NotFound):
            c.remove(force=True)


def started_at(c: Container) -> float:
    c.reload()
    return time_ns(c.attrs["State"]["StartedAt"]) / 1e9


async def source(client: AsyncClient, name: str) -> SourceDoc:
    return next(s for s in (await client.status())["sources"] if s["name"] == name)


async def running_and_read(client: AsyncClient, sub: str) -> None:
    async def ok() -> bool:
        names = [s["name"] for s in (await client.status())["sources"]]
        return sub in names and (await source(client, sub)).get("running") is True

    await wait_until(ok, what=f"{sub} running")


async def reason_is(client: AsyncClient, text: str, incident_id: str = "P1-dock") -> None:
    async def said() -> bool:
        return any(text in r for r in (await incident(client, incident_id))["cannot_resolve"])

    await wait_until(said, what=f"cannot resolve: {text}")


async def resolved_at(client: AsyncClient) -> float:
    async def done() -> bool:
        return bool((await incident(client, "P1-dock"))["state"] == "resolved")

    await wait_until(done, within=30, what="resolved")
    return parse_time((await incident(client, "P1-dock"))["resolved_at"])


async def test_a_selector_matching_nothing_cannot_resolve(docker_engine: Dockerd, tmp_path: Path) -> None:
    """No container matches: an incident on cloud/* has no source, one on cloud has no container."""
    s = settings(tmp_path, docker_engine, f'containers = ["nothing-{uuid.uuid4().hex[:8]}"]')
    async with running(s), AsyncClient(s) as client:
        for incident_id, scope in (("P1-subs", "cloud/*"), ("P1-all", "*")):
            await client.open_incident(incident_id, "t", [scope], None)
            await client.mitigate(incident_id, "rollback")
        await reason_is(client, "no source matches the scope cloud/*", "P1-subs")
        await reason_is(client, "cloud: no container matches the selection", "P1-all")
        past = time.time() + 2 * WINDOW
        await wait_until(lambda: time.time() > past, what="two windows")
        for incident_id in ("P1-subs", "P1-all"):
            assert (await incident(client, incident_id))["state"] != "resolved"


async def test_stop_then_start_resolves_a_window_after_the_start(
    docker_engine: Dockerd, dc: docker.DockerClient, made: list[Container], tmp_path: Path
) -> None:
    """docker stop, then docker start, during the window: resolved at start + window, not before;
    the stopped span is a gap on the timeline."""
    name = f"t{uuid.uuid4().hex[:10]}"
    s = settings(tmp_path, docker_engine, f'containers = ["{name}"]')
    async with running(s), AsyncClient(s) as client:
        made.append(c := dc.containers.run(IMAGE, ["sh", "-c", TICK], name=name, detach=True))
        await client.open_incident("P1-dock", "api", ["cloud/*"], None)
        await running_and_read(client, f"cloud/{name}")
        await client.mitigate("P1-dock", "rollback")
        await asyncio.to_thread(c.stop, timeout=1)
        await reason_is(client, f"cloud/{name}: no running container (exited) since")
        await asyncio.sleep(1.0)  # stopped for a while inside the window
        await asyncio.to_thread(c.start)
        start = started_at(c)
        at = await resolved_at(client)
        assert start + WINDOW <= at + 0.01 and at < start + WINDOW + 1.0
        events = (await client.timeline("P1-dock"))["events"]
        kinds = [e["kind"] for e in events]
        assert "not_running" in kinds and "gap" in kinds


async def test_paused_container_cannot_resolve_until_unpaused(
    docker_engine: Dockerd, dc: docker.DockerClient, made: list[Container], tmp_path: Path
) -> None:
    """docker pause: not running, whatever its log stream says; unpaused: a window after."""
    name = f"t{uuid.uuid4().hex[:10]}"
    s = settings(tmp_path, docker_engine, f'containers = ["{name}"]')
    async with running(s), AsyncClient(s) as client:
        made.append(c := dc.containers.run(IMAGE, ["sh", "-c", TICK], name=name, detach=True))
        await client.open_incident("P1-dock", "api", ["cloud/*"], None)
        await running_and_read(client, f"cloud/{name}")
        await client.mitigate("P1-dock", "rollback")
        await asyncio.to_thread(c.pause)
        await reason_is(client, "no running container (paused)")
        past = time.time() + WINDOW + 0.5
        await wait_until(lambda: time.time() > past, what="a window while paused")
        assert (await incident(client, "P1-dock"))["state"] != "resolved"
        unpaused = time.time()
        await asyncio.to_thread(c.unpause)
        assert await resolved_at(client) >= unpaused + WINDOW - 0.05


async def test_a_crash_looping_container_never_resolves(
    docker_engine: Dockerd, dc: docker.DockerClient, made: list[Container], tmp_path: Path
) -> None:
    """A container that dies and is restarted over and over writes no error, and proves nothing."""
    name = f"t{uuid.uuid4().hex[:10]}"
    s = settings(tmp_path, docker_engine, f'containers = ["{name}"]')
    async with running(s), AsyncClient(s) as client:
        await client.open_incident("P1-dock", "api", ["cloud/*"], None)
        script = "echo starting; sleep 0.3; exit 1"
        made.append(
            c := dc.containers.run(
                IMAGE, ["sh", "-c", script], name=name, detach=True, restart_policy={"Name": "always"}
            )
        )
        await running_and_read(client, f"cloud/{name}")
        await client.mitigate("P1-dock", "rollback")
        past = time.time() + 2 * WINDOW

        def restarted() -> bool:
            c.reload()
            return int(c.attrs["RestartCount"]) >= 3 and time.time() > past

        await wait_until(restarted, within=60, what="three restarts and two windows")
        inc = await incident(client, "P1-dock")
        assert inc["state"] != "resolved" and inc["gaps"] >= 2


async def test_a_compose_recreate_is_a_short_gap_and_still_resolves(
    docker_engine: Dockerd, dc: docker.DockerClient, made: list[Container], tmp_path: Path
) -> None:
    """A rollback's recreate (stop, rm, run the same service): a gap, then resolved a window
    after the new container started, under the same sub-source."""
    project = f"p{uuid.uuid4().hex[:8]}"
    labels = {"com.docker.compose.project": project, "com.docker.compose.service": "api"}
    s = settings(tmp_path, docker_engine, f'compose_project = "{project}"')
    async with running(s), AsyncClient(s) as client:
        old = dc.containers.run(
            IMAGE, ["sh", "-c", TICK], name=f"{project}-api-1", labels=labels, detach=True
        )
        made.append(old)
        await client.open_incident("P1-dock", "api", ["cloud/*"], None)
        await running_and_read(client, "cloud/api")
        await client.mitigate("P1-dock", "rollback to v1")
        await asyncio.to_thread(old.stop, timeout=1)
        await asyncio.to_thread(old.remove)
        new = dc.containers.run(
            IMAGE, ["sh", "-c", TICK], name=f"{project}-api-2", labels=labels, detach=True
        )
        made.append(new)
        start = started_at(new)
        at = await resolved_at(client)
        assert start + WINDOW <= at + 0.01 and at < start + WINDOW + 1.0
        kinds = [e["kind"] for e in (await client.timeline("P1-dock"))["events"]]
        assert "recreated" in kinds and "gap" in kinds
