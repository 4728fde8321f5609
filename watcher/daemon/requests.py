"""The API's request bodies as pydantic models: every field checked, one sentence per problem.

Each field's validator sees the raw JSON value and raises ValueError with the
sentence the user reads (`title must be a non-empty string`), so a wrong type and a
wrong value are reported the same way; `parse` turns pydantic's own complaints
(a missing or unknown field) into the same kind of sentence.
"""

from __future__ import annotations

import math
from typing import Annotated, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from watcher.engine.impact import MAX_ORG
from watcher.events import Trigger
from watcher.names import check_incident_id
from watcher.times import WINDOW, parse_duration, parse_time

MAX_TEXT = 4096
MAX_GLOBS = 100
MAX_GLOB = 256
MAX_EPOCH = 253402300799.0
"""9999-12-31T23:59:59Z: the last second an RFC 3339 time can name."""
_M = TypeVar("_M", bound="Body")


def _text(what: str, *, empty_ok: bool = False) -> BeforeValidator:
    def check(value: object) -> str:
        if not isinstance(value, str) or (not value.strip() and not empty_ok):
            raise ValueError(f"{what} must be a non-empty string")
        if len(value) > MAX_TEXT:
            raise ValueError(f"{what} is longer than {MAX_TEXT} characters")
        return value.strip()

    return BeforeValidator(check)


def _incident(what: str) -> BeforeValidator:
    return BeforeValidator(lambda value: check_incident_id(value, what))


def _maybe_incident(value: object) -> str | None:
    return None if value is None else check_incident_id(value, "incident")


def _scope(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(g, str) and g for g in value):
        raise ValueError('scope must be a list of source-name globs such as ["cloud/*", "gw/*"]')
    if len(value) > MAX_GLOBS or any(len(g) > MAX_GLOB for g in value):
        raise ValueError(f"scope takes at most {MAX_GLOBS} globs of at most {MAX_GLOB} characters each")
    return tuple(value)


MAX_ORGS = 50
"""Orgs named on one incident, at most."""


def _orgs(value: object) -> tuple[str, ...]:
    if not (
        isinstance(value, list)
        and len(value) <= MAX_ORGS
        and all(isinstance(o, str) and 0 < len(o.strip()) <= MAX_ORG for o in value)
    ):
        raise ValueError(
            f"orgs must be a list of at most {MAX_ORGS} org ids of at most {MAX_ORG} characters"
            ' such as ["org-a"]'
        )
    return tuple(dict.fromkeys(o.strip() for o in value))


def _maybe_orgs(value: object) -> tuple[str, ...] | None:
    return None if value is None else _orgs(value)


def _maybe_scope(value: object) -> tuple[str, ...] | None:
    return None if value is None else _scope(value)


def _time(value: object) -> float | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("at must be an RFC 3339 time such as 2026-12-03T14:21:30Z")
    try:
        return parse_time(value)
    except ValueError as exc:
        raise ValueError(f"at: {exc}") from None


def _window(value: object) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value, WINDOW)
    except ValueError as exc:
        raise ValueError(f"window: {exc}") from None


def _epoch(what: str) -> BeforeValidator:
    def check(value: object) -> float | None:
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not 0 <= value <= MAX_EPOCH
        ):
            raise ValueError(f"{what} must be Unix seconds (0 to {MAX_EPOCH:.0f}) or null")
        return float(value)

    return BeforeValidator(check)


def _flag(what: str) -> BeforeValidator:
    def check(value: object) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"{what} must be true or false")
        return value

    return BeforeValidator(check)


def _size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("size must be a number of bytes")
    return value


def _sha256(value: object) -> str:
    if not isinstance(value, str) or len(value) != 64 or value.strip("0123456789abcdef"):
        raise ValueError("sha256 must be 64 lowercase hex digits")
    return value


def _lines(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(x, str) and len(x) <= MAX_TEXT for x in value):
        raise ValueError("missing must be a list of sentences")
    return tuple(value)


def _requested(value: object) -> Trigger:
    if value not in (Trigger.MANUAL, Trigger.THEN):
        raise ValueError('trigger must be "manual" or "then"')
    return Trigger(str(value))


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenIncident(Body):
    id: Annotated[str, _incident("id")]
    title: Annotated[str, _text("title")]
    scope: Annotated[tuple[str, ...], BeforeValidator(_scope)] = ()
    window: Annotated[float | None, BeforeValidator(_window)] = None
    orgs: Annotated[tuple[str, ...], BeforeValidator(_orgs)] = ()


class Mitigation(Body):
    action: Annotated[str, _text("action")]
    at: Annotated[float | None, BeforeValidator(_time)] = None
    """When it was made, if not now (recorded after the fact)."""


class Text(Body):
    """A note or a hypothesis."""

    text: Annotated[str, _text("text")]


class Change(Body):
    """What changes on an open incident; what is left out stays."""

    scope: Annotated[tuple[str, ...] | None, BeforeValidator(_maybe_scope)] = None
    window: Annotated[float | None, BeforeValidator(_window)] = None
    orgs: Annotated[tuple[str, ...] | None, BeforeValidator(_maybe_orgs)] = None


class Reopen(Body):
    pass


class Close(Body):
    reason: Annotated[str, _text("reason", empty_ok=True)] = ""


class Snapshot(Body):
    reason: Annotated[str, _text("reason")]
    incident: Annotated[str | None, BeforeValidator(_maybe_incident)] = None
    scope: Annotated[tuple[str, ...], BeforeValidator(_scope)] = ()
    since: Annotated[float | None, _epoch("since")] = None
    until: Annotated[float | None, _epoch("until")] = None
    redact: Annotated[bool, _flag("redact")] = False
    trigger: Annotated[Trigger, BeforeValidator(_requested)] = Trigger.MANUAL


class SnapshotTaken(Body):
    """A snapshot the CLI wrote and verified itself: for the incident's timeline and the counter.

    The same document is queued in `<state_dir>/spool/` when no daemon answered
    (watcher.snapshot.spool); there `by` says who took it, as the header does on the API."""

    path: Annotated[str, _text("path")]
    size: Annotated[int, BeforeValidator(_size)]
    sha256: Annotated[str, BeforeValidator(_sha256)]
    complete: Annotated[bool, _flag("complete")]
    missing: Annotated[tuple[str, ...], BeforeValidator(_lines)] = ()
    reason: Annotated[str, _text("reason")]
    trigger: Annotated[Trigger, BeforeValidator(_requested)] = Trigger.MANUAL
    incident: Annotated[str | None, BeforeValidator(_maybe_incident)] = None
    at: Annotated[float, _epoch("at")]
    by: Annotated[str, _text("by", empty_ok=True)] = ""


def parse(model: type[_M], body: object) -> _M:
    """`body` (parsed JSON) as `model`; ValueError with one sentence when it is not one."""
    if not isinstance(body, dict):
        raise ValueError("request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ValueError(_sentence(model, exc)) from None


def _sentence(model: type[Body], exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    field = str(err["loc"][0]) if err["loc"] else ""
    if err["type"] == "missing":
        return f"missing field {field!r}"
    if err["type"] == "extra_forbidden":
        return f"unknown field {field!r} (expected {', '.join(model.model_fields)})"
    return str(err.get("ctx", {}).get("error", err["msg"]))
