"""The daemon with a docker source on a real engine: sub-sources, recreate notes, auto-snapshots."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import tarfile
import time
import uuid
from pathlib import Path

import pytest
from docker.errors import NotFound
from docker.models.containers import Container

from tests.daemon.harness import AsyncClient, config_file, healthy, incident, process, running
from tests.dockerd import IMAGE, Dockerd, Reach
from tests.sshd import LinkCut, Sshd
from tests.support import free_port, wait_until
from watcher import config
from watcher.cli import checks
from watcher.details import RecreatedDetail, SnapshotDetail

pytestmark = pytest.mark.docker


def settings(
    tmp: Path,
    docker_engine: Dockerd | None,
    name: str,
    host: str | None = None,
    reach: Reach | None = None,
    **over: object,
) -> config.Settings:
    """A daemon with one docker source `cloud` selecting container `name`, one rule (ERROR)."""
    if docker_engine is None:
        fields: dict[str, object] = {"docker_host": host}
    else:
        fields = (reach or Reach()).fields(docker_engine, **over)
    keys = "\n".join(f"{key} = {json.dumps(value)}" for key, value in fields.items())
    body = f"""
[[sources]]
name = "cloud"
kind = "docker"
{keys}
containers = ["{name}"]
[[rules]]
name = "boom"
regex = 'ERROR'
"""
    return config.load(config_file(tmp, body, window=3.0))


async def test_container_lifecycle_on_the_timeline(
    docker_engine: Dockerd, reach: Reach, tmp_path: Path
) -> None:
    """A container's errors count under cloud/<name>; its stop is snapshotted, its recreate noted."""
    name = f"t{uuid.uuid4().hex[:10]}"
    sub = f"cloud/{name}"
    dc = docker_engine.client()
    made = []
    try:
        async with running(settings(tmp_path, docker_engine, name, reach=reach)) as daemon:
            await daemon.commands.open_incident("P1-dock", "api down", ["cloud/*"], None, "test")
            # stderr only: a stream other than the first must be counted on its own
            script = "trap 'exit 0' TERM; echo ERROR boom >&2; sleep 1000"
            made.append(dc.containers.run(IMAGE, ["sh", "-c", script], name=name, detach=True))

            async def errors_counted() -> bool:
                st = daemon.pipeline.engine.status("P1-dock")
                counted = daemon.registry.get_sample_value("watcher_source_lines_total", {"source": sub})
                return st.errors == 1 and counted == 1.0

            await wait_until(errors_counted, what="the error counted under the sub-source")
            last = daemon.pipeline.engine.status("P1-dock").last_error
            assert last is not None and (last.source, last.stream) == (sub, "stderr")

            made[0].stop(timeout=1)

            async def snapshotted() -> bool:
                kinds = [row.kind for row in daemon.store.timeline("P1-dock")]
                return "snapshot" in kinds

            await wait_until(snapshotted, what="the auto-snapshot on the timeline")
            labels = {"trigger": "container_stop"}
            assert daemon.registry.get_sample_value("watcher_snapshots_total", labels) == 1.0
            (row,) = [r for r in daemon.store.timeline("P1-dock") if r.kind == "snapshot"]
            assert isinstance(row.detail, SnapshotDetail) and row.detail.source == sub
            archive = Path(row.detail.path)
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
            text = f"{sub} recreated: image {IMAGE} → {IMAGE}"
            assert note.detail == RecreatedDetail(sub, text, IMAGE, IMAGE)
    finally:
        for c in made:
            with contextlib.suppress(NotFound):
                c.remove(force=True)
        dc.close()


class TestCheckConfig:
    def test_reachable_engine(self, docker_engine: Dockerd, reach: Reach, tmp_path: Path) -> None:
        """check-config pings the engine; no matching container is only a warning."""
        report = checks.run(settings(tmp_path, docker_engine, "nothing-yet", reach=reach))
        assert report.problems == []
        assert any("no container matches" in w for w in report.warnings)

    def test_unreachable_engine(self, tmp_path: Path) -> None:
        """An engine that does not answer is one problem naming the key."""
        s = settings(tmp_path, docker_engine=None, name="x", host=f"tcp://127.0.0.1:{free_port()}")
        (problem,) = checks.run(s).problems
        assert problem.startswith(
            "sources[0].docker_host: cannot reach the Docker engine at tcp://127.0.0.1:"
        )


