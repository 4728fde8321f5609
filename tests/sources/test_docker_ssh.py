"""ssh:// Docker engines: a real sshd on loopback (or in a network namespace) in front of the
test dockerd. Link loss, trust, and why a remote socket cannot be used.

The rest of the docker source's behaviour over ssh:// is tests/sources/test_docker.py,
which runs once per way of reaching the engine (fixture `reach`).
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from docker.models.containers import Container

from tests.dockerd import IMAGE, Dockerd, Reach
from tests.sources.test_docker import TRAP, Reader, client, exactly, reading, source, unique
from tests.sshd import TEST_USER, LinkCut, Sshd
from tests.support import RULES, wait_until
from watcher import config
from watcher.config import DockerSourceConfig
from watcher.events import Chunk, SourceDown, Watermark
from watcher.evidence import Request, take_configured
from watcher.sources.docker.kind import DockerKind

pytestmark = pytest.mark.docker

KEEPALIVE = 2.0
TICKS = TRAP + 'i=0; while true; do i=$((i+1)); echo "n $i"; sleep 0.02; done'
"""50 lines a second, never pausing: what an outage's backlog and a busy service look like."""


def watermark(reader: Reader, name: str) -> float:
    return max((w.at for w in reader.of(Watermark, name)), default=float("-inf"))


def before_down(reader: Reader) -> list[Watermark]:
    """The watermarks yielded before the first SourceDown."""
    out: list[Watermark] = []
    for event in reader.events:
        if isinstance(event, SourceDown):
            break
        if isinstance(event, Watermark):
            out.append(event)
    return out


@pytest.fixture
def ticking(docker_engine: Dockerd) -> Iterator[Container]:
    with client(docker_engine) as dc:
        c = dc.containers.run(IMAGE, ["sh", "-c", TICKS], name=unique(), detach=True)
        try:
            yield c
        finally:
            c.remove(force=True)


@pytest.fixture
def root_only_socket() -> Iterator[Path]:
    """A listening socket, mode 0600 root, in a directory anyone may enter."""
    where = Path(tempfile.mkdtemp(prefix="wt-sock-", dir="/tmp"))
    where.chmod(0o755)
    path = where / "docker.sock"
    try:
        with socket.socket(socket.AF_UNIX) as listening:
            listening.bind(str(path))
            listening.listen()
            path.chmod(0o600)
            yield path
    finally:
        shutil.rmtree(where)


async def outage_then_back(
    reader: Reader, sub: str, lose: Callable[[], None], back: Callable[[], None], *, reason: str, quiet: float
) -> tuple[float, float]:
    """Lose the link, wait until it is noticed, keep it down `quiet` seconds more, bring it
    back, wait until `sub`'s watermark passes the return; (seconds to notice, to catch up)."""
    await wait_until(lambda: watermark(reader, sub) > time.time() - 2, what=f"{sub} caught up")
    lose()
    lost_at, lost = time.time(), time.monotonic()

    def down() -> bool:
        return {d.source for d in reader.of(SourceDown)} >= {"cloud", sub}

    await wait_until(down, within=30, what="the loss noticed")
    noticed = time.monotonic() - lost
    first = {d.source: d.reason for d in reversed(reader.of(SourceDown))}  # each one's first reason
    assert reason in first["cloud"] and reason in first[sub]
    # A dead link never made the engine look clean: no watermark past the moment it was lost.
    assert max(w.at for w in before_down(reader)) <= lost_at
    await wait_until(lambda: time.monotonic() - lost > noticed + quiet, within=quiet + 5, what="the outage")
    back()
    back_at, returned = time.time(), time.monotonic()
    await wait_until(
        lambda: watermark(reader, sub) >= back_at, within=30, what="the watermark past the return"
    )
    return noticed, time.monotonic() - returned


