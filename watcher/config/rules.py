"""The `[[rules]]` and `[[ignore]]` entries."""

from __future__ import annotations

from pydantic import Field, model_validator

from watcher import patterns
from watcher.config.base import NAME, Model
from watcher.names import in_scope

MAX_REGEX = 4096
"""Characters of a rule's regex: a longer one is not written by hand."""


class RuleConfig(Model):
    """An error rule (or, under [[ignore]], a rule whose matches are never errors).

    Either `regex` over the line's text (matched in linear time: watcher.patterns
    says which constructs are refused), or `field` with exact `values`
    (case-insensitive unless `case_sensitive`) and/or a numeric `min`/`max`
    range, inclusive.
    """

    name: str = Field(pattern=NAME)
    regex: str | None = Field(default=None, max_length=MAX_REGEX)
    field: str | None = None
    values: list[str] | None = None
    min: float | None = Field(default=None, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)
    case_sensitive: bool = False
    sources: list[str] = ["*"]
    """Globs of source names the rule applies to."""

    @model_validator(mode="after")
    def _linear(self) -> RuleConfig:
        if self.regex is not None:
            try:
                patterns.check(self.regex)
            except ValueError as exc:
                raise ValueError(f"regex: rule {self.name!r}: {exc}") from None
        return self

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
