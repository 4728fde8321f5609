"""Whom an error record hit: its source's `impact_field` (a JSON, logfmt or journald field such
as org_id) or the group of its `impact_regex` over the message. Only error records are asked,
so the cost is paid on the few lines that matter."""

from __future__ import annotations

from watcher.classify.lines import ParsedLine
from watcher.classify.rules import lookup
from watcher.patterns import compile_linear

MAX_VALUE = 128
"""Characters of a value kept: an org id, not a message."""


class ImpactKey:
    """The org of a parsed line, or None when it names none."""

    def __init__(self, field: str | None = None, regex: str | None = None) -> None:
        self._field = field
        self._regex = None if regex is None else compile_linear(regex)

    @classmethod
    def of(cls, field: str | None, regex: str | None) -> ImpactKey | None:
        return None if field is None and regex is None else cls(field, regex)

    def __call__(self, line: ParsedLine) -> str | None:
        if self._field is not None:
            return _text(lookup(line.fields, self._field))
        assert self._regex is not None
        return _text(self._regex.group(line.message))


def _text(value: object) -> str | None:
    """A string or an integer as the org id (an org id of 42 is "42"); anything else is no org."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()[:MAX_VALUE]
    return text or None
