"""One `FileSource.read()`: the file at the path followed by name, like `tail -F`.

Rotation is noticed at EOF by comparing the path's inode with the open one: the old
descriptor is drained to EOF before the new file is read from 0, so nothing written
before the rename is lost. A shrinking file, or one whose first bytes changed, was
copy-truncated: counted, then read again from 0 with NUL runs (the hole a
non-O_APPEND writer leaves) skipped.

Each 64 KiB read becomes one `Chunk` of whole lines as raw bytes (no splitting,
decoding or CR stripping: the consumer's scanner does that); only a line spanning
reads goes through the LineSplitter, which bounds it to `max_line_bytes`.

Watermarks: `caught_t` is the clock before the last read that found EOF on a file
still at the path. A partial line held at EOF was written after the caught-up read
that preceded it, so the watermark may go that far (`partial_t`) but no further;
None means no such read yet (the partial may be old).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from watcher.classify.framing import Line, LineSplitter
from watcher.events import Chunk, Gap, SourceDown, Watermark
from watcher.sources import SourceEvent
from watcher.sources.file.cursor import FP_SIZE, Cursor, OpenFile

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
"""Bytes per read, and so at most per Chunk (plus one finished partial line)."""
IDLE_WATERMARK_EVERY = 0.25
"""Seconds between watermarks while nothing is written; new lines get one at once."""
_NON_NUL = re.compile(rb"[^\0]+")
Step = tuple[list[SourceEvent], float | None]
"""What one step yields, and how long to sleep before the next (None: go on at once)."""


@dataclass(slots=True)
class Tally:
    """Damaged lines the follower found itself: the source's `counters()`."""

    truncated: int = 0
    copytruncate: int = 0


@dataclass(frozen=True, slots=True)
class Settings:
    name: str
    path: str
    max_line_bytes: int
    clock: Callable[[], float]
    poll: float


