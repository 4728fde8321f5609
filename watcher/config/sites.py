"""The other watchers of a fleet: `[[sites]]` (name, API URL, token file), read fast.

Past one machine, one watcher runs per site with disjoint sources and the same
incident ids; `watcher incident ... --all-sites` and `watcher status --all-sites`
talk to every site listed here. The CLI reads this list straight from the TOML
file, without pydantic (as `endpoint.py` reads the daemon's address), so those
commands start fast; `Settings` validates the same keys with the same checks for
`check-config`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watcher.config.endpoint import read_toml
from watcher.errors import ConfigError
from watcher.names import duplicates

SITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""What a site may be called (fullmatch): safe as a Prometheus label value and in a terminal."""
_URL = re.compile(r"http://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})/?")
"""fullmatch: `$` would also accept a trailing newline."""
KEYS = ("name", "api_url", "token_file")


def check_site_name(value: str) -> str:
    if not SITE_NAME.fullmatch(value):
        raise ValueError(f"a site name is letters, digits, '_', '.' and '-', got {value!r}")
    return value


def check_api_url(value: str) -> str:
    """`value` if it is `http://HOST:PORT` (no path); ValueError with the sentence a user reads."""
    match = _URL.fullmatch(value)
    if match is None or not 0 < int(match.group(2)) < 65536:
        hint = " (the daemon's API is plain HTTP: reach a remote site through a tunnel or VPN)"
        raise ValueError(
            f"expected http://HOST:PORT such as http://10.1.0.5:9108, got {value!r}"
            + (hint if value.startswith("https:") else "")
        )
    return value


@dataclass(frozen=True, slots=True)
class Site:
    """One watcher of the fleet, as the CLI reaches it."""

    name: str
    api_url: str
    token_file: Path
    config: Path
    """The config file that lists it, for the sentence when it cannot be reached."""

    @property
    def listen(self) -> str:
        """`HOST:PORT` of its API."""
        match = _URL.fullmatch(self.api_url)
        if match is None:  # checked when read
            raise ValueError(self.api_url)
        return f"{match.group(1)}:{match.group(2)}"

    def token_path(self) -> Path:
        return self.token_file

    def tried(self) -> str:
        return f"site {self.name} at {self.api_url} (token_file {self.token_file}, listed in {self.config})"


def read_sites(config: Path) -> list[Site]:
    """The `[[sites]]` of `config`, checked; ConfigError naming every problem."""
    return parse_sites(read_toml(config).get("sites", []), config)


def parse_sites(entries: object, config: Path) -> list[Site]:
    if not isinstance(entries, list):
        raise ConfigError(["sites: expected a list of [[sites]] tables"])
    problems: list[str] = []
    sites: list[Site] = []
    for i, entry in enumerate(entries):
        where = f"sites[{i}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: expected a table with {', '.join(KEYS)}")
            continue
        found = _site(entry, where, config, problems)
        if found is not None:
            sites.append(found)
    if not problems:
        problems += duplicates("sites", [s.name for s in sites])
    if problems:
        raise ConfigError(problems)
    return sites


def _site(entry: Mapping[str, Any], where: str, config: Path, problems: list[str]) -> Site | None:
    before = len(problems)
    problems += [f"{where}.{key}: unknown key" for key in entry if key not in KEYS]
    values: dict[str, str] = {}
    for key in KEYS:
        value = entry.get(key)
        if not isinstance(value, str) or not value:
            problems.append(f"{where}.{key}: required (a string)")
        else:
            values[key] = value
    for key, check in (("name", check_site_name), ("api_url", check_api_url)):
        if key in values:
            try:
                check(values[key])
            except ValueError as exc:
                problems.append(f"{where}.{key}: {exc}")
    if len(problems) > before:
        return None
    return Site(values["name"], values["api_url"], Path(values["token_file"]), config)
