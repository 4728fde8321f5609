"""The `[[sources]]` entries: one model per kind, told apart by `kind`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from watcher import patterns
from watcher.config.base import NAME, Format, Model, PositiveDuration, within
from watcher.config.rules import MAX_REGEX


class SourceBase(Model):
    name: str = Field(pattern=NAME)
    rules: list[str] | None = None
    """Names of the rules that apply to this source; None means every rule."""
    quiet_ok: bool = False
    """An error-only log: a window without any record of it may still resolve (DESIGN §2.1)."""
    expect_every: PositiveDuration | None = None
    """At least one record (matching expect_match, when set) this often; else a gap from the last."""
    expect_match: str | None = Field(default=None, max_length=MAX_REGEX)
    """The records that meet expect_every (a regex over the message), e.g. 'heartbeat ok'."""
    impact_field: str | None = Field(default=None, min_length=1)
    """Whom an error record hit: a JSON, logfmt or journald field such as org_id (dotted for
    nested JSON); the runbook's impact counts its distinct values."""
    impact_regex: str | None = Field(default=None, max_length=MAX_REGEX)
    """The same from the message, for text logs: a regex with one group, e.g. 'org=(\\S+)'."""

    @field_validator("expect_match")
    @classmethod
    def _expect_compiles(cls, v: str | None) -> str | None:
        if v is not None:
            patterns.check(v)  # run on every record of a live source: linear time, as rules are
        return v

    @field_validator("impact_regex")
    @classmethod
    def _one_group(cls, v: str | None) -> str | None:
        if v is not None:
            patterns.check(v)  # run on every error record: linear time, as rules are
            groups = re.compile(v).groups
            if groups != 1:
                raise ValueError(f"needs exactly one group, the org id: (...); it has {groups}")
        return v

    @model_validator(mode="after")
    def _expectation(self) -> SourceBase:
        if self.expect_match is not None and self.expect_every is None:
            raise ValueError("expect_match: needs expect_every (how often a match must come)")
        if self.quiet_ok and self.expect_every is not None:
            raise ValueError("quiet_ok: a source that may stay silent cannot also expect_every")
        if self.impact_field is not None and self.impact_regex is not None:
            raise ValueError("impact_regex: set impact_field or impact_regex, not both")
        return self


class SshSettings(Model):
    """How a host is reached over SSH, the same for journal gateways and ssh:// Docker engines:
    host keys from `known_hosts` only, explicit client keys, no agent, no ~/.ssh/config."""

    port: int = Field(default=22, gt=0, lt=65536)
    known_hosts: Path | None = None
    client_keys: list[Path] = []
    proxy_jump: str | None = None
    keepalive_interval: Annotated[float, within("1s", "5m")] = 10.0
    """Also the longest silence before a connected link counts as lost (the journal's clock
    lines, or anything at all from a Docker engine's host)."""
    connect_timeout: Annotated[float, within("100ms", "5m")] = 15.0

    @field_validator("known_hosts", mode="before")
    @classmethod
    def _no_disabling(cls, v: Any) -> Any:
        if v is False or (isinstance(v, str) and v.strip().lower() in ("", "none", "off", "no", "false")):
            raise ValueError("host key checking cannot be disabled; give a known_hosts file")
        return v


class Backoff(Model):
    reconnect_min: Annotated[float, within("10ms", "1h")] = 0.5
    reconnect_max: Annotated[float, within("10ms", "1h")] = 3.0
    """Backoff cap: a host back on the network is caught up within about this plus a few seconds."""

    @model_validator(mode="after")
    def _ordered(self) -> Backoff:
        if self.reconnect_min > self.reconnect_max:
            raise ValueError("reconnect_min: longer than reconnect_max")
        return self


DOCKER_SOCKET = "/var/run/docker.sock"


@dataclass(frozen=True, slots=True)
class SshLogin:
    """An ssh:// Docker host, `ssh://[user@]host[:port][/path of the engine's socket]`, as
    `docker -H` reads it: where to log in, and the socket there."""

    user: str | None
    host: str
    port: int
    socket: str = DOCKER_SOCKET


