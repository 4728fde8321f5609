"""One `FileSource.read()`: the file at the path followed by name, like `tail -F`.

Between reads it waits for inotify to say the file (or its directory) changed, or for
the poll interval, whichever comes first (inotify.py): a line is read as it is written,
and a missed event costs a poll interval at most.

Rotation is noticed at EOF by comparing the path's inode with the open one. The
renamed (or deleted) file is not left at once: a writer keeps writing to it until it
reopens its log (logrotate's postrotate/SIGHUP comes later), so it stays open and is
read, beside the new file at the path, until it has been idle for `rotate_wait` (as
Fluent Bit's Rotate_Wait). Each file is read in order; the rotated one's lines come in
a stream of their own ("rotated"), so a multi-line record never mixes the two files.

A shrinking file, or one whose first bytes changed, was copy-truncated: counted, then
read again from 0. What was written to it between our last read and the truncation
went to the copy unread: a gap, unless the copy (a sibling with the same first bytes)
is exactly as long as what we had read.

The resume cursor names the file at the path, then (after `|`) each rotated file still
being read, so a restart resumes in all of them. Watermarks: the file at the path and
every rotated one must be caught up (tail.py) for the source to vouch for a time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from watcher.events import Chunk, Gap, SourceDown, Watermark
from watcher.sources import SourceEvent
from watcher.sources.file.cursor import FP_SIZE, Cursor, OpenFile, digest
from watcher.sources.file.inotify import Wake
from watcher.sources.file.tail import CHUNK, ReadSize, Tail, Tally

log = logging.getLogger(__name__)

IDLE_WATERMARK_EVERY = 0.25
"""Seconds between watermarks while nothing is written; new lines get one at once."""
ROTATED = "rotated"
Step = tuple[list[SourceEvent], float | None]
"""What one step yields, and how long to sleep before the next (None: go on at once)."""
__all__ = ["CHUNK", "Follower", "Settings", "Tally"]


@dataclass(frozen=True, slots=True)
class Settings:
    name: str
    path: str
    max_line_bytes: int
    clock: Callable[[], float]
    poll: float
    rotate_wait: float = 5.0


class Follower:
    """The file at the path, the rotated files still read, and the watermark bookkeeping."""

    def __init__(self, cfg: Settings, tally: Tally, after: str | None) -> None:
        self.cfg = cfg
        self.tally = tally
        parts = after.split("|") if after else []
        cursors = [Cursor.parse(p) if p else None for p in parts]
        if any(c is None for c, p in zip(cursors, parts, strict=True) if p):
            log.warning("%s: unreadable cursor %r; reading %s from the start", cfg.name, after, cfg.path)
            cursors = []
        self.resume = cursors[0] if cursors else None
        self.resume_rotated = [c for c in cursors[1:] if c is not None]
        self.file: Tail | None = None
        self.rotated: list[Tail] = []
        self.down: str | None = None
        self.missing = self._absent("no such file")
        self.delay = cfg.poll
        self.last_wm = float("-inf")
        self.last_wm_mono = float("-inf")
        self.fresh = False
        self.opened_t = cfg.clock()
        self.read_size = ReadSize()

    async def events(self) -> AsyncGenerator[SourceEvent, None]:
        wake = Wake(self.cfg.path)
        try:
            while True:
                wake.arm()
                wake.any_name = bool(self.rotated)
                out, wait = self._round()
                for event in out:
                    yield event
                if wait == 0.0:
                    cpu = time.thread_time()
                    await asyncio.sleep(0)  # more to read: let the rest of the daemon run meanwhile
                    self.read_size.after_turn(time.thread_time() - cpu)
                elif wait is not None:
                    await wake.wait(wait)
        finally:
            wake.close()
            for t in [*self.rotated, *([self.file] if self.file else [])]:
                os.close(t.f.fd)

    def _round(self) -> Step:
        """A read of each rotated file, then of the file at the path (or an attempt to open it)."""
        out: list[SourceEvent] = []
        waits: list[float | None] = []
        if self.resume_rotated:
            out += self._resume_rotated()
        for t in list(self.rotated):
            o, w = self._step_rotated(t)
            out += o
            waits.append(w)
        if self.file is None:
            o, w = self._open()
        else:
            try:
                o, w = self._step(self.file)
            except OSError as exc:
                o, w = self._lost(self.file, exc)
        out += o
        waits.append(w)
        if None in waits:
            return out, None
        return out, min(w for w in waits if w is not None)

    def _cursor(self) -> str:
        """The resume point: the file at the path, then each rotated file still read."""
        parts = [
            self.file.f.resume_point() if self.file else None,
            *(t.f.resume_point() for t in self.rotated),
        ]
        return "|".join("" if c is None else ":".join(map(str, c)) for c in parts)

    # ---- opening and losing the file ---------------------------------------------

    def _open(self) -> Step:
        try:
            f, gap = self._locate(self.resume)
        except OSError as exc:
            reason = self.missing if isinstance(exc, FileNotFoundError) else self._fail(exc)
            if reason != self.down:
                log.warning("%s: %s", self.cfg.name, reason)
            return self._report_down(reason), self._backoff()
        self.file = Tail(f, self.cfg.max_line_bytes, self.tally)
        self.resume, self.missing = None, self._absent("no such file")
        return ([gap] if gap is not None else []), None

    def _lost(self, t: Tail, exc: OSError) -> Step:
        reason = self._fail(exc)
        log.warning("%s: %s; reopening", self.cfg.name, reason)
        self.resume = t.f.resume_point()
        os.close(t.f.fd)
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
        """The file at the path, positioned; raises OSError when there is none yet.

        The cursor's file renamed meanwhile is read on as a rotated file."""
        if resume is not None and (pred := self._predecessor(resume)) is not None:
            self._keep_rotated(pred)
            self.resume = resume = None
        f = OpenFile(self.cfg.path)
        try:
            if resume is None or f.matches(resume):
                if resume is not None:
                    f.seek(resume.offset)
                    f.set_fp(os.pread(f.fd, FP_SIZE, 0))
                return f, None
            # The cursor's file is gone, and with it whatever it held past the offset. When
            # that was written is unknown; the new file's mtime bounds when the old one stopped.
            now = self.cfg.clock()
            reason = "file replaced while not watching; unread tail lost"
            log.warning("%s: %s: %s", self.cfg.name, self.cfg.path, reason)
            return f, Gap(self.cfg.name, min(os.fstat(f.fd).st_mtime, now), now, reason)
        except OSError:
            os.close(f.fd)
            raise

    def _resume_rotated(self) -> list[SourceEvent]:
        """The rotated files a saved cursor names: found by identity in the directory, or a gap."""
        out: list[SourceEvent] = []
        for cur in self.resume_rotated:
            pred = self._predecessor(cur)
            if pred is not None:
                self._keep_rotated(pred)
                continue
            now = self.cfg.clock()
            reason = "rotated file gone while not watching; its unread tail is lost"
            log.warning("%s: %s", self.cfg.name, reason)
            out.append(Gap(self.cfg.name, now, now, reason))
        self.resume_rotated = []
        return out

    def _keep_rotated(self, f: OpenFile) -> None:
        t = Tail(f, self.cfg.max_line_bytes, self.tally, ROTATED)
        t.active = time.monotonic()
        self.rotated.append(t)

    def _predecessor(self, cur: Cursor) -> OpenFile | None:
        """The cursor's file renamed within the same directory (path.1, path-20240501, ...)."""
        for entry in self._siblings():
            st = entry.stat(follow_symlinks=False)
            if (st.st_dev, st.st_ino) != (cur.dev, cur.ino):
                continue
            f = OpenFile(entry.path)
            if not f.matches(cur):
                os.close(f.fd)
                return None
            f.seek(cur.offset)
            log.info("%s: resuming in rotated %s beside %s", self.cfg.name, entry.path, self.cfg.path)
            return f
        return None

    def _siblings(self) -> list[os.DirEntry[str]]:
        parent, base = os.path.split(self.cfg.path)
        try:
            with os.scandir(parent or ".") as entries:
                return [e for e in entries if e.name != base and e.is_file(follow_symlinks=False)]
        except OSError as exc:
            log.warning("%s: looking for rotated files: %s", self.cfg.name, exc)
            return []

    def _absent(self, what: str) -> str:
        return f"{self.cfg.path}: {what} (waiting for it to appear)"

    def _fail(self, exc: OSError) -> str:
        return f"{self.cfg.path}: {exc.strerror or exc}"

    # ---- reading -------------------------------------------------------------------

    def _step(self, t: Tail) -> Step:
        t0 = self.cfg.clock()
        base = t.f.pos
        chunk = os.read(t.f.fd, self.read_size.now)
        if chunk:
            t.f.pos += len(chunk)
            # Checked before delivering: a copytruncate seen only at EOF would let
            # post-truncation bytes past our old offset through twice.
            if not t.f.head_ok():
                return self._rewind(t), None
            return self._chunks(t, chunk, base), 0.0  # let the rest of the daemon run between chunks
        change = self._check(t.f)
        if change == "truncated":
            return self._rewind(t), None
        if change is not None:
            log.info(
                "%s: %s was %s; still reading it beside the new one", self.cfg.name, self.cfg.path, change
            )
            if change == "removed":
                self.missing = self._absent("removed")
            t.stream, t.active = ROTATED, time.monotonic()
            self.rotated.append(t)
            self.file = None
            return [], None
        t.caught_t = t0
        return self._caught_up(), self.cfg.poll

    def _step_rotated(self, t: Tail) -> Step:
        """Read a rotated file on; once idle for rotate_wait it is complete and closed."""
        t0 = self.cfg.clock()
        chunk = os.read(t.f.fd, self.read_size.now)
        if chunk:
            base = t.f.pos
            t.f.pos += len(chunk)
            t.active = time.monotonic()
            return self._chunks(t, chunk, base), 0.0
        t.caught_t = t0
        idle = time.monotonic() - t.active
        if idle < self.cfg.rotate_wait:
            return [], min(self.cfg.poll, self.cfg.rotate_wait - idle)
        self.rotated.remove(t)
        os.close(t.f.fd)
        last = t.last_line()  # its last line will never get a newline
        self.fresh = True
        return [Chunk(self.cfg.name, last or b"", self._cursor(), ROTATED, live=True)], None

    def _chunks(self, t: Tail, chunk: bytes, base: int) -> list[SourceEvent]:
        live = t.caught_t is not None  # read after a caught-up read of this file: as it is written
        out: list[SourceEvent] = []
        for lines in t.whole_lines(chunk, base):
            t.f.line_end = lines.end
            out.append(Chunk(self.cfg.name, lines.data, self._cursor(), t.stream, live))
            self.fresh = True
        return out

    def _caught_up(self) -> list[SourceEvent]:
        """Caught up with the file at the path (and the rotated ones): healthy again."""
        self.delay = self.cfg.poll
        marks = [t.vouches() for t in [*self.rotated, *([self.file] if self.file else [])]]
        now = time.monotonic()
        if any(m is None for m in marks):
            return []
        wm = min(m for m in marks if m is not None)
        if wm <= self.last_wm:
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

    def _rewind(self, t: Tail) -> list[SourceEvent]:
        """The file was copy-truncated: what we had not read went to the copy, a gap unless the
        copy holds no more than we read."""
        self.tally.copytruncate += 1
        log.warning(
            "%s: %s was truncated (copytruncate?); reading it from the start", self.cfg.name, self.cfg.path
        )
        out: list[SourceEvent] = []
        if not self._copy_complete(t.f):
            now = self.cfg.clock()
            since = min(t.caught_t if t.caught_t is not None else self.opened_t, now)
            reason = "file truncated (copytruncate): what it held past our last read went to the copy, unread"
            out.append(Gap(self.cfg.name, since, now, reason))
        t.rewind()
        t.f.set_fp(os.pread(t.f.fd, FP_SIZE, 0))
        return out

    def _copy_complete(self, f: OpenFile) -> bool:
        """Whether a sibling starts with the bytes we fingerprinted and is as long as what we read."""
        for entry in self._siblings():
            try:
                st = entry.stat(follow_symlinks=False)
                if st.st_size != f.line_end or (st.st_dev, st.st_ino) == (f.dev, f.ino):
                    continue
                with open(entry.path, "rb") as fh:
                    if digest(fh.read(f.fplen)) == f.fp:
                        return True
            except OSError:
                continue
        return False
