"""An in-process SSH server that plays a gateway's journalctl, for faults a real journal can't stage.

It speaks real SSH (asyncssh.listen on loopback, a host key pinned in a
known_hosts file, key authentication) and answers the two scripts the journal
source runs: the catch-up run (a clock line on stderr, entries from the cursor,
exit 0) and the follow run (entries as they are added, a clock line every
second). Its journal is a list the test controls: `vacuum()` drops the oldest
entries so a saved cursor no longer exists, which journald only does on its own
schedule. With `rate`, every follow session also generates entries by itself
(the benchmark's load).

Run as a program (`python -m tests.fake_gateway --addresses N --rate R`) it serves
N loopback addresses 127.0.i.j on one port and prints a JSON line with what the
watcher's config needs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import shlex
import signal
import tempfile
import time
from pathlib import Path

import asyncssh

from tests.support import free_port

_SEQ = re.compile(r"(?:^|;)i=([0-9a-f]+)")


class FakeJournal:
    """Entries with journald-shaped cursors (s=, i=, b=, m=, t=, x=), oldest first."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, bytes]] = []  # (seqnum, JSON line with newline)
        self.boots: dict[int, int] = {}  # seqnum -> boot number
        self.boot = 1
        self.seq = 0
        self.changed = asyncio.Event()

    def add(self, message: str, *, at: float | None = None, priority: int = 3, ident: str = "gw") -> str:
        self.seq += 1
        usec = int((time.time() if at is None else at) * 1e6)
        cursor = f"s=fake;i={self.seq:x};b=boot{self.boot};m={self.seq:x};t={usec:x};x=0"
        self.boots[self.seq] = self.boot
        line = json.dumps(
            {
                "__CURSOR": cursor,
                "__REALTIME_TIMESTAMP": str(usec),
                "PRIORITY": str(priority),
                "SYSLOG_IDENTIFIER": ident,
                "MESSAGE": message,
            }
        )
        self.entries.append((self.seq, line.encode() + b"\n"))
        self.changed.set()
        self.changed = asyncio.Event()
        return cursor

    def reboot(self) -> None:
        """Later entries belong to a new boot, which `--follow` alone would limit itself to."""
        self.boot += 1

    def vacuum(self, keep_last: int) -> None:
        del self.entries[: max(0, len(self.entries) - keep_last)]

    def from_cursor(self, cursor: str) -> int:
        """Index of the entry at the cursor, or of the first one after where it was (journalctl --cursor)."""
        m = _SEQ.search(cursor)
        seq = int(m.group(1), 16) if m else 0
        return next((i for i, (s, _) in enumerate(self.entries) if s >= seq), len(self.entries))


class _Handshakes(asyncssh.SSHServer):
    """Counts connections between TCP accept and finished authentication, or their loss before it
    (a client that gave up mid-handshake is no longer in flight)."""

    def __init__(self, gw: FakeGateway) -> None:
        self.gw = gw
        self.handshaking = False

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.handshaking = True
        self.gw.handshaking += 1
        self.gw.max_handshaking = max(self.gw.max_handshaking, self.gw.handshaking)

    def auth_completed(self) -> None:
        self._done()

    def connection_lost(self, exc: Exception | None) -> None:
        self._done()

    def _done(self) -> None:
        if self.handshaking:
            self.handshaking = False
            self.gw.handshaking -= 1


