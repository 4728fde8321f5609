"""The `[[sources]]` entries: one model per kind, told apart by `kind`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from watcher.config.base import NAME, Format, Model, within


class SourceBase(Model):
    name: str = Field(pattern=NAME)
    rules: list[str] | None = None
    """Names of the rules that apply to this source; None means every rule."""


class DockerSourceConfig(SourceBase):
    kind: Literal["docker"]
    docker_host: str = "unix:///var/run/docker.sock"
    compose_project: str | None = None
    containers: list[str] = []
    labels: dict[str, str] = {}

    @field_validator("docker_host")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not re.match(r"^(unix|tcp|ssh)://.+", v):
            raise ValueError(f"expected unix://, tcp:// or ssh:// URL, got {v!r}")
        return v

    @model_validator(mode="after")
    def _selector(self) -> DockerSourceConfig:
        if not (self.compose_project or self.containers or self.labels):
            raise ValueError("name the containers: set compose_project, containers or labels")
        return self


class JournalSourceConfig(SourceBase):
    kind: Literal["journal"]
    hosts: list[str] = []
    """Empty: read the local journal with a local journalctl."""
    unit: str = "novavms-gateway"
    user: str | None = None
    host_users: dict[str, str] = {}
    port: int = Field(default=22, gt=0, lt=65536)
    known_hosts: Path | None = None
    client_keys: list[Path] = []
    proxy_jump: str | None = None
    keepalive_interval: Annotated[float, within("1s", "5m")] = 10.0
    """Also the longest silence (no heartbeat) before a connected gateway counts as unreachable."""
    connect_timeout: Annotated[float, within("100ms", "5m")] = 15.0
    identifier: str | None = None
    """Follow this SYSLOG_IDENTIFIER instead of `unit` (entries logged without a unit)."""
    reconnect_min: Annotated[float, within("10ms", "1h")] = 0.5
    reconnect_max: Annotated[float, within("10ms", "1h")] = 3.0
    """Backoff cap: a gateway back on the network is caught up within about this plus a few seconds."""
    max_handshakes: int = Field(default=16, ge=1, le=1024)
    """SSH handshakes in flight at once for this source's hosts; starts are also spread out."""

    @field_validator("known_hosts", mode="before")
    @classmethod
    def _no_disabling(cls, v: Any) -> Any:
        if v is False or (isinstance(v, str) and v.strip().lower() in ("", "none", "off", "no", "false")):
            raise ValueError("host key checking cannot be disabled; give a known_hosts file")
        return v

    @model_validator(mode="after")
    def _remote_needs_trust(self) -> JournalSourceConfig:
        if self.reconnect_min > self.reconnect_max:
            raise ValueError("reconnect_min: longer than reconnect_max")
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


SourceConfig = Annotated[
    DockerSourceConfig | JournalSourceConfig | FileSourceConfig, Field(discriminator="kind")
]