class TestLinkLoss:
    @pytest.mark.slow
    async def test_network_cut_noticed_then_every_line_once(
        self, docker_engine: Dockerd, ticking: Container
    ) -> None:
        """The far end falls silent (no FIN, no RST): down within keepalive_interval with the SSH
        reason, no watermark past the cut; back: the backlog read from `since` once, the
        watermark past the link's return in < 5 s."""
        link = LinkCut()
        server = Sshd(address=link.remote, netns=link.netns)
        try:
            server.start()
            sub = f"cloud/{ticking.name}"
            src = source(
                docker_engine, Reach(server), containers=[ticking.name], keepalive_interval=f"{KEEPALIVE}s"
            )
            async with reading(src) as reader:
                noticed, caught_up = await outage_then_back(
                    reader, sub, link.cut, link.restore, reason="SSH link lost", quiet=3.0
                )
                ticking.stop(timeout=1)
                await exactly(reader, sub, ticking)
        finally:
            server.stop()
            link.remove()
        assert noticed <= KEEPALIVE + 1.0
        assert caught_up < 5.0

    @pytest.mark.slow
    async def test_sshd_killed_and_restarted(self, docker_engine: Dockerd, ticking: Container) -> None:
        """sshd and its sessions SIGKILLed: down at once; back: every container's stream attached
        again, each line once (stdout and stderr), caught up in < 5 s."""
        server = Sshd()
        with client(docker_engine) as dc:
            slow = TRAP + 'i=0; while true; do i=$((i+1)); echo "e $i" >&2; sleep 0.3; done'
            other = dc.containers.run(IMAGE, ["sh", "-c", slow], name=unique(), detach=True)
        try:
            server.start()
            sub = f"cloud/{ticking.name}"
            names = [str(ticking.name), str(other.name)]
            src = source(docker_engine, Reach(server), containers=names, keepalive_interval=f"{KEEPALIVE}s")
            async with reading(src) as reader:
                noticed, caught_up = await outage_then_back(
                    reader, sub, server.kill, server.start, reason="SSH link lost", quiet=1.5
                )
                for c in (ticking, other):
                    c.stop(timeout=1)
                    await exactly(reader, f"cloud/{c.name}", c)
        finally:
            server.stop()
            other.remove(force=True)
        assert noticed < 1.0
        assert caught_up < 5.0


class TestTrust:
    async def test_changed_host_key_keeps_it_down(
        self, docker_engine: Dockerd, docker_sshd: Sshd, ticking: Container
    ) -> None:
        """A host key that differs from known_hosts: down with HOST KEY MISMATCH, nothing read."""
        wrong = docker_sshd.wrong_known_hosts()
        src = source(docker_engine, Reach(docker_sshd), containers=[ticking.name], known_hosts=wrong)
        reader = Reader(src)
        try:
            await wait_until(lambda: bool(reader.of(SourceDown)), what="down")
        finally:
            await reader.stop()
        assert "HOST KEY MISMATCH" in reader.of(SourceDown)[0].reason
        assert not reader.of(Chunk) and not reader.of(Watermark)

    def test_snapshot_refused_too(self, docker_engine: Dockerd, docker_sshd: Sshd, tmp_path: Path) -> None:
        """`watcher snapshot` checks the host key the same way: the source is missing, and why."""
        fields = Reach(docker_sshd).fields(
            docker_engine, compose_project="x", known_hosts=str(docker_sshd.wrong_known_hosts())
        )
        source = {"name": "cloud", "kind": "docker", **fields}
        settings = config.load(None, {"state_dir": tmp_path, "sources": [source], "rules": RULES})
        result = take_configured(settings, Request("before rollback"), by="t@h")
        (missing,) = result.missing
        assert missing.startswith("cloud/*: containers: cannot reach") and "HOST KEY MISMATCH" in missing


