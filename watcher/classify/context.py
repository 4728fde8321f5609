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
from watcher.classify.lines import DATE_TIME, MESSAGE_TOKEN, REALTIME, TIMESTAMP, time_key_start
from watcher.config.base import Format


def exact_pattern(fmt: Format) -> str:
    """A lookahead that matches at the start of a line that may be a continuation by itself or
    enable the next one."""
    lead = rf"(?>{TIMESTAMP}(?:[ \t]|(?![ \t])))"
    shape = f"(?={CONTINUATION_FIRST})(?:{CONTINUATION_START})"  # a cheap first test: most lines fail it
    key_start = time_key_start(fmt)
    keyed = f"|({key_start}{DATE_TIME})" if key_start is not None and fmt != "journal" else ""
    other = [shape]
    if fmt == "journal":  # a record whose MESSAGE is missing, escaped, bytes or continuation-like
        key = r'"MESSAGE"[ \t\r]*:[ \t\r]*'
        other.append(
            rf"\{{(?=[^\n]*?{REALTIME})(?:(?![^\n]*?{MESSAGE_TOKEN})"
            rf'|[^\n]*?{key}(?:\[|"[^"\\\n]*\\|"(?:"|{shape})))'
        )
    # A lookahead, so that a match never swallows the next line's newline. The atomic group
    # commits to the first of: a leading timestamp (group 1), a time key (group 2, never
    # matters), neither.
    rest = f"(?:{'|'.join(other)})"
    if keyed:
        rest = f"(?(2)(?!)|{rest})"
    return rf"(?=(?>({lead}){keyed}|)(?(1){lead}?{shape}|{rest}))"


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
        at = exact_pattern(fmt).encode()
        self._at = re.compile(at, re.M)  # `$`: a line's end
        self._after_newline = re.compile(b"\\n" + at, re.M)

    def find(self, buf: bytes | bytearray, start: int, end: int) -> set[int]:
        """Starts of the lines in [start, end) that matter (`start` is a line's start)."""
        found = {s for m in self._after_newline.finditer(buf, start, end) if (s := m.start() + 1) < end}
        if start < end and self._at.match(buf, start, end):
            found.add(start)
        return found

    def confirm(self, buf: bytes | bytearray, line: int, end: int) -> bool:
        """Whether the line at `line` matters."""
        return self._at.match(buf, line, end) is not None
