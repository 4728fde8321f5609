"""A private Docker engine for tests: its own dockerd, containerd, sockets and data, torn down after.

Other test sessions (and other developers' helpers) may run their own engines at the
same time, so nothing here touches /var/run/docker.sock: every path lives under one
short temporary directory (unix socket paths are limited to 108 bytes). No registry
is reachable, so the test image is a static busybox imported from a local rootfs.

Use the session fixture `docker_engine` (tests/conftest.py), or `Dockerd`
directly when a test must stop and start the engine itself. The fixture `reach`
runs a test twice: the source reaching the engine by its socket, and as an ssh://
host through a real sshd on loopback (its socket's group is the ssh test user's).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
from docker.errors import DockerException

from tests.conftest import require_binary, unavailable
from tests.sshd import TEST_USER, Sshd, require_test_user

IMAGE = "watcher-busybox:test"
BUSYBOX = "/bin/busybox"
START_TIMEOUT = 30.0


class Dockerd:
    """One dockerd (with the containerd it manages) rooted in `root`; start/stop keep the data."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = root / "docker.sock"
        self.host = f"unix://{self.sock}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = root / "dockerd.log"

    def start(self) -> None:
        dockerd = require_binary("dockerd")
        if os.geteuid() != 0:
            unavailable("the docker tests need root (a private dockerd)", "the docker tests need root in CI")
        require_test_user()
        self.root.chmod(0o755)  # mkdtemp's 0700 would keep TEST_USER from reaching the socket
        # If the test process dies (SIGKILL, a CI timeout), dockerd dies with it, and the
        # containerd it supervises with dockerd; only `destroy()` removes the directory.
        setpriv = shutil.which("setpriv")  # util-linux, Essential on Debian
        args = [
            *([setpriv, "--pdeathsig", "KILL"] if setpriv else []),
            dockerd,
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.root / 'exec'}",
            f"--pidfile={self.root / 'dockerd.pid'}",
            f"--host={self.host}",
            f"--group={TEST_USER}",  # the socket's group: ssh:// tests log in as TEST_USER
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
            "--userland-proxy=false",
            "--log-level=warn",
        ]
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.answers():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = self._log.read_text(errors="replace")[-2000:]
                self.stop()
                pytest.fail(f"private dockerd did not start:\n{tail}")
            time.sleep(0.1)

    def answers(self) -> bool:
        """GET /_ping over the socket (a raw request: the SDK leaks a socket on a refused connect)."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(str(self.sock))
                s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                reply = s.recv(4096)
        except OSError:
            return False
        return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0] + b" "

    def client(self, timeout: int = 60) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, timeout=timeout)

    def stop(self) -> None:
        """SIGTERM dockerd (it stops its containerd); SIGKILL whatever is left of this root."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGTERM)
                try:
                    self._proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        for pid in self._leftover_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def kill(self) -> None:
        """The engine dies abruptly (containers keep running under their shims)."""
        assert self._proc is not None
        self._proc.kill()
        self._proc.wait()
        self._proc = None

    def import_busybox(self, name: str = IMAGE) -> str:
        """A busybox image from the static binary: /bin/busybox plus one symlink per applet."""
        applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True, text=True).stdout
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for d in ("bin", "tmp", "proc", "sys", "dev", "etc"):
                info = tarfile.TarInfo(d)
                info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
                tar.addfile(info)
            tar.add(BUSYBOX, arcname="bin/busybox")
            for applet in applets.split():
                if applet == "busybox":
                    continue
                info = tarfile.TarInfo(f"bin/{applet}")
                info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(info)
        repo, tag = name.split(":")
        with contextlib.closing(self.client()) as client:
            client.api.import_image_from_data(buf.getvalue(), repository=repo, tag=tag)
        return name

    def remove_containers(self) -> None:
        with contextlib.closing(self.client()) as client:
            for c in client.containers.list(all=True):
                with contextlib.suppress(DockerException):
                    c.remove(force=True)

    def destroy(self) -> None:
        """Containers, dockerd, containerd and shims, mounts, then the directory."""
        if self._proc is not None and self.answers():
            self.remove_containers()
        self.stop()
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(str(self.root))), reverse=True):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def _leftover_pids(self) -> list[int]:
        """containerd and shims started for this root: their command lines name it."""
        mine = str(self.root).encode()
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                if mine in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                continue
        return pids


@dataclass(frozen=True)
class Reach:
    """How a test's docker source reaches an engine: by its socket, or ssh:// through `sshd`."""

    sshd: Sshd | None = None

    def fields(self, engine: Dockerd, **over: object) -> dict[str, object]:
        """The source's `docker_host` (and SSH keys) for `engine`; `over` adds or replaces keys."""
        if self.sshd is None:
            return {"docker_host": engine.host, **over}
        return self.sshd.docker_fields(engine.sock, **over)


@contextlib.contextmanager
def private_dockerd() -> Iterator[Dockerd]:
    """A started engine with the busybox image imported; everything removed afterwards."""
    engine = Dockerd(Path(tempfile.mkdtemp(prefix="wdk.", dir="/tmp")))
    try:
        engine.start()
        engine.import_busybox()
        yield engine
    finally:
        engine.destroy()