async def check(engine: Dockerd, server: Sshd, **over: object) -> list[str]:
    """`check-config`'s problems for a docker source reaching `engine` through `server`."""
    fields = Reach(server).fields(engine, containers=["x"], **over)
    cfg = DockerSourceConfig.model_validate({"name": "cloud", "kind": "docker", **fields})
    return (await DockerKind(cfg).check("sources[0]")).problems


class TestCheckConfig:
    async def test_reachable(self, docker_engine: Dockerd, docker_sshd: Sshd) -> None:
        """The engine answers through the link: no problem."""
        assert await check(docker_engine, docker_sshd) == []

    async def test_through_a_proxy_jump(
        self, docker_engine: Dockerd, docker_sshd: Sshd, tmp_path: Path
    ) -> None:
        """proxy_jump as for gateways: the jump host trusted through the same known_hosts and keys."""
        jump = Sshd()
        jump.config_extra = [f"PermitOpen {docker_sshd.address}:{docker_sshd.port}"]
        jump.start()
        try:
            known = tmp_path / "known_hosts"
            known.write_bytes(docker_sshd.known_hosts.read_bytes() + jump.known_hosts.read_bytes())
            keys = [str(docker_sshd.client_key_path), str(jump.client_key_path)]
            via = f"{TEST_USER}@{jump.address}:{jump.port}"
            assert (
                await check(
                    docker_engine, docker_sshd, known_hosts=str(known), client_keys=keys, proxy_jump=via
                )
                == []
            )
            known.write_bytes(docker_sshd.known_hosts.read_bytes())  # the jump host's key is not trusted
            (problem,) = await check(
                docker_engine, docker_sshd, known_hosts=str(known), client_keys=keys, proxy_jump=via
            )
        finally:
            jump.stop()
        assert "unknown host key" in problem and str(jump.port) in problem

    async def test_changed_host_key(self, docker_engine: Dockerd, docker_sshd: Sshd) -> None:
        """The same HOST KEY MISMATCH line as for gateways, naming the key."""
        (problem,) = await check(docker_engine, docker_sshd, known_hosts=str(docker_sshd.wrong_known_hosts()))
        assert problem.startswith("sources[0].docker_host: ") and "HOST KEY MISMATCH" in problem

    async def test_trust_files_that_cannot_be_used(self, docker_engine: Dockerd, docker_sshd: Sshd) -> None:
        """known_hosts and client_keys are loaded first, each problem naming its key, as for gateways."""
        found = await check(
            docker_engine, docker_sshd, known_hosts="/nonexistent/known_hosts", client_keys=["/etc/hostname"]
        )
        assert found == [
            "sources[0].known_hosts: cannot use /nonexistent/known_hosts: no such file or directory",
            "sources[0].client_keys[0]: cannot use /etc/hostname: Invalid private key",
        ]

    async def test_no_socket_there(self, docker_engine: Dockerd, docker_sshd: Sshd) -> None:
        """A socket path with nothing behind it."""
        missing = docker_sshd.docker_host("/run/no-such/docker.sock")
        (problem,) = await check(docker_engine, docker_sshd, docker_host=missing)
        assert "cannot open /run/no-such/docker.sock there: no socket there" in problem

    async def test_socket_the_login_may_not_use(
        self, docker_engine: Dockerd, docker_sshd: Sshd, root_only_socket: Path
    ) -> None:
        """A socket only root may use: the login is not in its group."""
        (problem,) = await check(
            docker_engine, docker_sshd, docker_host=docker_sshd.docker_host(root_only_socket)
        )
        assert f"permission denied (is {TEST_USER} in the socket's group" in problem

    async def test_forwarding_disabled(self, docker_engine: Dockerd) -> None:
        """sshd with stream-local forwarding off: said so, with where to look."""
        server = Sshd()
        server.config_extra = ["AllowStreamLocalForwarding no"]
        server.start()
        try:
            (problem,) = await check(docker_engine, server)
        finally:
            server.stop()
        assert "sshd refuses to forward it (AllowStreamLocalForwarding" in problem
