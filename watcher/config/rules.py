"""The `[[rules]]` and `[[ignore]]` entries."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from watcher.config.base import NAME, Model
from watcher.names import in_scope


class RuleConfig(Model):
    """An error rule (or, under [[ignore]], a rule whose matches are never errors).

    Either `regex` over the line's text, or `field` with exact `values`
    (case-insensitive unless `case_sensitive`) and/or a numeric `min`/`max`
    range, inclusive.
    """

    name: str = Field(pattern=NAME)
    regex: str | None = None
    field: str | None = None
    values: list[str] | None = None
    min: float | None = Field(default=None, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)
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