class FakeGateway:
    """Serves `journal` over SSH on `addresses` (all on one port)."""

    def __init__(self, journal: FakeJournal | None = None, *, rate: float = 0.0) -> None:
        self.journal = journal if journal is not None else FakeJournal()
        self.rate = rate
        self.dir = Path(tempfile.mkdtemp(prefix="wt-fakegw-"))
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key_path = self.dir / "id_ed25519"
        client_key.write_private_key(str(self.client_key_path))
        self._authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
        self.known_hosts = self.dir / "known_hosts"
        self.port = 0
        self.unit_state = "active"
        """What the unit's liveness check answers, when the follow script asks for it."""
        self.old_journalctl = False
        """Refuse --output-fields, as journalctl before systemd 236 does."""
        self.sessions = 0
        self.handshaking = self.max_handshaking = 0
        self._server: asyncssh.SSHAcceptor | None = None
        self._conns: set[asyncssh.SSHServerConnection] = set()

    async def start(self, addresses: list[str] | None = None, port: int = 0) -> None:
        addresses = addresses or ["127.0.0.1"]
        if port == 0 and len(addresses) > 1:
            port = free_port()  # port 0 would give each address its own port
        self._server = await asyncssh.listen(
            addresses if len(addresses) > 1 else addresses[0],
            port,
            server_host_keys=[self.host_key],
            authorized_client_keys=self._authorized,
            process_factory=self._serve,
            encoding=None,
            backlog=1024,
            acceptor=self._conns.add,
            server_factory=lambda: _Handshakes(self),
        )
        self.port = self._server.sockets[0].getsockname()[1]
        pub = self.host_key.export_public_key()
        self.known_hosts.write_bytes(b"".join(f"[{a}]:{self.port} ".encode() + pub for a in addresses))

    async def stop(self) -> None:
        """Stop listening and drop every connection (the gateway vanishes)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for conn in self._conns:
            conn.abort()
        self._conns.clear()

    async def _serve(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        self.sessions += 1
        args = shlex.split(process.command.splitlines()[0] if process.command else "")
        checks = "unit %s" in (process.command or "")  # the follow script reports the unit's state
        cursor = next((a.split("=", 1)[1] for a in args if a.startswith("--cursor=")), None)
        since = next((a.split("=", 1)[1] for a in args if a.startswith("--since=")), None)
        j = self.journal
        if self.old_journalctl and any(a.startswith("--output-fields") for a in args):
            process.stderr.write(b"journalctl: unrecognized option '--output-fields'\n")
            process.exit(1)
            self.sessions -= 1
            return
        if cursor is not None:
            pos = j.from_cursor(cursor)
        elif since is not None and since.startswith("@"):
            usec = float(since[1:]) * 1e6
            pos = next((i for i, (_, line) in enumerate(j.entries) if _usec(line) >= usec), len(j.entries))
        else:
            pos = len(j.entries)
        try:
            process.stderr.write(f"{time.time():.6f}\n".encode())
            if "--follow" not in args:
                process.stdout.write(b"".join(line for _, line in j.entries[pos:]))
                process.exit(0)
                return
            # As systemd >= 250: --follow implies --boot, so earlier boots' entries are skipped.
            seen = max(
                [j.entries[pos - 1][0] if pos > 0 else 0] + [q for q, b in j.boots.items() if b < j.boot]
            )
            own = FakeJournal() if self.rate else None
            next_beat = next_entry = time.monotonic()
            while True:
                fresh = [line for s, line in j.entries if s > seen]
                if fresh:
                    seen = j.entries[-1][0]
                    process.stdout.write(b"".join(fresh))
                now = time.monotonic()
                if own is not None and now >= next_entry:
                    own.add(f"level=info msg=tick n={own.seq}", priority=6)
                    process.stdout.write(own.entries.pop()[1])
                    next_entry += 1 / self.rate
                if now >= next_beat:  # the clock and the unit's state in one write, as the script does
                    beat = f"{time.time():.6f}\n"
                    if checks:
                        code = 0 if self.unit_state == "active" else 3
                        beat += f"unit {code} {time.time():.6f} {self.unit_state}\n"
                    process.stderr.write(beat.encode())
                    next_beat += 1.0
                if process.channel.is_closing():
                    return
                wake = min(next_beat, next_entry if own is not None else next_beat) - time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(j.changed.wait(), max(wake, 0.001))
        except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged, BrokenPipeError, ConnectionError):
            pass
        finally:
            self.sessions -= 1
            if not process.is_closing():
                process.close()


def _usec(line: bytes) -> float:
    return float(json.loads(line)["__REALTIME_TIMESTAMP"])


def loopback_addresses(n: int) -> list[str]:
    return [f"127.0.{i // 250}.{i % 250 + 1}" for i in range(n)]


async def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--addresses", type=int, default=1)
    parser.add_argument("--rate", type=float, default=10.0)
    args = parser.parse_args()
    gw = FakeGateway(rate=args.rate)
    addresses = loopback_addresses(args.addresses)
    await gw.start(addresses)
    print(
        json.dumps(
            {
                "port": gw.port,
                "hosts": addresses,
                "known_hosts": str(gw.known_hosts),
                "client_key": str(gw.client_key_path),
            }
        ),
        flush=True,
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    # What the benchmark reads back: the most connections that were between TCP accept and
    # finished authentication at once (the watcher's max_handshakes at work).
    print(json.dumps({"max_handshaking": gw.max_handshaking}), flush=True)


if __name__ == "__main__":
    asyncio.run(_main())
