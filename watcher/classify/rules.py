"""Does a line match an error rule, and does an ignore rule win over it (docs/architecture.md, "Rules").

Rules are tried in config order and the first error rule that matches names the line;
a line that any ignore rule matches is never an error. A regex rule is a search over
the message in linear time (watcher.patterns, RE2: `^` anchors after a stripped
leading timestamp; a JSON line's message is the whole JSON text). A field rule looks
its field up in the parsed fields (a dotted name such as `http.status` walks nested
JSON objects when no key has that exact name) and matches when the value is a string
equal to one of `values` (case-insensitive unless `case_sensitive`, with RE2's simple
case folding) or a number within `min`..`max` inclusive: a JSON number, or a string
such as journald's `"3"`; a bool is not a number.

Each rule also has a `Prefilter`: regexes that match every raw line the rule can match
(and more), so the fast scanner (scan.py) only parses the few lines they hit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from watcher.classify.lines import ParsedLine
from watcher.config import RuleConfig
from watcher.patterns import RegexSet, compile_linear

_NUMERIC = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.@-]+")
_JSON_SPACE = r"[ \t\r]*"
_BOUND_CAP = 10**18  # wider bounds only widen a prefilter; this keeps its regex small


@dataclass(frozen=True, slots=True)
class Prefilter:
    """Regexes (Python syntax) whose matches on raw lines are a superset of a rule's matches.

    `message` patterns are the rule's own regex, written for the message: the scanner
    loosens their anchors. `line` patterns are written for the whole raw line, with
    `^`/`$` meaning its start and end (multi-line mode).
    """

    rule: str
    message: tuple[str, ...] = ()
    line: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    regex: str | None
    """A regex rule's pattern: the source's rules search all of theirs in one pass."""
    matches: Callable[[ParsedLine], bool] | None
    """A field rule's test."""
    applies_to: Callable[[str], bool]
    prefilter: Prefilter


class _Ordered:
    """Rules in config order, their regexes searched in one RE2 pass per line (1-2 µs, however many)."""

    def __init__(self, rules: Sequence[_Rule]) -> None:
        self.rules = tuple(rules)
        regexes = [r.regex for r in self.rules if r.regex is not None]
        self._set = RegexSet(regexes) if regexes else None

    def first(self, line: ParsedLine) -> str | None:
        """The name of the first rule that matches `line`."""
        found = self._set.matching(line.message) if self._set is not None else ()
        k = 0
        for rule in self.rules:
            if rule.matches is None:
                hit, k = k in found, k + 1
            else:
                hit = rule.matches(line)
            if hit:
                return rule.name
        return None


class SourceRules:
    """The rules of one source, in config order."""

    def __init__(self, errors: Sequence[_Rule], ignores: Sequence[_Rule]) -> None:
        self._errors = _Ordered(errors)
        self._ignores = _Ordered(ignores)
        self.rule_names = tuple(r.name for r in self._errors.rules)
        self.ignore_names = tuple(r.name for r in self._ignores.rules)

    def match(self, line: ParsedLine) -> tuple[str | None, str | None]:
        """(error rule, None), or (None, the ignore rule that suppressed an error), or (None, None)."""
        rule = self._errors.first(line)
        if rule is None:
            return None, None
        ignore = self._ignores.first(line)
        return (rule, None) if ignore is None else (None, ignore)

    def prefilters(self) -> tuple[Prefilter, ...]:
        """One per error rule; ignore rules need none, since they only ever veto a match."""
        return tuple(r.prefilter for r in self._errors.rules)


class RuleSet:
    """Every rule and ignore rule of the configuration, compiled once."""

    def __init__(self, rules: Sequence[_Rule], ignore: Sequence[_Rule]) -> None:
        self._rules = tuple(rules)
        self._ignore = tuple(ignore)
        self.rule_names = tuple(r.name for r in self._rules)
        self.ignore_names = tuple(r.name for r in self._ignore)

    @classmethod
    def compile(cls, rules: Sequence[RuleConfig], ignore: Sequence[RuleConfig]) -> RuleSet:
        return cls([_compile(r) for r in rules], [_compile(r) for r in ignore])

    def for_source(self, source: str, selected: Sequence[str] | None = None) -> SourceRules:
        """The rules whose `sources` globs match `source`, only those named in `selected` if given."""
        return SourceRules(
            [r for r in self._rules if r.applies_to(source) and (selected is None or r.name in selected)],
            [r for r in self._ignore if r.applies_to(source)],
        )


def _compile(cfg: RuleConfig) -> _Rule:
    if cfg.regex is not None:
        return _Rule(cfg.name, cfg.regex, None, cfg.applies_to, Prefilter(cfg.name, message=(cfg.regex,)))
    assert cfg.field is not None  # RuleConfig allows exactly one of regex and field
    matches = _field_matcher(cfg, cfg.field)
    return _Rule(cfg.name, None, matches, cfg.applies_to, _field_prefilter(cfg, cfg.field))


def _field_matcher(cfg: RuleConfig, name: str) -> Callable[[ParsedLine], bool]:
    is_value = _value_matcher(cfg.values or (), cfg.case_sensitive)
    lo, hi = cfg.min, cfg.max
    ranged = lo is not None or hi is not None

    def matches(line: ParsedLine) -> bool:
        value = lookup(line.fields, name)
        if isinstance(value, str) and is_value(value):
            return True
        if not ranged:
            return False
        n = _number(value)
        return n is not None and (lo is None or n >= lo) and (hi is None or n <= hi)

    return matches