_SSH_KEYS = ("known_hosts", "client_keys", "proxy_jump", "keepalive_interval", "connect_timeout", "port")


class DockerSourceConfig(Backoff, SshSettings, SourceBase):
    kind: Literal["docker"]
    docker_host: str = f"unix://{DOCKER_SOCKET}"
    compose_project: str | None = None
    containers: list[str] = []
    labels: dict[str, str] = {}
    one_shot: list[str] = []
    """Compose services or container names that run once and exit (migrations): not running is
    no gap for them, and they may stay silent."""

    @field_validator("docker_host")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not re.match(r"^(unix|tcp|ssh)://.+", v):
            raise ValueError(f"expected unix://, tcp:// or ssh:// URL, got {v!r}")
        if v.startswith("ssh://"):
            url = urlsplit(v)
            try:
                url.port  # noqa: B018 (raises for a port that is not a number)
            except ValueError:
                raise ValueError(f"expected ssh://[user@]host[:port][/socket path], got {v!r}") from None
            if not url.hostname or url.query or url.fragment or url.password is not None:
                raise ValueError(f"expected ssh://[user@]host[:port][/socket path], no password, got {v!r}")
        return v

    @model_validator(mode="after")
    def _selector(self) -> DockerSourceConfig:
        if not (self.compose_project or self.containers or self.labels):
            raise ValueError("name the containers: set compose_project, containers or labels")
        login = self.ssh_login()
        if login is None:
            misplaced = sorted(self.model_fields_set & set(_SSH_KEYS))
            if misplaced:
                raise ValueError(f"{misplaced[0]}: only used with an ssh:// docker_host")
            return self
        if self.known_hosts is None:
            raise ValueError("known_hosts: required for an ssh:// docker_host (host keys are always checked)")
        if "port" in self.model_fields_set and login.port != self.port:
            raise ValueError(f"port: {self.port} differs from the port in docker_host ({login.port})")
        return self

    def ssh_login(self) -> SshLogin | None:
        """The login of an ssh:// host (its port: the URL's, else `port`); None for unix:// and tcp://."""
        if not self.docker_host.startswith("ssh://"):
            return None
        url = urlsplit(self.docker_host)
        assert url.hostname is not None  # checked by _scheme
        socket = url.path if url.path.strip("/") else DOCKER_SOCKET
        return SshLogin(url.username, url.hostname, url.port or self.port, socket)


class JournalSourceConfig(Backoff, SshSettings, SourceBase):
    kind: Literal["journal"]
    hosts: list[str] = []
    """Empty: read the local journal with a local journalctl."""
    unit: str = "novavms-gateway"
    user: str | None = None
    host_users: dict[str, str] = {}
    identifier: str | None = None
    """Follow this SYSLOG_IDENTIFIER instead of `unit` (entries logged without a unit)."""
    max_handshakes: int = Field(default=16, ge=1, le=1024)
    """SSH handshakes in flight at once for this source's hosts; starts are also spread out."""
    liveness_command: str = "systemctl is-active {unit}"
    """Run on the host (over the same connection) at least every keepalive_interval: exit 0 means
    the unit runs, anything else that it does not (its first output line says how). `{unit}` is
    replaced by the unit; "" turns the check off."""

    @model_validator(mode="after")
    def _remote_needs_trust(self) -> JournalSourceConfig:
        if self.hosts and self.known_hosts is None:
            raise ValueError("known_hosts: required for journal sources")
        unknown = set(self.host_users) - set(self.hosts)
        if unknown:
            raise ValueError(f"host_users names hosts not in hosts: {', '.join(map(repr, sorted(unknown)))}")
        return self


class FileSourceConfig(SourceBase):
    kind: Literal["file"]
    path: Path
    format: Format = "auto"
    timestamp_field: str | None = None
    timestamp_format: str | None = None
    """strptime format of the timestamp field, when it is not RFC 3339 or epoch seconds."""
    rotate_wait: PositiveDuration = 5.0
    """After a rename rotation, the old file is still read until it has been idle this long."""


SourceConfig = Annotated[
    DockerSourceConfig | JournalSourceConfig | FileSourceConfig, Field(discriminator="kind")
]
