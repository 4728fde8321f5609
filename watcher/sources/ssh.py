"""SSH connections to gateways and ssh:// Docker hosts: host keys always checked, failures
turned into one-line reasons.

`connect()` is the only entry point; journal sources, ssh:// docker sources and their
snapshots and `check-config` probes all use it, so a host is reached the same way for
following and collecting, with one trust model (`SshSettings`). Host keys are checked
against the configured known_hosts and nothing else: there is no option to accept an
unknown key, on purpose.

Keepalives: asyncssh sends one after `keepalive_interval` without a packet received and
drops the link when `keepalive_count_max` of them in a row go unanswered, so a dead,
silent link is dropped interval x (count_max + 1) after the last packet it delivered.

Without `user`, the login is the local user the watcher runs as; without
`client_keys`, OpenSSH's default identity files in that user's ~/.ssh (as ssh(1)
would try them, the home taken from the password database, not $HOME).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import pwd
import socket
from pathlib import Path

import asyncssh

from watcher.config import JournalSourceConfig, SshSettings
from watcher.errors import HostKeyError, SourceError

log = logging.getLogger(__name__)

DEAD_LINK_BOUND = 30.0
"""Seconds within which a silent, dead link is dropped: keepalive_interval x (count_max + 1)."""


def keepalive_count_max(interval: float) -> int:
    """Unanswered keepalives tolerated so that interval x (count + 1) stays within DEAD_LINK_BOUND;
    at least one, so an interval over half the bound drops a dead link after 2 x interval."""
    return max(1, math.floor(DEAD_LINK_BOUND / interval) - 1)


def dead_link_bound(interval: float) -> float:
    """Seconds after its last packet that a dead link is dropped, with `interval` keepalives."""
    return interval * (keepalive_count_max(interval) + 1)


def drop_when_silent(conn: asyncssh.SSHClientConnection, seconds: float) -> None:
    """Drop `conn` once nothing has been received for `seconds` (for a link with no heartbeat of
    its own): a keepalive after half of it, and the link is lost if that is not answered either."""
    conn.set_keepalive(seconds / 2, 1)


class Watch(asyncssh.SSHClient):
    """Keeps why a connection ended, as a reason a user can read (None while it is up, or when
    it was closed on purpose)."""

    def __init__(self) -> None:
        self.lost: str | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.lost = exc.reason if isinstance(exc, asyncssh.Error) else str(exc) or type(exc).__name__


def login_name(user: str | None, host: str, port: int) -> str:
    """`user@host:port`, as every SSH reason names the far end."""
    return f"{user + '@' if user else ''}{host}:{port}"


CIPHERS = (
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)
"""asyncssh's default ciphers, AES-GCM first: one call into OpenSSL per packet (6-9 µs for a
journal entry's packet here), where asyncssh's chacha20-poly1305 takes 40 µs. A fleet's
gateways send thousands of small packets a second, and every OpenSSH server offers both."""

DEFAULT_IDENTITIES = ("id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_dsa")
"""OpenSSH's default IdentityFile list (ssh_config(5)), in its order."""


def user_for(cfg: JournalSourceConfig, host: str) -> str:
    """The login for `host`: its host_users entry, else `user`, else the local user's name."""
    return cfg.host_users.get(host) or cfg.user or _local_user().pw_name


def client_keys(cfg: SshSettings) -> list[Path]:
    """The keys offered: `client_keys`, else those of OpenSSH's default identity files that exist."""
    if cfg.client_keys:
        return list(cfg.client_keys)
    ssh_dir = Path(_local_user().pw_dir) / ".ssh"
    return [ssh_dir / name for name in DEFAULT_IDENTITIES if (ssh_dir / name).is_file()]


def no_keys(cfg: SshSettings) -> str:
    """Why there is no key to offer (client_keys empty and no default identity file)."""
    ssh_dir = Path(_local_user().pw_dir) / ".ssh"
    return (
        f"no client_keys configured and no default identity file ({', '.join(DEFAULT_IDENTITIES)}) "
        f"in {ssh_dir}: set client_keys, or give the watcher's user a key there"
    )


def _local_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwuid(os.geteuid())
    except KeyError:  # a uid without a passwd entry (a bare container): no name, no home
        return pwd.struct_passwd((f"uid{os.geteuid()}", "", os.geteuid(), os.getegid(), "", "/", ""))


async def connect(
    cfg: SshSettings, host: str, user: str | None, *, port: int | None = None, watch: Watch | None = None
) -> asyncssh.SSHClientConnection:
    """An authenticated connection to `host` as `user` (None: the local user's name) on `port`
    (None: the configured one); raises SourceError with a reason a user can act on. `watch`
    learns why the connection ends.

    A `proxy_jump` host is reached with the same known_hosts and keys (asyncssh's own
    string tunnels would use ~/.ssh instead) and is closed with the connection.
    """
    if cfg.known_hosts is None:
        raise SourceError(f"{host}: no known_hosts configured; host keys are always checked")
    port = cfg.port if port is None else port
    if cfg.proxy_jump is None:
        return await _open(cfg, host, port, user, None, watch)
    jump_user, _, jump_host = cfg.proxy_jump.rpartition("@")
    name, colon, jport = jump_host.rpartition(":")
    jump_host, jump_port = (name, int(jport)) if colon and jport.isdigit() else (jump_host, 22)
    jump = await _open(cfg, jump_host, jump_port, jump_user or user, None, None)
    try:
        conn = await _open(cfg, host, port, user, jump, watch)
    except BaseException:
        jump.close()
        raise
    conn.set_tunnel(jump)  # closing the connection closes the jump host's too
    return conn


