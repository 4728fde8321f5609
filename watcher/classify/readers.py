"""The line readers a scan feeds chunks of whole lines into.

`Reference` sends every line through framing.LineSplitter and grouping.SourceClassifier:
the semantics, spelled out. `Fast` gives the classifier the same lines' verdicts while
parsing only the lines a scan.Finder points at (and the line after one that may make
the next a continuation), counting the rest in bulk.

Both can also collect the own time of every line, in file order (`stamps`): `replay`
needs them for a file's watermark (its newest stamp) and for when the file wrote
records at all (the evidence of engine/evidence.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from watcher.classify import framing
from watcher.classify.grouping import SourceClassifier, opens_context
from watcher.classify.lines import LineParser, ParsedLine, timed_pattern
from watcher.classify.scan import Finder, line_start
from watcher.classify.stampscan import StampScan
from watcher.config.base import Format
from watcher.events import ErrorEvent

_WINDOW = 1 << 16
_ONE_BY_ONE = 8
"""Lines tried one by one from the end before searching backwards by windows."""


class Reference:
    """Every line through framing.LineSplitter and SourceClassifier: the semantics, spelled out."""

    def __init__(
        self,
        clf: SourceClassifier,
        max_line_bytes: int,
        emit: Callable[[ErrorEvent], None],
        stamps: list[float] | None = None,
    ):
        self.clf = clf
        self._splitter = framing.LineSplitter(max_line_bytes)
        self._emit = emit
        self.stamps = stamps

    def feed(self, chunk: bytes) -> None:
        for line in self._splitter.feed(chunk):
            self._line(line)

    def finish(self) -> None:
        line = self._splitter.flush()
        if line is not None:
            self._line(line)

    def _line(self, line: framing.Line) -> None:
        event = self.clf.feed_line(line)
        if event is not None:
            self._emit(event)
        if self.stamps is not None and self.clf.line_at is not None:
            self.stamps.append(self.clf.line_at)


class Fast:
    """Feeds a SourceClassifier from raw chunks, parsing only the lines a Finder points at.

    Chunks are cut at their last newline; the unfinished rest waits for the next chunk,
    at most max_line_bytes of it (the rest only counted), like framing.LineSplitter.
    """

    def __init__(
        self,
        clf: SourceClassifier,
        finder: Finder,
        max_line_bytes: int,
        emit: Callable[[ErrorEvent], None],
        stamps: list[float] | None = None,
    ):
        self.clf = clf
        self._finder = finder
        self._max = max_line_bytes
        self._emit = emit
        self.stamps = stamps
        self._timed = TimedLines(clf.parser.fmt)
        self._parser = clf.parser
        self._carry = bytearray()
        self._dropped = 0
        self._stampscan: StampScan | None = None
        # Where the line being fed sits, and from where back its block has lines whose own
        # times the classifier has not seen (they were skipped): `_stamp_before` looks there.
        self._blk: Block | None = None
        self._pos = self._stamp_from = 0
        clf.stamp_before = self._stamp_before
        self._force_next = False
        """The last line fed may make the next one a continuation: the next line is fed too."""

    def feed(self, chunk: bytes) -> None:
        start = 0
        if self._carry or self._dropped:
            nl = chunk.find(b"\n")
            if nl < 0:
                self._hold(chunk, 0, len(chunk))
                return
            self._hold(chunk, 0, nl)
            self._carried(self._take_carry())
            start = nl + 1
        last = chunk.rfind(b"\n", start)
        if last >= 0:
            self._block(chunk, start, last + 1)
            start = last + 1
        self._hold(chunk, start, len(chunk))

    def finish(self) -> None:
        if self._carry or self._dropped:
            self._carried(self._take_carry())

    def _carried(self, line: framing.Line) -> None:
        """A line that spanned chunks: on the precise path, outside any block."""
        self._blk = None
        self._line(line)
        self._force_next = opens_context(self.clf.prev_message or "")
        if self.stamps is not None and self.clf.line_at is not None:
            self.stamps.append(self.clf.line_at)

    def _stamp_before(self) -> float | None:
        """The own time of the last line before the one being fed that has one.

        Looks back over the lines skipped since the classifier last saw a time, once: the
        answer becomes the classifier's `last_stamp`, so a file is searched at most once."""
        blk = self._blk
        if blk is not None and self._stamp_from < self._pos:
            for ls in self._timed.starts(blk.buf, self._stamp_from, self._pos, reverse=True):
                at = blk.parsed(ls, self._parser).at
                if at is not None:
                    self.clf.last_stamp = at
                    break
            self._stamp_from = self._pos
        return self.clf.last_stamp

    def _hold(self, chunk: bytes, a: int, b: int) -> None:
        take = min(b - a, max(0, self._max - len(self._carry)))
        self._carry += chunk[a : a + take]
        self._dropped += b - a - take

    def _take_carry(self) -> framing.Line:
        data, cut = bytes(self._carry), self._dropped
        self._carry.clear()
        self._dropped = 0
        return framing.Line(data if cut or not data.endswith(b"\r") else data[:-1], cut)

    def _line(self, line: framing.Line) -> None:
        event = self.clf.feed_line(line)
        if event is not None:
            self._emit(event)

    def _block(self, buf: bytes, start: int, end: int) -> None:
        """Lines [start, end) of `buf`, each ending with a newline."""
        blk = Block(buf, start, end, self._max)
        forced = {start, *blk.long} if self._force_next else set(blk.long)
        scanned: bytes | bytearray = buf
        if not buf.isascii():
            try:
                str(memoryview(buf)[start:end], "utf-8")  # valid, the common case: one check in C
            except UnicodeDecodeError:
                bad = bad_lines(buf, start, end)
                forced.update(bad)
                scanned = blank_lines(buf, bad, end)  # hyperscan wants valid UTF-8
        stats = self.clf.stats
        if stats.first_at is None:
            stats.first_at = self._time(blk, reverse=False)
        if self.stamps is not None:
            self.stamps += self._every_time(blk)
        self._blk, self._stamp_from = blk, start
        if self._finder.every_line:
            fed_last = self._walk(blk, blk.starts())
        else:
            fed_last = self._walk(blk, iter(sorted(forced | self._finder.find(scanned, start, end))))
        # A live chunk is often one line, just fed: its own time is the block's last one.
        last = self.clf.line_at if fed_last else None
        if last is None:
            last = self._time(blk, reverse=True)
        if last is not None:
            stats.last_at = self.clf.last_stamp = last
        self._blk = None

    def _every_time(self, blk: Block) -> list[float]:
        """The own times of the block's lines, in order."""
        if self._stampscan is None:
            self._stampscan = StampScan(self._parser.fmt, self._max)

        def text(ls: int) -> str:
            return framing.decode(blk.line(ls, blk.line_end(ls)))[0]

        return self._stampscan.times(blk.buf, blk.start, blk.end, text, long_lines=bool(blk.long))

    def _time(self, blk: Block, reverse: bool) -> float | None:
        """The own time of the block's first (or last) line that has one.

        The last line is parsed straight away: it usually has a time, and a live chunk is
        often that one line (looking for the shape of a time first would cost as much again)."""
        end = blk.end
        if reverse:
            last = line_start(blk.buf, blk.start, end - 1)
            at = blk.parsed(last, self._parser).at
            if at is not None or last == blk.start:
                return at
            end = last
        for ls in self._timed.starts(blk.buf, blk.start, end, reverse):
            at = blk.parsed(ls, self._parser).at
            if at is not None:
                return at
        return None

    def _walk(self, blk: Block, starts: Iterator[int]) -> bool:
        """Feed the lines at `starts` (ascending), and the line after any line that may
        make the next one a continuation (grouping.opens_context); count the rest in bulk.
        Whether the block's last line was fed."""
        pos, force = blk.start, False  # pos: the first line not yet counted
        pending = next(starts, None)
        while pos < blk.end:
            if not force:
                while pending is not None and pending < pos:
                    pending = next(starts, None)
                if pending is None:
                    break
                if pending > pos:
                    self._skip(blk, pos, pending)
                    pos = pending
            end = blk.line_end(pos)
            self._pos = pos
            self._line(blk.line(pos, end))
            if self.clf.line_at is not None:
                self._stamp_from = end + 1
            pos = end + 1
            force = opens_context(self.clf.prev_message or "")
        self._force_next = force
        if pos < blk.end:
            self._skip(blk, pos, blk.end)
            self._force_next = False  # a skipped line gives no line after it context
            return False
        return True

    def _skip(self, blk: Block, a: int, b: int) -> None:
        """Lines [a, b): each a record of its own, without an error; the last one is parsed
        only if the next line continues its record."""
        last = line_start(blk.buf, a, b - 1)

        def parse() -> ParsedLine:
            raw = blk.buf[last : b - 1]
            return self._parser.parse((raw[:-1] if raw.endswith(b"\r") else raw).decode("utf-8"))

        self.clf.skip(blk.buf.count(b"\n", a, b), parse)


