"""SSH connections to gateways: host keys always checked, failures turned into one-line reasons.

`connect()` is the only entry point; the journal source and the snapshot helper
both use it, so a gateway is reached the same way for following and collecting.
Host keys are checked against the configured known_hosts and nothing else:
there is no option to accept an unknown key, on purpose.
"""

from __future__ import annotations

import asyncio
import logging
import math

import asyncssh

from watcher.config import JournalSourceConfig
from watcher.errors import SourceError

log = logging.getLogger(__name__)

DEAD_LINK_BOUND = 30.0
"""Seconds within which a silent, dead link must be noticed (keepalive_interval x count_max)."""


def keepalive_count_max(interval: float) -> int:
    """Unanswered keepalives tolerated so that interval x count stays within DEAD_LINK_BOUND."""
    return max(1, math.floor(DEAD_LINK_BOUND / interval))


def user_for(cfg: JournalSourceConfig, host: str) -> str | None:
    """The login for `host`: its host_users entry, else `user` (None: the local user's name)."""
    return cfg.host_users.get(host, cfg.user)


async def connect(cfg: JournalSourceConfig, host: str) -> asyncssh.SSHClientConnection:
    """An authenticated connection to `host`; raises SourceError with a reason a user can act on."""
    if cfg.known_hosts is None:
        raise SourceError(f"{host}: no known_hosts configured; host keys are always checked")
    user = user_for(cfg, host)
    where = f"{user + '@' if user else ''}{host}:{cfg.port}"
    try:
        async with asyncio.timeout(cfg.connect_timeout):
            return await asyncssh.connect(
                host,
                port=cfg.port,
                username=user,
                known_hosts=str(cfg.known_hosts),
                client_keys=[str(k) for k in cfg.client_keys] or None,
                # Keys only: a watcher never types passwords, and agents differ per machine.
                agent_path=None,
                password=None,
                kbdint_auth=False,
                tunnel=cfg.proxy_jump,
                keepalive_interval=cfg.keepalive_interval,
                keepalive_count_max=keepalive_count_max(cfg.keepalive_interval),
                connect_timeout=cfg.connect_timeout,
                config=None,  # ~/.ssh/config must not change what the watcher trusts
            )
    except asyncssh.HostKeyNotVerifiable:
        raise SourceError(_host_key_reason(cfg, host, where)) from None
    except asyncssh.PermissionDenied:
        keys = ", ".join(str(k) for k in cfg.client_keys) or "the default keys"
        raise SourceError(
            f"{where}: authentication failed with {keys} (is the public key in authorized_keys?)"
        ) from None
    except TimeoutError:
        raise SourceError(f"{where}: no SSH answer within {cfg.connect_timeout:g}s (timeout)") from None
    except ConnectionRefusedError:
        raise SourceError(f"{where}: connection refused (is sshd running on port {cfg.port}?)") from None
    except asyncssh.Error as exc:
        raise SourceError(f"{where}: SSH error: {exc.reason}") from None
    except OSError as exc:
        raise SourceError(f"{where}: {exc.strerror or exc}") from None


def _host_key_reason(cfg: JournalSourceConfig, host: str, where: str) -> str:
    """Tell a changed key (possible interception) from a host missing in known_hosts."""
    try:
        known = asyncssh.read_known_hosts(str(cfg.known_hosts))
        trusted = known.match(host, "", cfg.port)[0]
    except (OSError, ValueError) as exc:
        return f"{where}: cannot read known_hosts {cfg.known_hosts}: {exc}"
    if trusted:
        return (
            f"{where}: HOST KEY MISMATCH: the key differs from the one in {cfg.known_hosts} "
            "(reinstalled, or someone in between); fix known_hosts after checking"
        )
    return f"{where}: unknown host key: {host} is not in {cfg.known_hosts}; add its key there"
