"""What every config model shares: frozen, unknown keys refused, durations as users type them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict

from watcher.times import parse_duration, positive_duration

Duration = Annotated[float, BeforeValidator(parse_duration)]
PositiveDuration = Annotated[float, BeforeValidator(positive_duration)]
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
"""What a source or rule name may be: safe in metric labels, file names and scopes."""
Format = Literal["auto", "docker", "journal", "json", "logfmt", "text"]
"""How a source's lines are written; `auto` tells by each line's shape."""


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