class Block:
    """A buffer's run of whole lines, and which of them are longer than max_line_bytes."""

    def __init__(self, buf: bytes, start: int, end: int, max_line_bytes: int) -> None:
        self.buf, self.start, self.end, self.max = buf, start, end, max_line_bytes
        self.long = self._long_lines()

    def _long_lines(self) -> dict[int, int]:
        """Start -> end of each line longer than max: such a line covers a whole window of
        max/2 bytes, so looking for a newline in each window finds them in a few steps."""
        if self.end - self.start <= self.max:  # a live chunk, mostly: no room for one
            return {}
        buf, step, out = self.buf, max(1, self.max // 2), {}
        pos = self.start
        for w in range(self.start, self.end, step):
            if w < pos or buf.find(b"\n", w, w + step) >= 0:
                continue
            ls, le = line_start(buf, self.start, w), buf.find(b"\n", w, self.end)
            if le - ls > self.max:
                out[ls] = le
            pos = le + 1
        return out

    def line_end(self, ls: int) -> int:
        return self.long[ls] if ls in self.long else self.buf.find(b"\n", ls, self.end)

    def line(self, ls: int, le: int) -> framing.Line:
        """The line as framing.LineSplitter would give it."""
        if le - ls > self.max:
            return framing.Line(self.buf[ls : ls + self.max], le - ls - self.max)
        data = self.buf[ls:le]
        return framing.Line(data[:-1] if data.endswith(b"\r") else data)

    def parsed(self, ls: int, parser: LineParser) -> ParsedLine:
        return parser.parse(framing.decode(self.line(ls, self.line_end(ls)))[0])

    def starts(self) -> Iterator[int]:
        pos = self.start
        while pos < self.end:
            yield pos
            pos = self.buf.find(b"\n", pos, self.end) + 1


def bad_lines(buf: bytes, start: int, end: int) -> list[int]:
    """Starts of the lines in [start, end) that are not valid UTF-8.

    Decodes window by window, so a chunk with many bad lines costs a few passes over
    each window, not one pass over the chunk per bad line.
    """
    view, out, pos = memoryview(buf), [], start
    while pos < end:
        stop = buf.find(b"\n", min(pos + _WINDOW, end - 1), end) + 1
        try:
            str(view[pos:stop], "utf-8")
        except UnicodeDecodeError as exc:
            out.append(line_start(buf, pos, pos + exc.start))
            pos = buf.find(b"\n", pos + exc.start, end) + 1
            continue
        pos = stop
    return out


def blank_lines(buf: bytes, starts: list[int], end: int) -> bytearray:
    """A copy of `buf` with the lines at `starts` overwritten by spaces (their length kept)."""
    out = bytearray(buf)
    for ls in starts:
        le = buf.find(b"\n", ls, end)
        out[ls:le] = b" " * (le - ls)
    return out


class TimedLines:
    """Lines that may carry their own time, by the same regexes LineParser uses."""

    def __init__(self, fmt: Format) -> None:
        pattern = timed_pattern(fmt).encode()
        self._at = re.compile(pattern, re.M)  # `$` is the end of a line, as in LineParser
        self._after_newline = re.compile(b"\\n(?=" + pattern + b")", re.M)

    def starts(self, buf: bytes, start: int, end: int, reverse: bool) -> Iterator[int]:
        """Candidate line starts in [start, end), from the first or from the last.

        Backwards, the last few lines are tried one by one (the last line usually has a
        time: listing a whole window of candidates for it cost more than the scan), then
        the rest in windows."""
        if not reverse:
            yield from self._window(buf, start, end)
            return
        hi = end
        for _ in range(_ONE_BY_ONE):
            if hi <= start:
                return
            ls = line_start(buf, start, hi - 1)
            if self._at.match(buf, ls, end):
                yield ls
            hi = ls
        while hi > start:
            lo = line_start(buf, start, max(start, hi - _WINDOW))
            yield from reversed(list(self._window(buf, lo, hi)))
            hi = lo

    def _window(self, buf: bytes, lo: int, hi: int) -> Iterator[int]:
        if self._at.match(buf, lo, hi):
            yield lo
        for m in self._after_newline.finditer(buf, lo, hi):
            if m.start() + 1 < hi:
                yield m.start() + 1