async def test_sigkill_and_restart_reads_each_line_once(docker_engine: Dockerd, tmp_path: Path) -> None:
    """`watcher run` killed -9 after 500 numbered lines, 1,000 more written while down: 1,500 counted."""
    name = f"t{uuid.uuid4().hex[:10]}"
    s = settings(tmp_path, docker_engine, name)
    cfg = tmp_path / "watcher.toml"
    port = s.http.port
    count = 'i=$1; while [ $i -lt $2 ]; do i=$((i+1)); echo "ERROR n=$i"; done'
    script = f"c() {{ {count}; }}; c 0 500; until [ -e /tmp/go ]; do sleep 0.05; done; c 500 1500; sleep 1000"
    dc = docker_engine.client()
    c = None
    try:
        with process(cfg) as proc:
            await wait_until(lambda: healthy(port), what="daemon up")
            async with AsyncClient(s) as client:
                await client.open_incident("P1-kill", "t", ["cloud/*"], None)
                c = dc.containers.run(
                    IMAGE, ["sh", "-c", "trap 'exit 0' TERM; " + script], name=name, detach=True
                )

                async def first_half() -> bool:
                    return bool((await incident(client, "P1-kill"))["errors"] >= 500)

                await wait_until(first_half, what="500 lines")
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        c.exec_run(["touch", "/tmp/go"])
        await wait_until(lambda: _written(c, 1500), what="1,000 lines written while down")
        with process(cfg):
            await wait_until(lambda: healthy(port), what="daemon up again")
            async with AsyncClient(s) as client:

                async def all_read() -> bool:
                    inc = await incident(client, "P1-kill")
                    return bool(inc["last_error"] and inc["last_error"]["message"].endswith("n=1500"))

                await wait_until(all_read, what="line 1500")
                await asyncio.sleep(0.5)  # nothing more may come
                inc = await incident(client, "P1-kill")
        assert inc["errors"] == 1500  # every numbered line is an error: each counted once
    finally:
        if c is not None:
            c.remove(force=True)
        dc.close()


async def _written(c: Container, n: int) -> bool:
    return len(c.logs().splitlines()) >= n


@pytest.mark.slow
async def test_ssh_link_cut_blind_then_resolved_from_the_backlog(
    docker_engine: Dockerd, tmp_path: Path
) -> None:
    """The runbook's cloud host over ssh://, its link cut mid-streak (no FIN): `up` 0 within
    keepalive_interval, blind and never resolved while cut; back: each line read once, the
    watermark caught up within 5 s, resolved."""
    link = LinkCut()
    server = Sshd(address=link.remote, netns=link.netns)
    name = f"t{uuid.uuid4().hex[:10]}"
    sub = f"cloud/{name}"
    script = "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo \"ok $i\"; sleep 0.02; done"
    dc = docker_engine.client()
    c = dc.containers.run(IMAGE, ["sh", "-c", script], name=name, detach=True)
    try:
        server.start()
        s = settings(tmp_path, docker_engine, name, reach=Reach(server), keepalive_interval="2s")
        async with running(s) as daemon:
            engine, metric = daemon.pipeline.engine, daemon.registry.get_sample_value
            await daemon.commands.open_incident("P1-ssh", "cloud down", ["cloud/*"], None, "test")
            await wait_until(lambda: (metric("watcher_source_up", {"source": sub}) or 0) == 1, what="up")
            await daemon.commands.mitigate("P1-ssh", "docker compose up -d previous tag", "test")
            link.cut()
            cut = time.monotonic()
            await wait_until(lambda: metric("watcher_source_up", {"source": "cloud"}) == 0, what="down")
            noticed = time.monotonic() - cut
            await wait_until(lambda: engine.status("P1-ssh").state == "blind", what="blind")
            past_window = time.monotonic() + 3.5
            await wait_until(lambda: time.monotonic() > past_window, what="the window to pass")
            assert engine.status("P1-ssh").state == "blind"
            link.restore()
            back_at, back = time.time(), time.monotonic()

            def caught_up() -> bool:
                return (metric("watcher_source_watermark_timestamp_seconds", {"source": sub}) or 0) >= back_at

            await wait_until(caught_up, what="the watermark past the link's return")
            caught = time.monotonic() - back
            await wait_until(lambda: engine.status("P1-ssh").state == "resolved", what="resolved")
            c.stop(timeout=1)
            lines = len(c.logs().splitlines())
            await wait_until(
                lambda: metric("watcher_source_lines_total", {"source": sub}) == lines, what="all lines"
            )
            kinds = [row.kind for row in daemon.store.timeline("P1-ssh")]
    finally:
        c.remove(force=True)
        dc.close()
        server.stop()
        link.remove()
    assert noticed <= 2.0 + 1.0
    assert caught < 5.0
    assert {"source_down", "blind", "resolved"} <= set(kinds)
