"""Names: of sources and their sub-sources, of incidents, and of who did something.

One home for the rules every module applies to names, so the engine, the rules, the
snapshot planner, the API and the CLI cannot drift apart:

- a source is `name` (a configured source) or `name/leaf` (a sub-source: a journal
  source's host, a docker source's container); a scope is a list of shell-style globs
  matched against those names, case-sensitively;
- an incident id is safe in URLs, file names and metric labels.
"""

from __future__ import annotations

import fnmatch
import getpass
import os
import re
import socket
from collections.abc import Iterable, Sequence

SEPARATOR = "/"
INCIDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""Use with fullmatch: `$` would also accept a trailing newline."""


def in_scope(name: str, globs: Iterable[str]) -> bool:
    """Whether any glob of a scope (or of a rule's `sources`) matches the source `name`."""
    return any(fnmatch.fnmatchcase(name, glob) for glob in globs)


def duplicates(section: str, names: Sequence[object]) -> list[str]:
    """One problem per name used again in a config list: `sources[3].name: 'edge' is used twice`.
    Names that are not strings (raw TOML that failed validation) are someone else's problem."""
    seen: set[str] = set()
    out = []
    for i, name in enumerate(names):
        if not isinstance(name, str):
            continue
        if name in seen:
            out.append(f"{section}[{i}].name: {name!r} is used twice")
        seen.add(name)
    return out


def subsource(parent: str, leaf: str) -> str:
    """`gw/gw-berlin-01`, `cloud/api`: the sub-source `leaf` of the configured source `parent`."""
    return f"{parent}{SEPARATOR}{leaf}"


def parent(name: str) -> str:
    """The configured source a (sub-)source name belongs to."""
    return name.partition(SEPARATOR)[0]


def check_incident_id(value: object, what: str = "incident id") -> str:
    """`value` if it is a valid incident id; ValueError with the sentence a user sees otherwise."""
    if not isinstance(value, str) or not INCIDENT_ID.fullmatch(value):
        raise ValueError(
            f"{what} must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter "
            f"or digit (such as P1-2026-11-27-gateways), got {value!r}"
        )
    return value


def default_user() -> str:
    """`user@host`: who ran a command, for the timeline and snapshot manifests."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry, e.g. in a bare container
        name = f"uid{os.getuid()}"
    return f"{name}@{socket.gethostname()}"
