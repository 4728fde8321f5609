"""A config model from the TOML file, the given overrides and the environment, or every problem.

Every problem is reported at once, one line each, naming the key as the user wrote it
(`sources[2].known_hosts: ...`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from watcher.config import environment
from watcher.config.endpoint import read_toml
from watcher.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def load_model(
    model: type[M],
    path: Path | None,
    overrides: Mapping[str, Any] | None,
    raw_problems: Callable[[Mapping[str, Any]], list[str]],
) -> M:
    """`model` from `path` (TOML), `overrides`, then the environment; raise ConfigError listing
    every problem. `raw_problems` are the model's own checks on the data as written, for when a
    field error kept pydantic from reaching them."""
    data = environment.merge(read_toml(path) if path is not None else {}, overrides or {})
    given, unread = environment.overrides(model, os.environ)
    data = environment.merge(data, given)
    try:
        validated = model(**data)
    except ValidationError as exc:
        problems = unread + _problems(exc)
        raise ConfigError(problems + [p for p in raw_problems(data) if p not in problems]) from None
    if unread:
        raise ConfigError(unread)
    return validated


def column(data: Mapping[str, Any], section: str, key: str) -> list[object]:
    """`key` of each table of the list `section` as written (None where there is none)."""
    items = data.get(section)
    rows = items if isinstance(items, list) else []
    return [row.get(key) if isinstance(row, dict) else None for row in rows]


def _problems(exc: ValidationError) -> list[str]:
    out: list[str] = []
    for err in exc.errors(include_url=False):
        loc = _format_loc(err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "union_tag_invalid":
            given = repr(err.get("ctx", {}).get("tag", ""))
            given = given if len(given) <= 40 else given[:40] + "…"
            msg = f"kind: {given} is not a source kind; use docker, journal or file"
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
        elif re.fullmatch(r"[A-Za-z0-9_-]+", item):
            parts.append(("." if parts else "") + item)
        else:  # a quoted TOML key may hold anything, a newline included: shown, not obeyed
            parts.append(f"[{json.dumps(item)[:40]}]")
    return "".join(parts)
