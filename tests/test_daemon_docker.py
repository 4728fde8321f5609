"""The daemon with a docker source on a real engine: sub-sources, recreate notes, auto-snapshots."""

from __future__ import annotations

import asyncio
import contextlib
import tarfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from docker.errors import NotFound
from prometheus_client import CollectorRegistry

from tests.conftest import free_port, wait_until
from tests.dockerd import IMAGE, Dockerd
from watcher import checks, config
from watcher.daemon import Daemon

pytestmark = pytest.mark.docker


def settings(tmp: Path, docker_engine: Dockerd | None, name: str, host: str | None = None) -> config.Settings:
    path = tmp / "watcher.toml"
    path.write_text(
        f"""
state_dir = "{tmp / "state"}"
[http]
listen = "127.0.0.1:{free_port()}"
[resolution]
window = "3s"
blind_after = "2s"
[[sources]]
name = "cloud"
kind = "docker"
docker_host = "{host or (docker_engine.host if docker_engine else "")}"
containers = ["{name}"]
[[rules]]
name = "boom"
regex = 'ERROR'
"""
    )
    return config.load(path)


@asynccontextmanager
async def running(s: config.Settings) -> AsyncIterator[Daemon]:
    daemon = Daemon(s, registry=CollectorRegistry())
    await daemon.startup()
    task = asyncio.create_task(daemon.run())
    await daemon.ready.wait()
    try:
        yield daemon
    finally:
        daemon.should_exit.set()
        await task
        await daemon.shutdown()


async def test_container_lifecycle_on_the_timeline(docker_engine: Dockerd, tmp_path: Path) -> None:
    """A container's errors count under cloud/<name>; its stop is snapshotted, its recreate noted."""
    name = f"t{uuid.uuid4().hex[:10]}"
    sub = f"cloud/{name}"
    dc = docker_engine.client()
    made = []
    try:
        async with running(settings(tmp_path, docker_engine, name)) as daemon:
            await daemon.open_incident("P1-dock", "api down", ["cloud/*"], None, "test")
            script = "trap 'exit 0' TERM; echo ERROR boom; echo fine >&2; sleep 1000"
            made.append(dc.containers.run(IMAGE, ["sh", "-c", script], name=name, detach=True))

            async def errors_counted() -> bool:
                st = daemon.engine.status("P1-dock")
                return st.errors == 1 and sub in daemon.sources and daemon.sources[sub].stats().lines == 2

            await wait_until(errors_counted, what="the error counted under the sub-source")

            made[0].stop(timeout=5)

            async def snapshotted() -> bool:
                kinds = [row.kind for row in daemon.store.timeline("P1-dock")]
                return "snapshot" in kinds

            await wait_until(snapshotted, what="the auto-snapshot on the timeline")
            labels = {"trigger": "container_stop"}
            assert daemon.registry.get_sample_value("watcher_snapshots_total", labels) == 1.0
            (row,) = [r for r in daemon.store.timeline("P1-dock") if r.kind == "snapshot"]
            assert row.detail["source"] == sub
            archive = Path(str(row.detail["path"]))
            with tarfile.open(archive) as tar:
                logs = b"".join(
                    tar.extractfile(m).read()  # type: ignore[union-attr]
                    for m in tar.getmembers()
                    if m.isfile() and "log" in m.name
                )
            assert b"ERROR boom" in logs

            made[0].remove()
            made.append(
                dc.containers.run(IMAGE, ["sh", "-c", "echo again; sleep 1000"], name=name, detach=True)
            )

            async def noted() -> bool:
                return any(r.kind == "recreated" for r in daemon.store.timeline("P1-dock"))

            await wait_until(noted, what="the recreate note")
            (note,) = [r for r in daemon.store.timeline("P1-dock") if r.kind == "recreated"]
            assert note.detail["text"] == f"{sub} recreated: image {IMAGE} → {IMAGE}"
    finally:
        for c in made:
            with contextlib.suppress(NotFound):
                c.remove(force=True)
        dc.close()


class TestCheckConfig:
    def test_reachable_engine(self, docker_engine: Dockerd, tmp_path: Path) -> None:
        """check-config pings the engine; no matching container is only a warning."""
        report = checks.run(settings(tmp_path, docker_engine, "nothing-yet"))
        assert report.problems == []
        assert any("no container matches" in w for w in report.warnings)

    def test_unreachable_engine(self, tmp_path: Path) -> None:
        """An engine that does not answer is one problem naming the key."""
        s = settings(tmp_path, docker_engine=None, name="x", host=f"tcp://127.0.0.1:{free_port()}")
        (problem,) = checks.run(s).problems
        assert problem.startswith(
            "sources[0].docker_host: cannot reach the Docker engine at tcp://127.0.0.1:"
        )
