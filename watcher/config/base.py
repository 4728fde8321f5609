"""What every config model shares: frozen, unknown keys refused, durations as users type them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict

from watcher.times import WINDOW, Span, parse_duration, positive_duration


def within(lo: str, hi: str) -> BeforeValidator:
    """A duration field's range, spelled as users spell it: `Annotated[float, within("1m", "24h")]`."""
    span = Span(parse_duration(lo), parse_duration(hi))
    return BeforeValidator(lambda value: parse_duration(value, span))


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""0s up to a year, with a unit; a setting with a narrower meaning says so with `within`."""
PositiveDuration = Annotated[float, BeforeValidator(positive_duration)]
Window = Annotated[float, BeforeValidator(lambda value: parse_duration(value, WINDOW))]
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
"""What a source or rule name may be: safe in metric labels, file names and scopes."""
Format = Literal["auto", "docker", "journal", "json", "logfmt", "text"]
"""How a source's lines are written; `auto` tells by each line's shape."""


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
