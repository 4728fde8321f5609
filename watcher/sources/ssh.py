"""SSH connections to gateways: host keys always checked, failures turned into one-line reasons.

`connect()` is the only entry point; the journal source and the snapshot helper
both use it, so a gateway is reached the same way for following and collecting.
Host keys are checked against the configured known_hosts and nothing else:
there is no option to accept an unknown key, on purpose.

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
from pathlib import Path

import asyncssh

from watcher.config import JournalSourceConfig
from watcher.errors import HostKeyError, SourceError

log = logging.getLogger(__name__)

DEAD_LINK_BOUND = 30.0
"""Seconds within which a silent, dead link must be noticed (keepalive_interval x count_max)."""


def keepalive_count_max(interval: float) -> int:
    """Unanswered keepalives tolerated so that interval x count stays within DEAD_LINK_BOUND."""
    return max(1, math.floor(DEAD_LINK_BOUND / interval))


DEFAULT_IDENTITIES = ("id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_dsa")
"""OpenSSH's default IdentityFile list (ssh_config(5)), in its order."""


def user_for(cfg: JournalSourceConfig, host: str) -> str:
    """The login for `host`: its host_users entry, else `user`, else the local user's name."""
    return cfg.host_users.get(host) or cfg.user or _local_user().pw_name


def client_keys(cfg: JournalSourceConfig) -> list[Path]:
    """The keys offered: `client_keys`, else those of OpenSSH's default identity files that exist."""
    if cfg.client_keys:
        return list(cfg.client_keys)
    ssh_dir = Path(_local_user().pw_dir) / ".ssh"
    return [ssh_dir / name for name in DEFAULT_IDENTITIES if (ssh_dir / name).is_file()]


def no_keys(cfg: JournalSourceConfig) -> str:
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


async def connect(cfg: JournalSourceConfig, host: str) -> asyncssh.SSHClientConnection:
    """An authenticated connection to `host`; raises SourceError with a reason a user can act on.

    A `proxy_jump` host is reached with the same known_hosts and keys (asyncssh's own
    string tunnels would use ~/.ssh instead) and is closed with the connection.
    """
    if cfg.known_hosts is None:
        raise SourceError(f"{host}: no known_hosts configured; host keys are always checked")
    user = user_for(cfg, host)
    if cfg.proxy_jump is None:
        return await _open(cfg, host, cfg.port, user, None)
    jump_user, _, jump_host = cfg.proxy_jump.rpartition("@")
    name, colon, port = jump_host.rpartition(":")
    jump_host, jump_port = (name, int(port)) if colon and port.isdigit() else (jump_host, 22)
    jump = await _open(cfg, jump_host, jump_port, jump_user or user, None)
    try:
        conn = await _open(cfg, host, cfg.port, user, jump)
    except BaseException:
        jump.close()
        raise
    conn.set_tunnel(jump)  # closing the connection closes the jump host's too
    return conn


async def _open(
    cfg: JournalSourceConfig,
    host: str,
    port: int,
    user: str,
    tunnel: asyncssh.SSHClientConnection | None,
) -> asyncssh.SSHClientConnection:
    where = f"{user}@{host}:{port}" + (" (via proxy_jump)" if tunnel else "")
    keys = client_keys(cfg)
    if not keys:
        raise SourceError(f"{where}: {no_keys(cfg)}")
    try:
        async with asyncio.timeout(cfg.connect_timeout):
            return await asyncssh.connect(
                host,
                port=port,
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
    except OSError as exc:
        raise SourceError(f"{where}: {exc.strerror or exc}") from None


def _host_key_reason(cfg: JournalSourceConfig, host: str, port: int, where: str) -> str:
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
