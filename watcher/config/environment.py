"""`WATCHER_SECTION__KEY` variables: the environment's overrides of the config file, key by key.

A variable names a key of the model being loaded (Settings, or RuleSettings for
`classify`), case-insensitively, `__` stepping into a table (`WATCHER_RESOLUTION__WINDOW=5m`).
A key whose value is a list or a table is given as JSON
(`WATCHER_RULES='[{"name": "panic", "regex": "^panic:"}]'`); any other value is given as
it is, and validated like the file's. Variables that name no key (`WATCHER_CONFIG`, a typo
at the top level) are not config: the CLI reads some of them itself.

This is pydantic-settings' environment source, the one part of it the watcher used; it
cost every start that reads the config 0.15 s of imports (asyncio, argparse, dotenv and
its cloud providers).
"""

from __future__ import annotations

import json
import types
from collections.abc import Mapping
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

PREFIX = "WATCHER_"
NESTED = "__"

_CONTAINERS = (list, tuple, set, frozenset, dict)


def overrides(model: type[BaseModel], environ: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The tables the variables give for `model`, to merge over the file's (`merge`), and
    the variables that could not be read, one line each."""
    out: dict[str, Any] = {}
    problems: list[str] = []
    # Sorted: a table given whole comes before the keys given into it, which then win.
    for variable in sorted(environ, key=str.upper):
        if not variable.upper().startswith(PREFIX):
            continue
        path = variable[len(PREFIX) :].lower().split(NESTED)
        if path[0] not in model.model_fields:
            continue
        value: Any = environ[variable]
        if _is_container(_annotation_at(model, path)):
            try:
                value = json.loads(value)
            except ValueError:
                # The value is not quoted back: it may hold a webhook URL.
                problems.append(
                    f"{variable}: not valid JSON; a list or table set from the environment is written "
                    """as JSON, e.g. WATCHER_RULES='[{"name": "panic", "regex": "^panic:"}]'"""
                )
                continue
        out = merge(out, _nest(path, value))
    return out, problems


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `over`'s keys, tables merged key by key, anything else replaced."""
    out = dict(base)
    for key, value in over.items():
        below = out.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            out[key] = merge(below, value)
        else:
            out[key] = value
    return out


def _nest(path: list[str], value: Any) -> dict[str, Any]:
    for key in reversed(path[1:]):
        value = {key: value}
    return {path[0]: value}


def _annotation_at(model: type[BaseModel], path: list[str]) -> Any:
    """The type of the key at `path`; None where it names no key (validation says so)."""
    annotation: Any = model
    for key in path:
        annotation = _step(annotation, key)
        if annotation is None:
            return None
    return annotation


def _step(annotation: Any, key: str) -> Any:
    """The type of `key` inside a table of type `annotation` (a model, an optional one, a dict)."""
    for candidate in _alternatives(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            field = candidate.model_fields.get(key)
            if field is not None:
                return field.annotation
        elif get_origin(candidate) is dict:
            return get_args(candidate)[1]
    return None


def _is_container(annotation: Any) -> bool:
    return any(
        get_origin(c) in _CONTAINERS or c in _CONTAINERS or (isinstance(c, type) and issubclass(c, BaseModel))
        for c in _alternatives(annotation)
    )


def _alternatives(annotation: Any) -> list[Any]:
    """`annotation` without Annotated, split into the members of a union."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _alternatives(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [c for arg in get_args(annotation) for c in _alternatives(arg)]
    return [annotation]
