"""How a docker source reaches its engine: as configured (unix://, tcp://), or over SSH (ssh://).

An ssh:// host does not use the SDK's own SSH transports: they need paramiko, read
~/.ssh/config, the agent and the login's known_hosts, and open one SSH connection per
HTTP connection. Instead one SSH connection (watcher.sources.ssh, the trust model of the
gateways: known_hosts, client keys, proxy_jump) forwards a private local socket to the
engine's socket on the host (the URL's path, /var/run/docker.sock by default, as for
`docker -H ssh://...`), and the SDK talks to `unix://` that socket:
each HTTP connection is a channel of the one SSH connection. The host needs no docker CLI,
only sshd allowing stream-local forwarding and a login allowed to use the socket.

- The local socket sits in a directory only this process's user can enter (it grants what
  the remote socket grants, root on that host for a docker group member). It keeps its path
  across reconnects, so a client bound to it (a stop snapshot's job) works on the next link.
- Every link starts with a probe of the remote socket: to a client all remote causes look
  alike (the connection closes without an answer), so they are told apart here, once.
- Nothing received for `keepalive_interval` drops the link (a keepalive goes out after half
  of it). Every forwarded stream then ends and new requests are refused, so the source
  notices at once and reports the SSH reason (`Link.lost`). A heartbeat, a channel opened to
  the engine's socket every HEARTBEAT seconds, gives the time up to which the link is known
  to have delivered (`Link.alive_at`): the source's watermark never passes it, so a dead
  link cannot make an engine look clean while it goes unnoticed.
- asyncssh objects belong to the event loop that opened them, and the SDK blocks (even in
  `DockerClient()`): SDK calls run in other threads. `served` gives blocking callers
  (check-config, snapshots) an event loop of their own, in a thread, for the link.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import math
import shlex
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Protocol

import asyncssh

from watcher.config import DockerSourceConfig, SshLogin
from watcher.errors import SourceError
from watcher.sources import ssh

HEARTBEAT = 1.0
"""Seconds between two proofs that an SSH link still reaches the engine."""


class Link(Protocol):
    """One attempt's way to the engine."""

    @property
    def url(self) -> str:
        """What the SDK connects to."""
        ...

    def alive_at(self) -> float:
        """Time (the source's clock) up to which the link is known to have delivered."""
        ...

    def lost(self) -> str | None:
        """Why the link ended, when it ended by itself (None: up, or not a link that can be lost)."""
        ...

    def ready(self) -> None:
        """Raise OSError when a request could not reach the engine now (cheaply, before the SDK
        tries and leaks the socket of its refused connect)."""
        ...


class Direct:
    """unix:// and tcp://: the SDK connects itself; its own errors say what went wrong."""

    def __init__(self, url: str) -> None:
        self.url = url

    def alive_at(self) -> float:
        return math.inf

    def lost(self) -> str | None:
        return None

    def ready(self) -> None:
        path = self.url.removeprefix("unix://")
        if path != self.url:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.setblocking(False)
                probe.connect(path)


class Tunnel:
    """One SSH connection, forwarding `url`'s socket to the engine's socket on the host."""

    def __init__(
        self,
        conn: asyncssh.SSHClientConnection,
        watch: ssh.Watch,
        cfg: DockerSourceConfig,
        login: SshLogin,
        url: str,
        clock: Callable[[], float],
    ) -> None:
        self._conn, self._watch, self._cfg, self._login = conn, watch, cfg, login
        self.url = url
        self._clock = clock
        self._alive = clock()
        self._failed: str | None = None

    def alive_at(self) -> float:
        return self._alive

    def lost(self) -> str | None:
        if self._failed is not None:
            return self._failed
        return f"{self._where()}: SSH link lost: {self._watch.lost}" if self._watch.lost else None

    def ready(self) -> None:
        if self._conn.is_closed():
            raise ConnectionRefusedError(errno.ECONNREFUSED, "SSH link lost")

    async def probe(self) -> None:
        """Open one channel to the engine's socket; raises SourceError saying why it cannot be."""
        sent = self._clock()
        try:
            chan, _ = await self._conn.create_unix_connection(asyncssh.SSHUNIXSession, self._login.socket)
        except (asyncssh.Error, OSError) as exc:
            if self._conn.is_closed() or not isinstance(exc, asyncssh.ChannelOpenError):
                raise SourceError(self.lost() or f"{self._where()}: SSH link lost: {exc}") from None
            why = await self._why_not()
            raise SourceError(f"{self._where()}: cannot open {self._login.socket} there: {why}") from None
        chan.close()
        self._alive = sent

    async def heartbeat(self) -> None:
        """Probe every HEARTBEAT seconds until the link ends; a socket that cannot be opened
        any more (dockerd stopped on the host) ends the link, with that reason."""
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                await self.probe()
            except SourceError as exc:
                if not self._conn.is_closed():
                    self._failed = str(exc)
                    self._conn.close()
                return

    def _where(self) -> str:
        return ssh.login_name(self._login.user, self._login.host, self._login.port)

    async def _why_not(self) -> str:
        """Ask the host why its socket cannot be opened, when the login may run a command."""
        path = shlex.quote(self._login.socket)
        script = (
            f"if [ ! -S {path} ]; then echo missing; elif [ ! -w {path} ]; then echo denied; else echo ok; fi"
        )
        try:
            done = await self._conn.run(script, timeout=self._cfg.connect_timeout)
            answer = str(done.stdout or "").strip()
        except (asyncssh.Error, OSError, TimeoutError):
            answer = ""
        user = self._login.user or "the login"
        return {
            "missing": "no socket there (is dockerd running? rootless Docker: ssh://user@host/run/user/<uid>/docker.sock)",
            "denied": f"permission denied (is {user} in the socket's group, usually docker?)",
            "ok": "sshd refuses to forward it (AllowStreamLocalForwarding or DisableForwarding in "
            "sshd_config, or restrict/no-port-forwarding in authorized_keys)",
        }.get(
            answer,
            f"{user} may not use it (not in the docker group?), there is no socket there, "
            "or sshd forbids stream-local forwarding",
        )