class Follower:
    """The open file, its splitter and its watermark bookkeeping, for one read()."""

    def __init__(self, cfg: Settings, tally: Tally, after: str | None) -> None:
        self.cfg = cfg
        self.tally = tally
        self.splitter = LineSplitter(cfg.max_line_bytes)
        self.resume = Cursor.parse(after) if after else None
        if after and self.resume is None:
            log.warning("%s: unreadable cursor %r; reading %s from the start", cfg.name, after, cfg.path)
        self.file: OpenFile | None = None
        self.down: str | None = None
        self.missing = "file missing"
        self.delay = cfg.poll
        self.caught_t: float | None = None
        self.partial_t: float | None = None
        self.last_wm = float("-inf")
        self.last_wm_mono = float("-inf")
        self.fresh = False

    async def events(self) -> AsyncGenerator[SourceEvent, None]:
        try:
            while True:
                if self.file is None:
                    out, wait = self._open()
                else:
                    try:
                        out, wait = self._step(self.file)
                    except OSError as exc:
                        out, wait = self._lost(self.file, exc)
                for event in out:
                    yield event
                if wait is not None:
                    await asyncio.sleep(wait)
        finally:
            if self.file is not None:
                os.close(self.file.fd)

    # ---- opening and losing the file ---------------------------------------------

    def _open(self) -> Step:
        try:
            f, gap = self._locate(self.resume)
        except OSError as exc:
            reason = self.missing if isinstance(exc, FileNotFoundError) else self._fail(exc)
            if reason != self.down:
                log.warning("%s: %s", self.cfg.name, reason)
            return self._report_down(reason), self._backoff()
        self.file = f
        self.resume, self.missing = None, "file missing"
        self.splitter.reset()
        self.caught_t = self.partial_t = None
        return ([gap] if gap is not None else []), None

    def _lost(self, f: OpenFile, exc: OSError) -> Step:
        reason = self._fail(exc)
        log.warning("%s: %s; reopening", self.cfg.name, reason)
        self.resume = f.resume_point()
        os.close(f.fd)
        self.file = None
        return self._report_down(reason), self._backoff()

    def _report_down(self, reason: str) -> list[SourceEvent]:
        if reason == self.down:
            return []
        self.down = reason
        return [SourceDown(self.cfg.name, reason)]

    def _backoff(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, 8 * self.cfg.poll)
        return delay

    def _locate(self, resume: Cursor | None) -> tuple[OpenFile, Gap | None]:
        """The file to read next, positioned; raises OSError when there is none yet."""
        try:
            f = OpenFile(self.cfg.path)
        except FileNotFoundError:
            pred = self._predecessor(resume) if resume else None
            if pred is None:
                raise
            return pred, None
        try:
            if resume is None:
                return f, None
            if f.matches(resume):
                f.seek(resume.offset)
                f.set_fp(os.pread(f.fd, FP_SIZE, 0))
                return f, None
            pred = self._predecessor(resume)
            if pred is not None:
                os.close(f.fd)
                return pred, None
            # The cursor's file is gone, and with it whatever it held past the offset. When
            # that was written is unknown; the new file's mtime bounds when the old one stopped.
            now = self.cfg.clock()
            reason = "file replaced while not watching; unread tail lost"
            log.warning("%s: %s: %s", self.cfg.name, self.cfg.path, reason)
            return f, Gap(self.cfg.name, min(os.fstat(f.fd).st_mtime, now), now, reason)
        except OSError:
            os.close(f.fd)
            raise

    def _predecessor(self, cur: Cursor) -> OpenFile | None:
        """The cursor's file renamed within the same directory (path.1, path-20240501, ...)."""
        parent, base = os.path.split(self.cfg.path)
        try:
            with os.scandir(parent or ".") as entries:
                for entry in entries:
                    if entry.name == base or not entry.is_file(follow_symlinks=False):
                        continue
                    st = entry.stat(follow_symlinks=False)
                    if (st.st_dev, st.st_ino) != (cur.dev, cur.ino):
                        continue
                    f = OpenFile(entry.path)
                    if not f.matches(cur):
                        os.close(f.fd)
                        return None
                    f.seek(cur.offset)
                    f.retiring = "rotated"
                    log.info("%s: resuming in rotated %s before %s", self.cfg.name, entry.path, self.cfg.path)
                    return f
        except OSError as exc:
            log.warning("%s: looking for the rotated file: %s", self.cfg.name, exc)
        return None

    def _fail(self, exc: OSError) -> str:
        return f"{self.cfg.path}: {exc.strerror or exc}"

    # ---- reading -------------------------------------------------------------------

    def _step(self, f: OpenFile) -> Step:
        t0 = self.cfg.clock()
        chunk = os.read(f.fd, CHUNK)
        if chunk:
            return self._chunk(f, chunk), 0.0  # let the rest of the daemon run between chunks
        if f.retiring is not None:
            return self._retire(f), None
        change = self._check(f)
        if change == "truncated":
            self._rewind(f)
            return [], None
        if change is not None:
            log.info("%s: %s was %s; draining the old file", self.cfg.name, self.cfg.path, change)
            f.retiring = change
            return [], None
        return self._caught_up(t0), self.cfg.poll

    def _chunk(self, f: OpenFile, chunk: bytes) -> list[SourceEvent]:
        base = f.pos
        f.pos += len(chunk)
        # Checked before delivering: a copytruncate seen only at EOF would let
        # post-truncation bytes past our old offset through twice.
        if not f.head_ok():
            self._rewind(f)
            return []
        # Copytruncate with a non-O_APPEND writer leaves a NUL-filled hole:
        # feed only the runs between NULs, keeping their file offsets.
        segs = [(m.start(), m.group()) for m in _NON_NUL.finditer(chunk)] if b"\0" in chunk else [(0, chunk)]
        out: list[SourceEvent] = []
        for start, seg in segs:
            data = self._whole_lines(seg)
            if data is not None:
                f.line_end = base + start + seg.rfind(b"\n") + 1
                # Read after a caught-up read of this file: written as it is read (live).
                out.append(
                    Chunk(self.cfg.name, data, f"{f.prefix}{f.line_end}", live=self.caught_t is not None)
                )
        return out

    def _whole_lines(self, seg: bytes) -> bytes | None:
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
        self.fresh = True
        return data

    def _retire(self, f: OpenFile) -> list[SourceEvent]:
        """The old file is complete: its last line will never get a newline."""
        out: list[SourceEvent] = []
        last = self.splitter.flush()
        if last is not None:
            self._count(last)
            self.fresh = True
            out.append(Chunk(self.cfg.name, last.data + b"\n", f"{f.prefix}{f.pos}"))
        if f.retiring == "removed":
            self.missing = "file removed"
        os.close(f.fd)
        self.file = None
        return out

    def _caught_up(self, t0: float) -> list[SourceEvent]:
        """Caught up with the file at the path: healthy again."""
        self.delay = self.cfg.poll
        wm = t0 if not self.splitter.pending else self.partial_t
        self.caught_t = t0
        now = time.monotonic()
        if wm is None or wm <= self.last_wm:
            return []
        if not self.fresh and now - self.last_wm_mono < IDLE_WATERMARK_EVERY:
            return []
        self.last_wm, self.last_wm_mono, self.fresh, self.down = wm, now, False, None
        return [Watermark(self.cfg.name, wm)]  # the daemon takes this as "up" again

    def _check(self, f: OpenFile) -> str | None:
        """Why the open file is no longer the one to follow at the path, or None."""
        try:
            st = os.stat(self.cfg.path)
        except FileNotFoundError:
            return "removed" if os.fstat(f.fd).st_nlink == 0 else "rotated"
        if (st.st_dev, st.st_ino) != (f.dev, f.ino):
            return "rotated"
        if st.st_size < f.pos or not f.head_ok():
            return "truncated"
        return None

    def _rewind(self, f: OpenFile) -> None:
        self.tally.copytruncate += 1
        log.warning(
            "%s: %s was truncated (copytruncate?); reading it from the start", self.cfg.name, self.cfg.path
        )
        self.splitter.reset()  # the partial line's end went to the copy
        f.seek(0)
        f.set_fp(os.pread(f.fd, FP_SIZE, 0))
        self.caught_t = self.partial_t = None

    def _count(self, line: Line) -> None:
        if line.cut:
            self.tally.truncated += 1
