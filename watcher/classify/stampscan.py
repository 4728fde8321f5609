"""Every line's own time in a buffer of whole lines, in order: what `replay` needs of a file.

A file's watermark is its newest stamp and its evidence is when it wrote records
(engine/evidence.py), so replay needs the time of every line, not only of the lines the
fast scanner parses. Parsing each line costs microseconds; here the common shapes are
read straight from the bytes by one regex over the buffer: a leading RFC 3339 stamp, a
first key `{"ts":` or `ts=` followed by one (the highest-ranked time key, so nothing
later in the line can beat it), and a journal record's `__REALTIME_TIMESTAMP`. Their
whole seconds and their fraction and zone are cached by their text (consecutive lines
mostly share them). Every other line that may carry a time (the shapes of
lines.timed_pattern) goes through LineParser, and so does a stamp that reaches past
max_line_bytes (the classifier sees the line cut there): the times are exactly
LineParser's.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from watcher.classify.lines import DATE_TIME, REALTIME, LineParser, seconds, timed_pattern, with_zone
from watcher.config.base import Format

_DATE_TIME = re.compile(rb"([0-9]{4})-([0-9]{2})-([0-9]{2}).([0-9]{2}):([0-9]{2}):([0-9]{2})")
_REST = r"((?:[.,][0-9]+)?(?:[Zz]|[+-][0-2][0-9]:?[0-5][0-9])?)"
_ZONE = re.compile(rb"(?:[.,]([0-9]+))?(?:([+-])([0-9]{2}):?([0-9]{2}))?")
_CACHE = 1 << 16
"""Texts remembered; past this many the cache starts over (a file spanning weeks)."""

Text = Callable[[int], str]
"""The text of the line at a position, as the classifier sees it (decoded, cut to max_line_bytes)."""


class StampScan:
    """The own times of a format's lines, from raw buffers."""

    def __init__(self, fmt: Format, max_line_bytes: int) -> None:
        self._max = max_line_bytes
        self._journal = fmt == "journal"
        if self._journal:
            fast = rf"\{{[^\n]*?{REALTIME}"
            shape = fast
        else:
            prefixes = [""]
            if fmt in ("auto", "docker", "json"):
                prefixes.append(r'\{"ts":"?')
            if fmt in ("auto", "docker", "logfmt"):
                prefixes.append(r'ts="?')
            lead = f"(?:{'|'.join(prefixes)})"
            fast = f"{lead}({DATE_TIME}){_REST}"
            shape = f"{lead}(?={DATE_TIME})"
        # Each pattern twice: after a newline (a literal first: the regex engine skips to it),
        # and at the start of the buffer's first line.
        # re.M: `$` in these patterns is a line's end, as in LineParser.
        self._fast = (re.compile(f"\n{fast}".encode(), re.M), re.compile(fast.encode(), re.M))
        slow = f"(?!{shape})(?:{timed_pattern(fmt)})"
        self._slow = (re.compile(f"\n{slow}".encode(), re.M), re.compile(slow.encode(), re.M))
        self._parser = LineParser(fmt)
        self._seconds: dict[bytes, int] = {}
        self._zones: dict[bytes, tuple[int, float | None]] = {}

    def times(self, buf: bytes, start: int, end: int, text: Text, *, long_lines: bool) -> list[float]:
        """The own times of the whole lines in buf[start:end], in order. `long_lines`: some line
        is longer than max_line_bytes (where a stamp may be cut off)."""
        slow = _starts(self._slow, buf, start, end)
        if not slow and not long_lines:
            return self._quick(buf, start, end)
        found = [(m.start(), self._read(m, text)) for m in _matches(self._fast, buf, start, end)]
        found += [(ls, self._parser.parse(text(ls)).at) for ls in slow]
        return [at for _, at in sorted(found) if at is not None]

    def _quick(self, buf: bytes, start: int, end: int) -> list[float]:
        """Every fast-shaped line's time, when those are all the timed lines and none is cut."""
        nl, first = self._fast
        head = first.match(buf, start, end)
        if self._journal:
            digits = ([head.group(1)] if head else []) + nl.findall(buf, start, end)
            return [int(d) / 1e6 for d in digits]
        found = ([head.group(1, 2)] if head else []) + nl.findall(buf, start, end)
        return [self._value(dt, rest) for dt, rest in found]

    def _read(self, m: re.Match[bytes], text: Text) -> float | None:
        """A fast match's time, unless the classifier sees the line cut before its end."""
        ls = m.start() + (m.group(0)[:1] == b"\n")
        if m.end() - ls > self._max:
            return self._parser.parse(text(ls)).at
        if self._journal:
            return int(m.group(1)) / 1e6
        return self._value(m.group(1), m.group(2))

    def _value(self, date_time: bytes, rest: bytes) -> float:
        """with_zone(seconds(...), ...) for a stamp's two parts, each parsed once."""
        base = self._seconds.get(date_time)
        if base is None:
            if len(self._seconds) >= _CACHE:
                self._seconds.clear()
            dt = _DATE_TIME.match(date_time)
            assert dt is not None  # the fast pattern matched DATE_TIME
            base = self._seconds[date_time] = seconds(*dt.groups())
        zone = self._zones.get(rest)
        if zone is None:
            if len(self._zones) >= _CACHE:
                self._zones.clear()
            z = _ZONE.match(rest)
            assert z is not None  # everything in it is optional
            frac, sign, oh, om = z.groups()
            offset = round(with_zone(0, None, sign, oh, om))
            zone = self._zones[rest] = (offset, float(b"0." + frac) if frac else None)
        at = base + zone[0]
        return float(at) if zone[1] is None else at + zone[1]


def _matches(
    patterns: tuple[re.Pattern[bytes], re.Pattern[bytes]], buf: bytes, start: int, end: int
) -> list[re.Match[bytes]]:
    nl, first = patterns
    head = first.match(buf, start, end)
    return ([head] if head else []) + list(nl.finditer(buf, start, end))


def _starts(
    patterns: tuple[re.Pattern[bytes], re.Pattern[bytes]], buf: bytes, start: int, end: int
) -> list[int]:
    """Line starts where the pattern matches."""
    nl, first = patterns
    out = [start] if first.match(buf, start, end) else []
    return out + [m.start() + 1 for m in nl.finditer(buf, start, end)]
