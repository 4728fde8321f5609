"""Configuration: a TOML file, overridden key by key by `WATCHER_SECTION__KEY` variables.

`load()` reads the whole of it (`load_rules()`, in rules.py, the rules alone); loading.py
reports every problem at once, one line each, naming the key as the user wrote it
(`sources[2].known_hosts: ...`); environment.py reads the variables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import ConfigDict, TypeAdapter, ValidationError, field_validator, model_validator

from watcher.config.alerts import AlertmanagerConfig
from watcher.config.base import Duration, Model, Window, within
from watcher.config.endpoint import DEFAULT_CONFIG, DEFAULT_LISTEN, DEFAULT_STATE_DIR, check_listen, read_toml
from watcher.config.loading import column, load_model
from watcher.config.notify import NotifyConfig
from watcher.config.rules import RuleSettings, raw_rule_problems
from watcher.config.runbook import RunbookConfig
from watcher.config.sites import check_api_url, check_site_name
from watcher.config.sources import SourceConfig
from watcher.errors import ConfigError
from watcher.names import duplicates

__all__ = ["DEFAULT_CONFIG", "HttpConfig", "ResolutionConfig", "RetentionConfig", "Settings", "load"]


class HttpConfig(Model):
    listen: str = DEFAULT_LISTEN

    @field_validator("listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        return check_listen(v)

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class ResolutionConfig(Model):
    window: Window = 900.0
    blind_after: Annotated[float, within("1s", "1h")] = 30.0
    skew_tolerance: Annotated[float, within("1s", "1h")] = 60.0
    """A live record stamped further than this from its arrival counts at its arrival."""


DAY = 86400.0


class RetentionConfig(Model):
    """How long the state_dir keeps what is no longer needed; 0 keeps it forever."""

    snapshots: Duration = 30 * DAY
    """Evidence archives, by age."""
    sent_announcements: Duration = 7 * DAY
    """Outbox rows delivered this long ago (dead-lettered ones stay as a record)."""
    closed_incidents: Duration = 90 * DAY
    """Incidents closed this long ago, with their mitigations and timeline."""
    closed_metrics: Annotated[float, within("0s", "1d")] = 300.0
    """A closed incident's metric series stay this long, so the last state is scraped."""


class SiteConfig(Model):
    """Another watcher of the fleet (`[[sites]]`), for `--all-sites` (watcher.config.sites)."""

    name: str
    api_url: str
    token_file: Path

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_site_name(v)

    @field_validator("api_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_api_url(v)


class Settings(RuleSettings):
    model_config = ConfigDict(extra="forbid", frozen=True)  # RuleSettings reads part of the file

    state_dir: Path = DEFAULT_STATE_DIR
    site: str = ""
    """This watcher's site, in `watcher_build_info{site}`; empty for a single watcher."""
    http: HttpConfig = HttpConfig()
    resolution: ResolutionConfig = ResolutionConfig()
    notify: NotifyConfig = NotifyConfig()
    alertmanager: AlertmanagerConfig = AlertmanagerConfig()
    retention: RetentionConfig = RetentionConfig()
    runbook: RunbookConfig = RunbookConfig()
    sources: list[SourceConfig] = []
    sites: list[SiteConfig] = []

    @field_validator("site")
    @classmethod
    def _site(cls, v: str) -> str:
        return check_site_name(v) if v else v

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        problems = _cross_problems(
            [s.name for s in self.sources],
            [r.name for r in self.rules],
            [s.rules or [] for s in self.sources],
            [s.name for s in self.sites],
        )
        if problems:
            raise ValueError("\n".join(problems))
        return self


def _cross_problems(
    sources: Sequence[object],
    rules: Sequence[object],
    selected: Sequence[object],
    sites: Sequence[object],
) -> list[str]:
    """Names used twice, and source rule selections naming no rule (of models, or of raw TOML);
    the rules' own checks are RuleSettings'."""
    problems = duplicates("sources", sources) + duplicates("sites", sites)
    known = {name for name in rules if isinstance(name, str)}
    for i, names in enumerate(selected):
        for name in names if isinstance(names, list) else []:
            if isinstance(name, str) and name not in known:
                problems.append(f"sources[{i}].rules: no rule named {name!r}")
    return problems


def _raw_cross_problems(data: Mapping[str, Any]) -> list[str]:
    """The cross-checks on the TOML as written, for when a field error kept pydantic from reaching them."""
    return raw_rule_problems(data) + _cross_problems(
        column(data, "sources", "name"),
        column(data, "rules", "name"),
        column(data, "sources", "rules"),
        column(data, "sites", "name"),
    )


def load(path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Read `path` (TOML), apply `overrides` then the environment, validate; raise ConfigError
    listing every problem."""
    return load_model(Settings, path, overrides, _raw_cross_problems)


def valid_sources(path: Path | None) -> list[tuple[int, SourceConfig]]:
    """The `[[sources]]` of `path` that are valid on their own (the environment aside), by position.

    What `check-config` can still probe when some other part of the config is wrong.
    """
    try:
        listed = (read_toml(path) if path is not None else {}).get("sources")
    except ConfigError:
        return []
    adapter: TypeAdapter[SourceConfig] = TypeAdapter(SourceConfig)
    out: list[tuple[int, SourceConfig]] = []
    for i, raw in enumerate(listed if isinstance(listed, list) else []):
        try:
            out.append((i, adapter.validate_python(raw)))
        except ValidationError:
            continue
    return out
