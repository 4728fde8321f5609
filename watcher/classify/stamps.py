"""When a live chunk's records were written: the evidence that a source writes at all.

For each chunk of whole lines a source yields, the engine is told times at which the
source has records (`engine.seen`): they prove the source could have shown an error
then (DESIGN §2.1). Each time is a real record's own stamp (or the arrival time, for
records without one); not every record needs to be named, only enough for the
engine's questions ("a record in this window?", "a gap longer than expect_every?"):

- usually the first and the last stamped line of the chunk (a live chunk spans
  milliseconds);
- every stamped line when the chunk spans more than EXACT_SPAN seconds (a backlog of
  a sparse log), so that no silence inside it goes unseen;
- with `expect_match`, only the records whose message matches, all of them.

The newest stamp also gives the source's clock skew against the arrival time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from watcher.classify.lines import LineParser
from watcher.classify.readers import TimedLines
from watcher.patterns import Regex

EXACT_SPAN = 10.0
"""Seconds a chunk may span before every stamp in it is named, not just its first and last."""


@dataclass(frozen=True, slots=True)
class Times:
    times: list[float]
    """Times at which the chunk has records (meeting the expectation, when there is one)."""
    newest: float | None
    """The own stamp of the chunk's last line that has one."""


class ChunkTimes:
    """The record times of chunks of whole lines of one source."""

    def __init__(self, parser: LineParser, expect: Regex | None, *, by_shape: bool) -> None:
        """`by_shape`: the parser uses the default time keys, so TimedLines finds its stamped
        lines by regex; otherwise every line is parsed."""
        self._parser = parser
        self._expect = expect
        self._timed = TimedLines(parser.fmt) if by_shape else None

    def times(self, data: bytes, now: float | None) -> Times:
        if self._expect is None and data.find(b"\n") == len(data) - 1:  # one line, as live chunks often are
            at = self._parser.parse(data[:-1].decode("utf-8", "replace")).at
            return Times([at], at) if at is not None else Times([] if now is None else [now], None)
        first = next(self._stamps(data, reverse=False), None)
        last = next(self._stamps(data, reverse=True), None)
        if self._expect is not None:
            return Times(self._matching(data, self._expect, now), last)
        if first is None or last is None:
            return Times([] if now is None else [now], None)
        if abs(last - first) > EXACT_SPAN:
            return Times(list(self._stamps(data, reverse=False)), last)
        return Times([first] if first == last else [first, last], last)

    def _stamps(self, data: bytes, *, reverse: bool) -> Iterator[float]:
        """The own times of the chunk's lines, from its first line or from its last."""
        if self._timed is not None:
            starts: Iterator[int] = self._timed.starts(data, 0, len(data), reverse)
        else:
            starts = _line_starts(data, reverse)
        for ls in starts:
            end = data.find(b"\n", ls)
            at = self._parser.parse(data[ls : end if end >= 0 else len(data)].decode("utf-8", "replace")).at
            if at is not None:
                yield at

    def _matching(self, data: bytes, expect: Regex, now: float | None) -> list[float]:
        out: list[float] = []
        for text in data.decode("utf-8", "replace").splitlines():
            if not expect.search(text):  # the raw line: a superset of the messages that match
                continue
            line = self._parser.parse(text)
            at = line.at if line.at is not None else now
            if at is not None and expect.search(line.message):
                out.append(at)
        return out


def _line_starts(data: bytes, reverse: bool) -> Iterator[int]:
    starts = [0, *(m.end() for m in re.finditer(rb"\n(?=.)", data, re.S))]
    return reversed(starts) if reverse else iter(starts)
