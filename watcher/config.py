"""Configuration: a TOML file, overridden key by key by `WATCHER_SECTION__KEY` variables.

`load()` is the only entry point. Every problem is reported at once, one line
each, naming the key as the user wrote it (`sources[2].known_hosts: ...`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from watcher.classify.lines import Format
from watcher.errors import ConfigError
from watcher.events import ANNOUNCED
from watcher.names import in_scope
from watcher.notify import messages
from watcher.times import parse_duration, positive_duration

Duration = Annotated[float, BeforeValidator(parse_duration)]

PositiveDuration = Annotated[float, BeforeValidator(positive_duration)]
DEFAULT_CONFIG = Path("config/watcher.toml")
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpConfig(_Model):
    listen: str = "127.0.0.1:9108"

    @field_validator("listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected HOST:PORT such as 127.0.0.1:9108, got {v!r}")
        return v

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class ResolutionConfig(_Model):
    window: PositiveDuration = 900.0
    blind_after: PositiveDuration = 30.0


class NotifyConfig(_Model):
    incident_webhook: SecretStr | None = None
    incident_webhook_file: Path | None = None
    oncall_webhook: SecretStr | None = None
    oncall_webhook_file: Path | None = None
    heartbeat: Duration = 900.0
    format: Literal["slack", "json"] = "slack"
    """slack: Block Kit with a text fallback; json: a generic document for other receivers."""
    routes: dict[str, list[Literal["incident", "oncall"]]] = {}
    """Kind -> channels, over the defaults (incident kinds to incident, heartbeat to oncall)."""
    templates: dict[str, str] = {}
    """Kind -> headline, `string.Template` fields such as $incident, $at, $source."""
    send_interval: PositiveDuration = 1.0
    retry_initial: PositiveDuration = 1.0
    retry_max: PositiveDuration = 60.0
    timeout: PositiveDuration = 10.0
    reset_every: Duration = 60.0
    shutdown_grace: Duration = 2.0

    @field_validator("routes")
    @classmethod
    def _known_kinds(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(v) - set(ANNOUNCED))
        if unknown:
            raise ValueError(f"no announcement kind {', '.join(unknown)}; one of {', '.join(ANNOUNCED)}")
        return v

    @field_validator("templates")
    @classmethod
    def _valid_templates(cls, v: dict[str, str]) -> dict[str, str]:
        for kind, text in v.items():
            messages.check_template(kind, text)
        return v

    def webhooks(self) -> dict[str, str]:
        """Channel -> URL, for the channels that have one."""
        urls = {"incident": self.incident_webhook, "oncall": self.oncall_webhook}
        return {channel: url.get_secret_value() for channel, url in urls.items() if url is not None}

    @model_validator(mode="after")
    def _read_secret_files(self) -> NotifyConfig:
        for channel in ("incident", "oncall"):
            path: Path | None = getattr(self, f"{channel}_webhook_file")
            if path is None:
                continue
            if getattr(self, f"{channel}_webhook") is not None:
                raise ValueError(f"set {channel}_webhook or {channel}_webhook_file, not both")
            try:
                url = path.read_text().strip()
            except OSError as exc:
                raise ValueError(f"{channel}_webhook_file: cannot read {path}: {exc.strerror}") from None
            object.__setattr__(self, f"{channel}_webhook", SecretStr(url))
        for channel, url in self.webhooks().items():
            if not re.match(r"^https?://[^/\s]+", url):
                # Not quoted back: the value is a secret.
                raise ValueError(f"{channel}_webhook: expected an http:// or https:// URL")
        return self


class _SourceBase(_Model):
    name: str = Field(pattern=_NAME)
    rules: list[str] | None = None
    """Names of the rules that apply to this source; None means every rule."""


class DockerSourceConfig(_SourceBase):
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


class JournalSourceConfig(_SourceBase):
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
    keepalive_interval: PositiveDuration = 10.0
    """Also the longest silence (no heartbeat) before a connected gateway counts as unreachable."""
    connect_timeout: PositiveDuration = 15.0
    identifier: str | None = None
    """Follow this SYSLOG_IDENTIFIER instead of `unit` (entries logged without a unit)."""
    reconnect_min: PositiveDuration = 0.5
    reconnect_max: PositiveDuration = 3.0
    """Backoff cap: a gateway back on the network is caught up within about this plus a few seconds."""
    max_handshakes: int = Field(default=16, ge=1)
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
            raise ValueError(f"host_users names hosts not in hosts: {', '.join(sorted(unknown))}")
        return self


class FileSourceConfig(_SourceBase):
    kind: Literal["file"]
    path: Path
    format: Format = "auto"
    timestamp_field: str | None = None
    timestamp_format: str | None = None
    """strptime format of the timestamp field, when it is not RFC 3339 or epoch seconds."""


SourceConfig = Annotated[
    DockerSourceConfig | JournalSourceConfig | FileSourceConfig, Field(discriminator="kind")
]


class RuleConfig(_Model):
    """An error rule (or, under [[ignore]], a rule whose matches are never errors).

    Either `regex` over the line's text, or `field` with exact `values`
    (case-insensitive unless `case_sensitive`) and/or a numeric `min`/`max`
    range, inclusive.
    """

    name: str = Field(pattern=_NAME)
    regex: str | None = None
    field: str | None = None
    values: list[str] | None = None
    min: float | None = None
    max: float | None = None
    case_sensitive: bool = False
    sources: list[str] = ["*"]
    """Globs of source names the rule applies to."""

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> RuleConfig:
        if (self.regex is None) == (self.field is None):
            raise ValueError("set either regex or field")
        if self.field is not None and self.values is None and self.min is None and self.max is None:
            raise ValueError("a field rule needs values, min or max")
        if self.regex is not None and (
            self.values is not None or self.min is not None or self.max is not None
        ):
            raise ValueError("values, min and max belong to field rules, not regex rules")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is greater than max ({self.max:g})")
        return self

    def applies_to(self, source: str) -> bool:
        return in_scope(source, self.sources)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WATCHER_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    state_dir: Path = Path("/var/lib/novavms-watcher")
    max_line_bytes: int = Field(default=1 << 20, ge=1024)
    http: HttpConfig = HttpConfig()
    resolution: ResolutionConfig = ResolutionConfig()
    notify: NotifyConfig = NotifyConfig()
    sources: list[SourceConfig] = []
    rules: list[RuleConfig] = []
    ignore: list[RuleConfig] = []

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file arrives as init kwargs; the environment must win over it.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        problems: list[str] = []
        problems += _duplicates("sources", [s.name for s in self.sources])
        problems += _duplicates("rules", [r.name for r in self.rules])
        problems += _duplicates("ignore", [r.name for r in self.ignore])
        known = {r.name for r in self.rules}
        for i, src in enumerate(self.sources):
            for name in src.rules or []:
                if name not in known:
                    problems.append(f"sources[{i}].rules: no rule named {name!r}")
        if problems:
            raise ValueError("\n".join(problems))
        return self


def _duplicates(section: str, names: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for i, name in enumerate(names):
        if name in seen:
            out.append(f"{section}[{i}].name: {name!r} is used twice")
        seen.add(name)
    return out


def load(path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Read `path` (TOML), apply the environment, validate; raise ConfigError listing every problem."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError([f"{path}: no such file"]) from None
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    data.update(overrides or {})
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_problems(exc)) from None


def _problems(exc: ValidationError) -> list[str]:
    out: list[str] = []
    for err in exc.errors(include_url=False):
        loc = _format_loc(err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "union_tag_invalid":
            msg = "kind must be one of docker, journal, file"
        elif err["type"] == "union_tag_not_found":
            msg = "missing kind (docker, journal or file)"
        for line in msg.splitlines():
            if re.match(r"^\w+\[\d+\]", line):  # a cross-check that names its own key
                out.append(line)
                continue
            key = re.match(r"^([a-z_]+): (.+)$", line)  # a model check naming one field
            where = f"{loc}.{key.group(1)}" if key and loc else loc
            text = key.group(2) if key and loc else line
            out.append(f"{where}: {text}" if where else text)
    return out


def _format_loc(loc: Sequence[int | str]) -> str:
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif i > 0 and loc[0] == "sources" and i == 2 and item in ("docker", "journal", "file"):
            continue  # the discriminator tag pydantic inserts into the path
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts)
