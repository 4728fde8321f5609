"""`[alertmanager]`: which alerts open an incident, and how the incident is named.

Alertmanager (or Grafana) posts its webhook notifications to
`/api/v1/alerts/alertmanager`. An alert opens (or joins) an incident when every
matcher matches its labels, with Alertmanager's own semantics: `name="v"`,
`name!="v"`, `name=~"re"`, `name!~"re"`, regular expressions anchored at both ends, a
missing label read as the empty string. The id, title and scope are
`string.Template`s over the alerts' common labels and annotations (and `$date`, the
UTC day the first alert started, `YYYYMMDD`); they are checked here, at load.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from string import Template
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator

from watcher.config.base import Model, Window

_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|([^"\s]*))\s*$')
Op = Literal["=", "!=", "=~", "!~"]


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: Op
    value: str
    pattern: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, text: object) -> Matcher:
        if isinstance(text, Matcher):
            return text
        m = _MATCHER.match(text) if isinstance(text, str) else None
        if m is None:
            raise ValueError(f'expected a matcher such as severity="P1" or service=~"rec.*", got {text!r}')
        name, op, quoted, bare = m.groups()
        value = bare if quoted is None else re.sub(r"\\(.)", r"\1", quoted)
        pattern = None
        if op in ("=~", "!~"):
            try:
                pattern = re.compile(f"(?:{value})")
            except re.error as exc:
                raise ValueError(f"{text!r}: invalid regular expression: {exc}") from None
        return cls(name, op, value, pattern)  # type: ignore[arg-type]  # the regex allows only the four

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.name, "")
        if self.pattern is not None:
            return (self.pattern.fullmatch(value) is not None) == (self.op == "=~")
        return (value == self.value) == (self.op == "=")

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value!r}"


def _template(text: str) -> str:
    if not Template(text).is_valid():
        raise ValueError(f"invalid placeholder in {text!r}; write $$ for a literal $")
    return text


Tmpl = Annotated[str, BeforeValidator(lambda v: _template(v) if isinstance(v, str) else v)]


class AlertmanagerConfig(Model):
    matchers: list[Annotated[Matcher, BeforeValidator(Matcher.parse)]] = []
    """All must match for an alert to open an incident; none: every alert sent to the watcher."""
    id: Tmpl = "P1-$date-$alertname"
    """The incident id; a short hash of the alert group is appended, so one group is one incident."""
    title: Tmpl = "$alertname: $summary"
    scope: list[Tmpl] = ["*"]
    """Source-name globs; one whose fields are missing from the alerts is left out (none left: all)."""
    window: Window | None = None
    """The clean window of incidents it opens; default `resolution.window`."""
    max_body: int = Field(default=1 << 20, ge=4096, le=64 << 20)
    """Bytes: a larger notification is refused (413; Alertmanager does not retry it)."""
    max_alerts: int = Field(default=1000, ge=1)
    """Alerts per notification; more is refused (set Alertmanager's `max_alerts` below this)."""

    @field_validator("scope")
    @classmethod
    def _some_scope(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError('must name at least one glob; ["*"] is every source')
        return v

    def matching(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)
