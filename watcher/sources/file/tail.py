"""One open file read as whole lines: the bytes-to-Chunks part of following a file.

Each read (up to 256 KiB, less while the daemon is slow to handle them: ReadSize) becomes
whole lines as raw bytes (no splitting, decoding or CR stripping: the consumer's scanner
does that); only a line spanning reads goes through
the LineSplitter, which bounds it to `max_line_bytes`. A copytruncate with a writer
that does not use O_APPEND leaves a NUL-filled hole: only the runs between NULs are
delivered, at their own offsets.

Times (the follower's clock, for watermarks): `caught_t` is the clock before the last
read that found EOF; a partial line held at EOF was written after the caught-up read
that preceded it, so this file can vouch for everything up to `partial_t` but no
further while it is held. None means no such read yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from watcher.classify.framing import Line, LineSplitter
from watcher.sources.file.cursor import OpenFile

CHUNK = 256 * 1024
"""Bytes per read at most, and so per Chunk (plus one finished partial line)."""
READ_FIRST = CHUNK // 4
"""Bytes of the first read: a backlog of costly records stalls the loop for less before reads adapt."""
READ_MIN = 16 * 1024
"""Bytes per read at least, however slow the daemon is to handle what was read."""
TURN_BUDGET = 0.05
"""CPU seconds the daemon's loop may take over one turn (handling the last read among
everything else) before reads get smaller."""
_NON_NUL = re.compile(rb"[^\0]+")


@dataclass(slots=True)
class ReadSize:
    """Bytes per read. A chunk of an error storm's records costs a hundred times as much to
    handle as one of info lines, and everything else on the daemon's loop (the API, other
    sources) waits for it: reads halve while a turn of the loop takes more than TURN_BUDGET of
    CPU, and double back once turns are short. CPU time, not wall time: a process that waits
    for a core has not done more work."""

    now: int = READ_FIRST

    def after_turn(self, cpu: float) -> None:
        if cpu > TURN_BUDGET:
            self.now = max(READ_MIN, self.now // 2)
        elif cpu < TURN_BUDGET / 4:
            self.now = min(CHUNK, self.now * 2)


@dataclass(slots=True)
class Tally:
    """Damaged lines the follower found itself: the source's `counters()`."""

    truncated: int = 0
    copytruncate: int = 0


@dataclass(frozen=True, slots=True)
class Lines:
    """Whole lines read from a file, and the offset just after them."""

    data: bytes
    end: int


class Tail:
    """An open file, its held partial line and what its reads found."""

    def __init__(self, f: OpenFile, max_line_bytes: int, tally: Tally, stream: str = "") -> None:
        self.f = f
        self.tally = tally
        self.splitter = LineSplitter(max_line_bytes)
        self.stream = stream
        """"" for the file at the path; "rotated" for one still read after a rotation."""
        self.caught_t: float | None = None
        self.partial_t: float | None = None
        self.active = 0.0
        """Monotonic time of the last read that found data (a rotated file retires when idle)."""

    def vouches(self) -> float | None:
        """Up to when this file's lines have all been read (None: not known yet)."""
        return self.caught_t if not self.splitter.pending else self.partial_t

    def whole_lines(self, chunk: bytes, base: int) -> list[Lines]:
        """The whole lines a read of `chunk` at file offset `base` completes (the caller moves
        the file's `line_end` past each as it hands them on)."""
        segs = [(m.start(), m.group()) for m in _NON_NUL.finditer(chunk)] if b"\0" in chunk else [(0, chunk)]
        out: list[Lines] = []
        for start, seg in segs:
            data = self._segment(seg)
            if data is not None:
                out.append(Lines(data, base + start + seg.rfind(b"\n") + 1))
        return out

    def _segment(self, seg: bytes) -> bytes | None:
        """The whole lines `seg` completes (a held partial line first); None when it ends none."""
        held = self.splitter.pending
        last_nl = seg.rfind(b"\n")
        if last_nl < 0:
            self.splitter.feed(seg)
            if not held:
                self.partial_t = self.caught_t
            return None
        if held:
            # Finish the line begun in an earlier read (bounded by the splitter).
            nl = seg.find(b"\n")
            (line,) = self.splitter.feed(seg[: nl + 1])
            self._count(line)
            # Give back a CR the splitter dropped: bodies keep theirs too.
            eol = b"\n" if len(line.data) + line.cut == held + nl else b"\r\n"
            data = line.data + eol + seg[nl + 1 : last_nl + 1]
        else:
            data = seg[: last_nl + 1]  # no copy when the read ends with a newline
        if last_nl + 1 < len(seg):
            self.splitter.feed(seg[last_nl + 1 :])  # the new partial line, held back
        self.partial_t = self.caught_t
        return data

    def last_line(self) -> bytes | None:
        """The held partial line of a file that will not grow any more, with a newline."""
        last = self.splitter.flush()
        if last is None:
            return None
        self._count(last)
        return last.data + b"\n"

    def rewind(self) -> None:
        """Read the file again from its start (it was truncated)."""
        self.splitter.reset()  # the partial line's end went to the copy
        self.f.seek(0)
        self.caught_t = self.partial_t = None

    def _count(self, line: Line) -> None:
        if line.cut:
            self.tally.truncated += 1