class Transport:
    """How one docker source reaches its engine, link after link; `close()` when done with it."""

    def __init__(self, cfg: DockerSourceConfig, clock: Callable[[], float] = time.time) -> None:
        self._cfg = cfg
        self._login = cfg.ssh_login()
        self._clock = clock
        self._dir: Path | None = None

    @contextlib.asynccontextmanager
    async def link(self) -> AsyncIterator[Link]:
        """A link for one attempt; raises SourceError when an SSH link cannot be opened."""
        if self._login is None:
            yield Direct(self._cfg.docker_host)
            return
        async with self._tunnel(self._login) as tunnel:
            yield tunnel

    @contextlib.asynccontextmanager
    async def _tunnel(self, login: SshLogin) -> AsyncIterator[Tunnel]:
        watch = ssh.Watch()
        conn = await ssh.connect(self._cfg, login.host, login.user, port=login.port, watch=watch)
        beat: asyncio.Task[None] | None = None
        try:
            ssh.drop_when_silent(conn, self._cfg.keepalive_interval)
            path = self._socket_path()
            tunnel = Tunnel(conn, watch, self._cfg, login, f"unix://{path}", self._clock)
            await tunnel.probe()
            try:
                listener = await conn.forward_local_path(str(path), login.socket)
            except OSError as exc:
                raise SourceError(f"cannot listen on {path}: {exc.strerror or exc}") from None
            beat = asyncio.create_task(tunnel.heartbeat(), name=f"ssh heartbeat {self._cfg.name}")
            try:
                yield tunnel
            finally:
                listener.close()
        finally:
            if beat is not None:
                beat.cancel()
                await asyncio.wait([beat])
            conn.close()
            await conn.wait_closed()

    def _socket_path(self) -> Path:
        if self._dir is None:
            # mkdtemp makes it 0700; /tmp keeps the path well under sun_path's 108 bytes.
            self._dir = Path(tempfile.mkdtemp(prefix="wdk-", dir="/tmp"))
        return self._dir / "docker.sock"

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    async def hold(
        self, up: concurrent.futures.Future[str], release: concurrent.futures.Future[None]
    ) -> None:
        """Keep a link open until `release` is set; its URL (or why there is none) goes to `up`."""
        try:
            async with self.link() as link:
                up.set_result(link.url)
                await asyncio.wrap_future(release)
        except BaseException as exc:
            if up.done():
                raise
            up.set_exception(exc)


@contextlib.contextmanager
def served(cfg: DockerSourceConfig) -> Iterator[str]:
    """The URL a blocking SDK client reaches `cfg`'s engine at, for the duration of the block.

    For an ssh:// host a thread runs the link's event loop meanwhile. Raises SourceError
    when the link cannot be opened.
    """
    if cfg.ssh_login() is None:
        yield cfg.docker_host
        return
    transport = Transport(cfg)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=f"ssh {cfg.name}", daemon=True)
    thread.start()
    up: concurrent.futures.Future[str] = concurrent.futures.Future()
    release: concurrent.futures.Future[None] = concurrent.futures.Future()
    held = asyncio.run_coroutine_threadsafe(transport.hold(up, release), loop)
    try:
        yield up.result()
    finally:
        release.set_result(None)
        with contextlib.suppress(Exception):  # a link lost meanwhile: the caller's requests said so
            held.result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        transport.close()
