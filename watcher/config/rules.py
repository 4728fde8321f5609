"""The `[[rules]]` and `[[ignore]]` entries, and RuleSettings: all `watcher classify` reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from watcher import patterns
from watcher.config.base import NAME, Model
from watcher.config.loading import column, load_model
from watcher.names import duplicates, in_scope

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


class RuleSettings(Model):
    """The rules, and how long a line may be: what `watcher classify` reads of the config.

    The rest of the file is not read here, so a rule can be tuned while another section is
    being written; Settings adds it, and `check-config` and the daemon refuse what is wrong.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    max_line_bytes: int = Field(default=1 << 20, ge=1024, le=64 << 20)
    rules: list[RuleConfig] = []
    ignore: list[RuleConfig] = []

    @model_validator(mode="after")
    def _names(self) -> RuleSettings:
        problems = rule_problems([r.name for r in self.rules], [r.name for r in self.ignore])
        if problems:
            raise ValueError("\n".join(problems))
        return self


def rule_problems(rules: Sequence[object], ignore: Sequence[object]) -> list[str]:
    """No error rule, or a name used twice (of models, or of raw TOML)."""
    problems: list[str] = []
    if not rules:
        problems.append(
            "rules: no error rules; add at least one [[rules]] entry (with none, every log looks clean)"
        )
    return problems + duplicates("rules", rules) + duplicates("ignore", ignore)


def raw_rule_problems(data: Mapping[str, Any]) -> list[str]:
    return rule_problems(column(data, "rules", "name"), column(data, "ignore", "name"))


def load_rules(path: Path | None) -> RuleSettings:
    """RuleSettings from `path` (TOML) and the environment; raise ConfigError listing every problem."""
    return load_model(RuleSettings, path, None, raw_rule_problems)