async def _open(
    cfg: SshSettings,
    host: str,
    port: int,
    user: str | None,
    tunnel: asyncssh.SSHClientConnection | None,
    watch: Watch | None,
) -> asyncssh.SSHClientConnection:
    where = login_name(user, host, port) + (" (via proxy_jump)" if tunnel else "")
    keys = client_keys(cfg)
    if not keys:
        raise SourceError(f"{where}: {no_keys(cfg)}")
    try:
        async with asyncio.timeout(cfg.connect_timeout):
            sock = None if tunnel else await _dial(host, port)
            return await asyncssh.connect(
                host,
                port=port,
                sock=sock,
                username=user,
                known_hosts=str(cfg.known_hosts),
                client_keys=[str(k) for k in keys],
                # A passphrase-protected default key is skipped, as ssh would without an agent.
                ignore_encrypted=not cfg.client_keys,
                # Keys only: a watcher never types passwords, and agents differ per machine.
                agent_path=None,
                password=None,
                kbdint_auth=False,
                tunnel=tunnel or (),
                client_factory=(lambda: watch) if watch is not None else None,
                encryption_algs=CIPHERS,
                keepalive_interval=cfg.keepalive_interval,
                keepalive_count_max=keepalive_count_max(cfg.keepalive_interval),
                connect_timeout=cfg.connect_timeout,
                config=None,  # ~/.ssh/config must not change what the watcher trusts
            )
    except asyncssh.HostKeyNotVerifiable:
        raise HostKeyError(_host_key_reason(cfg, host, port, where)) from None
    except asyncssh.PermissionDenied:
        tried = ", ".join(str(k) for k in keys)
        raise SourceError(
            f"{where}: authentication failed with {tried} (is the public key in authorized_keys?)"
        ) from None
    except TimeoutError:
        raise SourceError(f"{where}: no SSH answer within {cfg.connect_timeout:g}s (timeout)") from None
    except ConnectionRefusedError:
        raise SourceError(f"{where}: connection refused (is sshd running on port {port}?)") from None
    except asyncssh.Error as exc:
        raise SourceError(f"{where}: SSH error: {exc.reason}") from None
    except asyncssh.KeyImportError as exc:
        raise SourceError(f"{where}: cannot load client_keys: {exc}") from None
    except OSError as exc:  # also a known_hosts or key file that cannot be read: name it
        about = f" ({exc.filename})" if exc.filename else ""
        raise SourceError(f"{where}: {exc.strerror or exc}{about}") from None


SYN_PATIENCE = 2.0
"""Seconds a TCP handshake may take before it is tried again from scratch. A connect left
pending waits for the kernel's SYN retransmissions (1, 2, 4, 8 s apart): after a network
outage a fresh SYN is answered seconds sooner."""


async def _dial(host: str, port: int) -> socket.socket:
    """A TCP connection to `host`, its addresses tried in turn, round after round while any of
    them does not answer (the caller's timeout ends that); OSError when all refuse or fail."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    while True:
        errors: list[OSError] = []
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                async with asyncio.timeout(SYN_PATIENCE):
                    await loop.sock_connect(sock, address)
            except TimeoutError:
                sock.close()  # no answer yet: another round
                continue
            except BaseException as exc:
                sock.close()
                if not isinstance(exc, OSError):
                    raise
                errors.append(exc)
                continue
            return sock
        if len(errors) == len(infos):
            raise errors[-1]


def trust_problems(cfg: SshSettings, key: str) -> list[str]:
    """`check-config`: the known_hosts file and client keys load and there is a key to offer
    (`key` prefixes each problem)."""
    problems = []
    if cfg.known_hosts is not None:
        try:
            asyncssh.read_known_hosts(str(cfg.known_hosts))
        except (OSError, ValueError) as exc:
            problems.append(f"{key}.known_hosts: cannot use {cfg.known_hosts}: {_file_reason(exc)}")
    for j, path in enumerate(cfg.client_keys):
        try:
            asyncssh.read_private_key(str(path))
        except (OSError, asyncssh.KeyImportError, ValueError) as exc:
            problems.append(f"{key}.client_keys[{j}]: cannot use {path}: {_file_reason(exc)}")
    if not client_keys(cfg):
        problems.append(f"{key}.client_keys: {no_keys(cfg)}")
    return problems


def _file_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _host_key_reason(cfg: SshSettings, host: str, port: int, where: str) -> str:
    """Tell a changed key (possible interception) from a host missing in known_hosts."""
    try:
        known = asyncssh.read_known_hosts(str(cfg.known_hosts))
        trusted = known.match(host, "", port)[0]
    except (OSError, ValueError) as exc:
        return f"{where}: cannot read known_hosts {cfg.known_hosts}: {exc}"
    if trusted:
        return (
            f"{where}: HOST KEY MISMATCH: the key differs from the one in {cfg.known_hosts} "
            "(reinstalled, or someone in between); fix known_hosts after checking"
        )
    return f"{where}: unknown host key: {host} is not in {cfg.known_hosts}; add its key there"
