"""The lines a scan must show grouping.py because of where they may sit in a record.

A line may continue the record before it (grouping.py rules 1-2: its message starts
with whitespace or a continuation prefix), or make the next line one (rules 3-4). Its
message may start after up to two leading timestamps (lines.LineParser): when the line
starts with one, only the shape of the message after them matters. A line that starts
with its time key (`{"ts":"2026-...`) has a message that starts with `{` or a key: it
never matters.

`exact_pattern` says it with `re` (atomic groups, a conditional, lookaheads), run by
`re` after each newline. `superset_patterns` says a little more in what hyperscan takes,
so that the same pass that runs the rules' prefilters also finds these lines; each line
it finds is then checked with the exact pattern (`Context.confirm`), so both engines
find exactly the same lines.
"""

from __future__ import annotations

import re

from watcher.classify.grouping import (
    BLANK_BYTES,
    CONTINUATION_FIRST,
    CONTINUATION_START,
    NON_ASCII_SPACES,
    PREFIX_STARTS,
)
from watcher.classify.lines import (
    DATE_TIME,
    MESSAGE_TOKEN,
    REALTIME,
    TIMESTAMP,
    later_in_line,
    time_key_start,
)
from watcher.config.base import Format

_MESSAGE_KEY = r'"MESSAGE"[ \t\r]*:[ \t\r]*'


def exact_pattern(fmt: Format, *, records: bool = True) -> str:
    """A lookahead that matches at the start of a line that may be a continuation by itself or
    enable the next one. `records=False`: without the journal records of fmt "journal" (the
    lines starting with `{`), which `Context` looks at with three searches instead."""
    lead = rf"(?>{TIMESTAMP}(?:[ \t]|(?![ \t])))"
    shape = _shape()
    key_start = time_key_start(fmt)
    keyed = f"|({key_start}{DATE_TIME})" if key_start is not None and fmt != "journal" else ""
    other = [shape]
    if fmt == "journal" and records:  # a record whose MESSAGE is missing, escaped, bytes or continuation-like
        other.append(
            rf"\{{(?={later_in_line(REALTIME)})(?:(?!{later_in_line(MESSAGE_TOKEN)})|{later_in_line(_odd_message())})"
        )
    # A lookahead, so that a match never swallows the next line's newline. The atomic group
    # commits to the first of: a leading timestamp (group 1), a time key (group 2, never
    # matters), neither.
    rest = f"(?:{'|'.join(other)})"
    if keyed:
        rest = f"(?(2)(?!)|{rest})"
    return rf"(?=(?>({lead}){keyed}|)(?(1){lead}?{shape}|{rest}))"


def _shape() -> str:
    return f"(?={CONTINUATION_FIRST})(?:{CONTINUATION_START})"  # a cheap first test: most lines fail it


def _odd_message() -> str:
    """A MESSAGE that is bytes (a list), escaped, empty or continuation-like."""
    return _MESSAGE_KEY + rf'(?:\[|"[^"\\\n]*\\|"(?:"|{_shape()}))'


_STAMPED = r"^[12][0-9]{3}-[0-9:.,+TtZz \t-]*"
"""A line's leading timestamps and their separators, loosely: a start and the bytes they are
made of (lines.TIMESTAMP)."""
_OTHER_BLANKS = BLANK_BYTES.replace(" \\t", "")
"""The blank bytes but space and tab: they may start a message right after a timestamp."""


def superset_patterns(fmt: Format) -> tuple[str, ...] | None:
    """Patterns for hyperscan (bytes, multi-line mode, no UTF-8 flag) that match in every line
    `exact_pattern` finds, and in few others; None where there are none (a journal record
    without a MESSAGE takes a negative lookahead).

    They cost hyperscan little where the exact form would cost a timestamp parsed at every
    line start: a blank shape is looked for at a line's start, and after the bytes
    timestamps are made of at a line's start (a message that starts with a blank follows
    the timestamp's own separator; an empty one ends the line); the non-ASCII spaces and
    the prefixes anywhere. Each prefix is a pattern of its own: hyperscan compiles a set of literals far
    faster than one alternation of them.
    """
    if fmt == "journal":
        return None
    return (
        f"^{BLANK_BYTES}",
        rf"{_STAMPED}(?:[ \t][ \t]|{_OTHER_BLANKS})",
        NON_ASCII_SPACES,
        *PREFIX_STARTS,
    )


class Context:
    """The exact search, over a buffer of whole lines or to confirm one line a superset found."""

    def __init__(self, fmt: Format) -> None:
        at = exact_pattern(fmt, records=False).encode()
        self._at = re.compile(at, re.M)  # `$`: a line's end
        self._after_newline = re.compile(b"\\n" + at, re.M)
        self._records = _Records() if fmt == "journal" else None

    def find(self, buf: bytes | bytearray, start: int, end: int) -> set[int]:
        """Starts of the lines in [start, end) that matter (`start` is a line's start)."""
        found = {s for m in self._after_newline.finditer(buf, start, end) if (s := m.start() + 1) < end}
        if start < end and self._at.match(buf, start, end):
            found.add(start)
        if self._records is not None:
            found.update(self._records.find(buf, start, end))
        return found

    def confirm(self, buf: bytes | bytearray, line: int, end: int) -> bool:
        """Whether the line at `line` matters."""
        if self._records is not None and self._records.matters(buf, line, end):
            return True
        return self._at.match(buf, line, end) is not None


class _Records:
    """The journal records part of `exact_pattern`: a line that starts with `{` and has a
    __REALTIME_TIMESTAMP, and whose MESSAGE is missing or odd. Searched for key by key:
    each search skips to its key's quote in C, where the one pattern would try its lookaheads
    at every byte of every record (a few times slower; property-tested to agree)."""

    def __init__(self) -> None:
        self._realtime = re.compile(REALTIME.encode())
        self._message = re.compile(MESSAGE_TOKEN.encode())
        self._odd = re.compile(_odd_message().encode())
        self._open = re.compile(rb"\n\{")

    def find(self, buf: bytes | bytearray, start: int, end: int) -> list[int]:
        heads = [start] if start < end else []
        heads += [m.start() + 1 for m in self._open.finditer(buf, start, end)]
        return [ls for ls in heads if self.matters(buf, ls, end)]

    def matters(self, buf: bytes | bytearray, ls: int, end: int) -> bool:
        if buf[ls : ls + 1] != b"{":
            return False
        nl = buf.find(b"\n", ls, end)
        stop = end if nl < 0 else nl + 1  # an odd MESSAGE may end with the line's newline
        if self._odd.search(buf, ls + 1, stop) is None and self._message.search(buf, ls + 1, stop):
            return False
        return self._realtime.search(buf, ls + 1, stop) is not None