def _value_matcher(values: Sequence[str], case_sensitive: bool) -> Callable[[str], bool]:
    if not values:
        return lambda v: False
    if case_sensitive:
        return frozenset(values).__contains__
    # The same regex and engine as the prefilter, so the prefilter is a superset by construction.
    return compile_linear(_values_regex(values, case_sensitive)).fullmatch


def _values_regex(values: Sequence[str], case_sensitive: bool) -> str:
    alternatives = "|".join(re.escape(v) for v in values)
    return f"(?:{alternatives})" if case_sensitive else f"(?i:{alternatives})"


def lookup(fields: Mapping[str, object], name: str) -> object:
    """`fields[name]`, else the nested value a dotted name leads to; None when there is none."""
    if name in fields:
        return fields[name]
    if "." not in name:
        return None
    value: object = fields
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _number(value: object) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMERIC.fullmatch(value):
        return float(value)
    return None


def _field_prefilter(cfg: RuleConfig, name: str) -> Prefilter:
    """JSON `"key": value` and logfmt `key=value` spellings of the matching values.

    A value or key written with JSON or logfmt escapes cannot be recognised by a regex,
    so any string value with a backslash in it, and any `\\u` escape (a key spelled
    with one), is a candidate as well.
    """
    keys = "|".join(re.escape(k) for k in dict.fromkeys([name, name.rpartition(".")[2]]))
    json_values, logfmt_values = [r'"[^"\\\n]*\\'], [r'"[^"\n]*\\']  # escaped values
    if cfg.values:
        values = _values_regex(cfg.values, cfg.case_sensitive)
        json_values.append(f'"{values}"')
        logfmt_values.append(f'"?{values}')
    if cfg.min is not None or cfg.max is not None:
        number = number_pattern(cfg.min, cfg.max)
        json_values.append(f'"?{number}')
        logfmt_values.append(f'"?{number}')
    return Prefilter(
        cfg.name,
        line=(
            r"\\u" if _PLAIN_KEY.fullmatch(name) else r"\\",
            f'"(?:{keys})"{_JSON_SPACE}:{_JSON_SPACE}(?:{"|".join(json_values)})',
            # No logfmt key boundary: wider, and a literal start for `re`.
            f"(?:{keys})=(?:{'|'.join(logfmt_values)})",
        ),
    )


def number_pattern(lo: float | None, hi: float | None) -> str:
    """A regex matching the start of every number spelling whose value lies in lo..hi.

    The sign and integer digits decide: a value in lo..hi truncates (toward zero) to an
    integer in floor..floor on the positive side and ceil..ceil on the negative side, so
    the fraction can be ignored; a number with an exponent can be anything.
    """
    parts = [r"[+-]?[0-9]+(?:\.[0-9]+)?[eE]"]
    end = r"(?:[^0-9]|$)"
    sides = []
    if hi is None or hi >= 0:  # magnitudes of values >= 0: floor(lo)..floor(hi)
        sides.append((r"\+?", 0 if lo is None or lo <= 0 else _low(lo), _high(hi)))
    if lo is None or lo <= 0:  # magnitudes of values <= -0: floor(-hi)..floor(-lo)
        sides.append(("-", 0 if hi is None or hi >= 0 else _low(-hi), _high(None if lo is None else -lo)))
    for sign, low, high in sides:
        if high is None or low <= high:
            parts.append(rf"{sign}0*(?:{'|'.join(int_range(low, high))}){end}")
    return "(?:" + "|".join(parts) + ")"


def _low(bound: float) -> int:
    return _BOUND_CAP if bound > _BOUND_CAP else math.floor(bound)


def _high(bound: float | None) -> int | None:
    return None if bound is None or bound > _BOUND_CAP else math.floor(bound)


def int_range(lo: int, hi: int | None) -> list[str]:
    """Alternatives matching exactly the integers lo..hi (hi None: unbounded), no leading zeros.

    The classic construction: split by number of digits, then by leading digit, e.g.
    500..599 -> `5[0-9]{2}`, 0..3 -> `[0-3]`, 7..12 -> `[7-9]`, `1[0-2]`.
    """
    if hi is None:
        digits = len(str(lo))
        return [*int_range(lo, 10**digits - 1), rf"[1-9][0-9]{{{digits},}}"]
    out: list[str] = []
    for digits in range(len(str(lo)), len(str(hi)) + 1):
        a = max(lo, 10 ** (digits - 1) if digits > 1 else 0)
        b = min(hi, 10**digits - 1)
        if a <= b:
            out += _same_length(str(a), str(b))
    return out


def _same_length(a: str, b: str) -> list[str]:
    if a == b:
        return [a]
    if a[0] == b[0]:
        return [a[0] + rest for rest in _same_length(a[1:], b[1:])]
    n = len(a) - 1
    if a[1:] == "0" * n and b[1:] == "9" * n:
        return [f"[{a[0]}-{b[0]}]" + (f"[0-9]{{{n}}}" if n else "")]
    out = [a[0] + rest for rest in _same_length(a[1:], "9" * n)]
    if int(b[0]) - int(a[0]) > 1:
        out.append(f"[{int(a[0]) + 1}-{int(b[0]) - 1}][0-9]{{{n}}}")
    out += [b[0] + rest for rest in _same_length("0" * n, b[1:])]
    return out
