"""A real sshd and journald for journal tests and ssh:// docker tests (any test that reaches a "gateway").

`Sshd` runs OpenSSH's sshd on a free loopback port (or inside a network
namespace) with a throwaway host key, one authorized client key and a
known_hosts file naming it; logins are as TEST_USER (/bin/sh, group
systemd-journal; root's shell start-up can hang a killed session). `Journald`
makes sure a journald is running, starting the standalone binary when none is,
and `write()` logs through systemd-cat under an identifier unique to the test:
journald is one per machine, so identifiers keep tests apart.

systemd is not PID 1 here, so `systemctl is-active` cannot answer (it prints nothing and
exits 1, as on a host whose systemd is unreachable). Each `Sshd` therefore installs a
stand-in, `is-active`, that the journal sources are configured to run instead
(`liveness_command`): it answers from a state file the test writes (`unit_state`), with
systemctl's conventions: the state on stdout, exit 0 for active or reloading, 3 for any
other state, and nothing with exit 1 when there is no state file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncssh
import pytest

from tests.conftest import require_binary, unavailable
from tests.support import free_port
from watcher.config import JournalSourceConfig

TEST_USER = "watcher-test"
IS_ACTIVE = """#!/bin/sh
f="$(dirname "$0")/unit-state"
[ -r "$f" ] || { echo "System has not been booted with systemd as init system (PID 1)." >&2; exit 1; }
read -r s < "$f"
echo "$s"
case "$s" in active|reloading) exit 0 ;; esac
exit 3
"""
JOURNAL_SOCKET = Path("/run/systemd/journal/socket")
JOURNALD = Path("/lib/systemd/systemd-journald")
RUNTIME_JOURNAL = Path("/run/log/journal")


def require_test_user() -> None:
    """Root, and the TEST_USER account (created when missing, as tests/services.d/ssh.sh does)."""
    if os.geteuid() != 0:
        unavailable(
            "ssh, journal and docker tests need root (a test user, sshd, journald, dockerd)",
            "ssh, journal and docker tests need root in CI (tests/services.sh)",
        )
    try:
        subprocess.run(["id", TEST_USER], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        services = Path(__file__).parent / "services.d" / "ssh.sh"
        subprocess.run(
            ["bash", "-c", f"need=(); starts=(); source {services}; start_journal_test_user"], check=True
        )


def unique_ident() -> str:
    """A SYSLOG_IDENTIFIER no other test (or earlier run) has written."""
    return f"wt-{uuid.uuid4().hex[:12]}"


class Journald:
    """The machine's journald; started standalone (and stopped again) when none is running."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        require_binary("systemd-cat")
        require_binary("journalctl")
        require_test_user()
        if not _listening(JOURNAL_SOCKET):
            if not JOURNALD.exists():
                pytest.fail(f"{JOURNALD} is missing: tests/services.sh installs systemd")
            JOURNAL_SOCKET.parent.mkdir(parents=True, exist_ok=True)
            self.proc = subprocess.Popen(
                [str(JOURNALD)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
            )
            _poll(lambda: _listening(JOURNAL_SOCKET), 10, "journald's socket")
        self._share_with_group()

    def _share_with_group(self) -> None:
        """What systemd-tmpfiles does on a real system: the systemd-journal group may read."""
        _poll(lambda: any(RUNTIME_JOURNAL.glob("*/*.journal")) or _has_persistent(), 10, "journal files")
        for root in (RUNTIME_JOURNAL, Path("/var/log/journal")):
            if not root.exists():
                continue
            shutil.chown(root, group="systemd-journal")
            for path in root.rglob("*"):
                shutil.chown(path, group="systemd-journal")
                path.chmod(path.stat().st_mode | (0o2750 if path.is_dir() else 0o640))

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def write(self, ident: str, lines: list[str], priority: str = "err") -> None:
        """Log `lines` as `ident`; returns once systemd-cat has handed them to journald."""
        subprocess.run(
            ["systemd-cat", "-t", ident, "-p", priority],
            input="".join(f"{ln}\n" for ln in lines).encode(),
            check=True,
        )

    def count(self, ident: str) -> int:
        """Entries journald has stored for `ident` (what a reader can expect to see)."""
        out = subprocess.run(
            ["journalctl", "-t", ident, "-o", "cat", "--no-pager", "-q"], capture_output=True, check=True
        )
        return len(out.stdout.splitlines())


class Sshd:
    """sshd on a free port of `address` (run inside netns `netns` when given)."""

    def __init__(self, address: str = "127.0.0.1", netns: str | None = None) -> None:
        self.address = address
        self.netns = netns
        self.port = free_port() if netns is None else 2222
        self.dir = Path(tempfile.mkdtemp(prefix="wt-sshd-"))
        # sshd reads authorized_keys as the test user: the directory must be traversable.
        self.dir.chmod(0o755)
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key_path = self.dir / "id_ed25519"
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key.write_private_key(str(self.client_key_path))
        (self.dir / "authorized_keys").write_bytes(client_key.export_public_key())
        (self.dir / "authorized_keys").chmod(0o644)
        self.host_key.write_private_key(str(self.dir / "host_key"))
        (self.dir / "host_key").chmod(0o600)
        self.known_hosts = self.dir / "known_hosts"
        self.known_hosts.write_bytes(self._known_line(self.host_key))
        self.proc: subprocess.Popen[bytes] | None = None
        self.config_extra: list[str] = []
        """More sshd_config lines (PermitOpen, ClientAliveInterval, ...)."""
        script = self.dir / "is-active"
        script.write_text(IS_ACTIVE)
        script.chmod(0o755)
        self.liveness_command = f"{script} {{unit}}"
        """What the journal sources run instead of `systemctl is-active {unit}`."""
        self.unit_state("active")

    def unit_state(self, state: str | None) -> None:
        """What `is-active` reports from now on (`inactive`, `failed`, ...; None: no answer)."""
        path = self.dir / "unit-state"
        if state is None:
            path.unlink(missing_ok=True)
            return
        path.write_text(state + "\n")
        path.chmod(0o644)

    def _known_line(self, key: asyncssh.SSHKey) -> bytes:
        name = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        return name.encode() + b" " + key.export_public_key()

    def journal_source(self, **over: object) -> JournalSourceConfig:
        """A journal source reading this server as the test user, with its keys; `over` replaces fields."""
        fields: dict[str, object] = {
            "name": "gw",
            "kind": "journal",
            "hosts": [self.address],
            "user": TEST_USER,
            "port": self.port,
            "known_hosts": self.known_hosts,
            "client_keys": [self.client_key_path],
            "liveness_command": self.liveness_command,
            **over,
        }
        return JournalSourceConfig.model_validate(fields)

    def docker_host(self, socket: Path | str) -> str:
        """The ssh:// URL of the engine at `socket`, through this server."""
        return f"ssh://{TEST_USER}@{self.address}:{self.port}{socket}"

    def docker_fields(self, socket: Path, **over: object) -> dict[str, object]:
        """The keys of a docker source reaching the engine at `socket` through this server."""
        return {
            "docker_host": self.docker_host(socket),
            "known_hosts": str(self.known_hosts),
            "client_keys": [str(self.client_key_path)],
            **over,
        }

    def wrong_known_hosts(self) -> Path:
        """A known_hosts that pins another key for this address: a changed host key."""
        path = self.dir / "known_hosts.wrong"
        path.write_bytes(self._known_line(asyncssh.generate_private_key("ssh-ed25519")))
        return path

    def config(self) -> Path:
        path = self.dir / "sshd_config"
        path.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {self.address}",
                    f"HostKey {self.dir / 'host_key'}",
                    f"PidFile {self.dir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
                    f"AllowUsers {TEST_USER}",
                    "StrictModes no",
                    "UsePAM no",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "PrintMotd no",
                    "LogLevel ERROR",
                    "MaxStartups 200:30:400",
                    "MaxSessions 100",
                    *self.config_extra,
                    "",
                ]
            )
        )
        return path

    def start(self) -> None:
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        if not Path(sshd).exists():
            require_binary("sshd")
        require_test_user()
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
        cmd = [sshd, "-D", "-e", "-f", str(self.config())]
        if self.netns is not None:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        with (self.dir / "sshd.log").open("ab") as log:  # sshd -e logs to stderr; keep it for failures
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=log, start_new_session=True)
        _poll(lambda: _accepts(self.address, self.port), 10, f"sshd on {self.address}:{self.port}")

    def kill(self) -> None:
        """SIGKILL sshd and every session it forked (they setsid, so walk the process tree)."""
        if self.proc is None:
            return
        for pid in [*_descendants(self.proc.pid), self.proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def remote_pids(self, pattern: str) -> list[int]:
        """Processes under this sshd whose command line contains `pattern` (e.g. journalctl)."""
        if self.proc is None:
            return []
        return [pid for pid in _descendants(self.proc.pid) if pattern.encode() in _cmdline(pid)]

    def kill_remote(self, comm: str) -> int:
        """SIGKILL the processes under this sshd named `comm` (e.g. journalctl); how many there were."""
        pids = [pid for pid in self.remote_pids(comm) if _comm(pid) == comm]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return b""


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _listening(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def _has_persistent() -> bool:
    return any(Path("/var/log/journal").glob("*/*.journal"))


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _poll(predicate: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        time.sleep(0.05)


# Test modules import these by their function names (`from tests.sshd import journald_fixture`)
# and ask for them as `journald` / `sshd`.
class LinkCut:
    """A network namespace joined to this one by a veth pair, and a link that can be cut.

    sshd runs inside the namespace at `remote`; the watcher reaches it over the veth.
    `cut()` makes the far end fall silent as a real outage does: whatever it sends back
    is discarded inside its namespace (no FIN, no RST, no ICMP), and what the watcher sends,
    new SYNs included, goes unanswered; nothing leaves for the machine's real network.
    """

    def __init__(self) -> None:
        require_binary("ip")
        require_test_user()
        tag = uuid.uuid4().hex[:8]
        self.netns = f"wt-{tag}"
        self.host_if, self.ns_if = f"wh{tag}", f"wn{tag}"
        subnet = f"10.254.{int(tag[:2], 16)}"
        self.local, self.remote = f"{subnet}.1", f"{subnet}.2"
        ns = ["ip", "netns", "exec", self.netns]
        for cmd in (
            ["ip", "netns", "add", self.netns],
            ["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if],
            ["ip", "link", "set", self.ns_if, "netns", self.netns],
            ["ip", "addr", "add", f"{self.local}/30", "dev", self.host_if],
            ["ip", "link", "set", self.host_if, "up"],
            [*ns, "ip", "addr", "add", f"{self.remote}/30", "dev", self.ns_if],
            [*ns, "ip", "link", "set", self.ns_if, "up"],
            [*ns, "ip", "link", "set", "lo", "up"],
        ):
            subprocess.run(cmd, check=True, capture_output=True)

    def cut(self) -> None:
        self._route("add")

    def restore(self) -> None:
        self._route("del")

    def _route(self, change: str) -> None:
        route = ["ip", "route", change, "blackhole", f"{self.local}/32"]
        subprocess.run(["ip", "netns", "exec", self.netns, *route], check=True)

    def remove(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)  # takes its peer along
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)


@pytest.fixture(scope="session", name="journald")
def journald_fixture() -> Iterator[Journald]:
    j = Journald()
    j.start()
    yield j
    j.stop()


@pytest.fixture(name="sshd")
def sshd_fixture(journald: Journald) -> Iterator[Sshd]:
    server = Sshd()
    server.start()
    yield server
    server.stop()
