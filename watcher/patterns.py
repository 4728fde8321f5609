"""Regexes users write (rule `regex`) matched in linear time, by RE2: never a backtracking engine.

Python's `re` backtracks: `(a+)+$` takes about half an hour on a 34-character line,
and a rule is run on every line an attacker can get into a log. RE2 (google-re2,
Google's own bindings) guarantees time linear in the line whatever the pattern, so
a rule is checked here at config load and refused, naming what to change, when it
needs what no linear engine can do.

The dialect is Python's syntax (a pattern must compile in `re` too, so the fast
scanner can reason about it), without what needs backtracking, and with RE2's
meaning where the two differ:

- refused: backreferences (`\\1`, `(?P=name)`), lookahead and lookbehind, atomic
  groups, possessive quantifiers, conditionals, verbose mode `(?x)`, comments
  `(?#...)`, the flags `(?a)`, `(?u)`, `(?L)`, `\\N{...}`, repetitions over 1000;
- `\\w`, `\\d`, `\\s`, `\\b` are ASCII (`\\w` is `[0-9A-Za-z_]`);
- `$` (without `(?m)`) matches only at the very end of the text, not before a final
  newline;
- translated to RE2's spelling: `\\Z` (end of text), `{,n}` (0 to n), `\\uXXXX`.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import re2

MAX_REPEAT = 1000
_REASONS: tuple[tuple[str, str], ...] = (
    ("invalid escape sequence: \\", "backreferences such as \\1 need backtracking"),
    ("invalid perl operator: (?P", "backreferences such as (?P=name) need backtracking"),
    ("invalid perl operator: (?=", "lookahead (?=...) needs backtracking"),
    ("invalid perl operator: (?!", "negative lookahead (?!...) needs backtracking"),
    ("invalid perl operator: (?<", "lookbehind (?<=...) / (?<!...) needs backtracking"),
    ("invalid perl operator: (?>", "atomic groups (?>...) are a backtracking construct"),
    ("invalid perl operator: (?(", "conditionals (?(1)...) need backtracking"),
    ("invalid perl operator: (?#", "comments (?#...) are not supported; remove them"),
    ("invalid perl operator: (?x", "verbose mode (?x) is not supported; write the pattern without spaces"),
    ("invalid perl operator: (?", "only the flags i, m and s are supported"),
    ("bad repetition operator", "possessive quantifiers such as a++ are a backtracking construct"),
    ("invalid repetition size", f"a repetition may count at most {MAX_REPEAT}"),
)


class Regex:
    """A compiled linear-time regex."""

    __slots__ = ("_rx", "pattern")

    def __init__(self, pattern: str, rx: Any) -> None:
        self.pattern = pattern
        self._rx = rx

    def search(self, text: str) -> bool:
        """Whether the pattern matches anywhere in `text`."""
        return self._rx.search(utf8(text)) is not None

    def group(self, text: str) -> str | None:
        """The first group of the first match in `text` (None: no match, or the group took no part)."""
        m = self._rx.search(utf8(text))
        found = None if m is None else m.group(1)
        return None if found is None else bytes(found).decode("utf-8", "replace")

    def fullmatch(self, text: str) -> bool:
        """Whether the pattern matches the whole of `text`."""
        return self._rx.fullmatch(utf8(text)) is not None

    def starts(self, buf: bytes | bytearray, start: int, end: int) -> Iterator[int]:
        """Where each match in buf[start:end] starts, searching on after each match's line."""
        pos = start
        while pos < end and (m := self._rx.search(buf, pos, end)) is not None:
            at: int = m.start()
            yield at
            pos = buf.find(b"\n", at, end) + 1
            if pos == 0:
                return


class RegexSet:
    """Linear regexes searched together: which of them match a text, in one pass."""

    __slots__ = ("_set",)

    def __init__(self, patterns: Sequence[str]) -> None:
        self._set = re2.Set.SearchSet(_options())
        for pattern in patterns:
            compile_linear(pattern)  # RE2's Set says only "failed to add"; this says why
            self._set.Add(translate(pattern))
        self._set.Compile()

    def matching(self, text: str) -> Collection[int]:
        """The indexes (in the order given) of the patterns that match somewhere in `text`."""
        return self._set.Match(utf8(text)) or ()


def utf8(text: str) -> bytes:
    """`text` for RE2, which reads UTF-8 bytes: the bindings' own conversion of a str costs
    twice as much, and a lone surrogate (JSON can escape one) would make it raise."""
    return text.encode("utf-8", "surrogatepass")


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would also print each refusal on stderr
    return options


def check(pattern: str) -> None:
    """ValueError with a sentence saying what to change when `pattern` cannot be matched in linear time."""
    compile_linear(pattern)


@functools.lru_cache(maxsize=256)
def compile_linear(pattern: str, multiline: bool = False) -> Regex:
    """`pattern` (Python syntax, see the module docstring) compiled by RE2; ValueError if it cannot be."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FutureWarning for `[[:alpha:]]`: RE2 reads POSIX classes
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
    try:
        rx = re2.compile(("(?m)" if multiline else "") + translate(pattern), _options())
    except re2.error as exc:
        raise ValueError(f"cannot be matched in linear time: {_reason(exc)}") from None
    return Regex(pattern, rx)


def _reason(exc: re2.error) -> str:
    raw = exc.args[0] if exc.args else b""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if text.startswith("invalid escape sequence: \\") and not text[-1:].isdigit():
        return f"{text} (not supported here)"
    return next((reason for start, reason in _REASONS if text.startswith(start)), text)


_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})")
_EMPTY_MIN = re.compile(r"\{,([0-9]*)\}")


def translate(pattern: str) -> str:
    """RE2's spelling of what Python writes differently: `\\Z`, `{,n}`, `\\uXXXX`."""
    out: list[str] = []
    i, class_end = 0, -1
    while i < len(pattern):
        c = pattern[i]
        if c == "[" and i >= class_end:
            class_end = class_end_at(pattern, i)
        in_class = i < class_end
        if c == "\\":
            m = _UNICODE_ESCAPE.match(pattern, i)
            if m is not None:
                out.append(f"\\x{{{m.group(1) or m.group(2)}}}")
                i = m.end()
                continue
            esc = pattern[i : i + 2]
            out.append("\\z" if esc == "\\Z" and not in_class else esc)
            i += 2
        elif c == "{" and not in_class and (m := _EMPTY_MIN.match(pattern, i)):
            out.append(f"{{0,{m.group(1)}}}")
            i = m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def class_end_at(pattern: str, i: int) -> int:
    """Index after the `]` that closes the character class opening at `i` (Python's rules)."""
    j = i + 1
    if pattern.startswith("^", j):
        j += 1
    if pattern.startswith("]", j):
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        j += 2 if pattern[j] == "\\" else 1
    return j + 1
