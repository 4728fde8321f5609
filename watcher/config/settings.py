"""Configuration: a TOML file, overridden key by key by `WATCHER_SECTION__KEY` variables.

`load()` is the only entry point. Every problem is reported at once, one line
each, naming the key as the user wrote it (`sources[2].known_hosts: ...`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from watcher.config.alerts import AlertmanagerConfig
from watcher.config.base import Model, PositiveDuration
from watcher.config.notify import NotifyConfig
from watcher.config.rules import RuleConfig
from watcher.config.sources import SourceConfig
from watcher.errors import ConfigError

DEFAULT_CONFIG = Path("config/watcher.toml")


class HttpConfig(Model):
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


class ResolutionConfig(Model):
    window: PositiveDuration = 900.0
    blind_after: PositiveDuration = 30.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WATCHER_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    state_dir: Path = Path("/var/lib/novavms-watcher")
    max_line_bytes: int = Field(default=1 << 20, ge=1024)
    http: HttpConfig = HttpConfig()
    resolution: ResolutionConfig = ResolutionConfig()
    notify: NotifyConfig = NotifyConfig()
    alertmanager: AlertmanagerConfig = AlertmanagerConfig()
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
