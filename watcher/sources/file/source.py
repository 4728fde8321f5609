"""A local log file followed by name, like `tail -F`.

The cursor is `dev:ino:fplen:fp:offset`: the file's identity, a blake2b
fingerprint of its first `fplen` (at most 1024) bytes, and the offset just after
the line's newline. Identity plus fingerprint tell "the same file, grown" from
"a new file that reused the inode"; the offset never covers a held partial line,
so a restart re-reads it and delivers it once it is complete.

Rotation is noticed at EOF by comparing the path's inode with the open one: the
old descriptor is drained to EOF before the new file is read from 0, so nothing
written before the rename is lost. A shrinking file, or one whose first bytes
changed, was copy-truncated: counted, then read again from 0 with NUL runs
(the hole a non-O_APPEND writer leaves) skipped.

Files are polled rather than watched with inotify: portable, and at EOF every
`poll_interval` costs one stat and a 1 KiB pread. Reads are 64 KiB chunks made
on the event loop (page-cache reads take microseconds). Each read becomes one
`Chunk` of whole lines as raw bytes (no splitting, decoding or CR stripping:
the consumer's scanner does that); only a line spanning reads goes through the
LineSplitter, which bounds it to `max_line_bytes`. A slow consumer stops the
reading, and memory stays bounded by one chunk plus `max_line_bytes`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import stat
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import NamedTuple

from watcher.classify.framing import Line, LineSplitter
from watcher.config import FileSourceConfig
from watcher.events import Chunk, Gap, SourceDown, SourceEvent, Watermark

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
"""Bytes per read, and so at most per Chunk (plus one finished partial line)."""
FP_SIZE = 1024
IDLE_WATERMARK_EVERY = 0.25
"""Seconds between watermarks while nothing is written; new lines get one at once."""
_NON_NUL = re.compile(rb"[^\0]+")


@dataclass(slots=True)
class FileSourceStats:
    truncations_detected: int = 0
    rotations: int = 0
    lines_truncated: int = 0
    """Lines spanning reads cut to max_line_bytes; a long line inside one read is passed whole."""
    reopen_errors: int = 0
    """Failed open/read/stat attempts, each retry counted; a missing file is not an error."""
    last_error: str | None = None


class _Cursor(NamedTuple):
    dev: int
    ino: int
    fplen: int
    fp: str
    offset: int

    @classmethod
    def parse(cls, text: str) -> _Cursor | None:
        try:
            dev, ino, fplen, fp, offset = text.split(":")
            return cls(int(dev), int(ino), int(fplen), fp, int(offset))
        except ValueError:
            return None


def _digest(head: bytes) -> str:
    return hashlib.blake2b(head, digest_size=8).hexdigest()


class _File:
    """An open descriptor, its identity and fingerprint, and how far it has been read."""

    __slots__ = ("dev", "fd", "fp", "fplen", "ino", "line_end", "pos", "prefix", "retiring")

    def __init__(self, path: str) -> None:
        # O_NONBLOCK: opening a FIFO someone left at the path must not hang the event loop.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError("not a regular file")
            self.fd, self.dev, self.ino = fd, st.st_dev, st.st_ino
            self.pos = self.line_end = 0  # bytes read; end of the last complete line
            self.retiring: str | None = None  # "rotated"/"removed": drain to EOF, then leave
            self.set_fp(os.pread(fd, FP_SIZE, 0))
        except BaseException:
            os.close(fd)
            raise

    def set_fp(self, head: bytes) -> None:
        self.fplen, self.fp = len(head), _digest(head)
        self.prefix = f"{self.dev}:{self.ino}:{self.fplen}:{self.fp}:"

    def matches(self, cur: _Cursor) -> bool:
        """Same file as the cursor's and still holding everything up to its offset."""
        head = os.pread(self.fd, FP_SIZE, 0)
        return (
            (self.dev, self.ino) == (cur.dev, cur.ino)
            and os.fstat(self.fd).st_size >= cur.offset
            and len(head) >= cur.fplen
            and _digest(head[: cur.fplen]) == cur.fp
        )

    def head_ok(self) -> bool:
        """Whether the first bytes are unchanged; lengthens a short fingerprint as the file grows."""
        head = os.pread(self.fd, FP_SIZE, 0)
        if len(head) < self.fplen or _digest(head[: self.fplen]) != self.fp:
            return False
        if len(head) > self.fplen:
            self.set_fp(head)
        return True

    def seek(self, offset: int) -> None:
        os.lseek(self.fd, offset, os.SEEK_SET)
        self.pos = self.line_end = offset

    def resume_point(self) -> _Cursor:
        return _Cursor(self.dev, self.ino, self.fplen, self.fp, self.line_end)


class FileSource:
    """Follows `cfg.path` by name across rotation, truncation, deletion and absence."""

    def __init__(
        self,
        cfg: FileSourceConfig,
        *,
        max_line_bytes: int,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.25,
    ) -> None:
        self.name = cfg.name
        self.stats = FileSourceStats()
        self._path = str(cfg.path)
        self._max_line_bytes = max_line_bytes
        self._clock = clock
        self._poll = poll_interval
        self._max_delay = 8 * poll_interval

    async def read(self, after: str | None) -> AsyncGenerator[SourceEvent, None]:
        """Yield forever from cursor `after` (None: from the start of the file)."""
        name, clock, splitter = self.name, self._clock, LineSplitter(self._max_line_bytes)
        resume = _Cursor.parse(after) if after else None
        if after and resume is None:
            log.warning("%s: unreadable cursor %r; reading %s from the start", name, after, self._path)
        f: _File | None = None
        down: str | None = None
        missing = "file missing"
        delay = self._poll
        # Watermark bookkeeping: `caught_t` is the clock before the last read that found
        # EOF on a file still at the path. A partial line held at EOF was written after
        # the caught-up read that preceded it, so the watermark may go that far (`partial_t`)
        # but no further; None means no such read yet (the partial may be old).
        caught_t: float | None = None
        partial_t: float | None = None
        last_wm, last_wm_mono, fresh = float("-inf"), float("-inf"), False
        try:
            while True:
                if f is None:
                    try:
                        f, gap = self._open(resume)
                    except OSError as exc:
                        reason = missing if isinstance(exc, FileNotFoundError) else self._fail(exc)
                        if reason != down:
                            down = reason
                            log.warning("%s: %s", name, reason)
                            yield SourceDown(name, reason)
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, self._max_delay)
                        continue
                    resume, missing = None, "file missing"
                    splitter.reset()
                    caught_t = partial_t = None
                    if gap is not None:
                        yield gap
                cur = f  # for the except clause: the body may already have let go of f
                try:
                    t0 = clock()
                    chunk = os.read(f.fd, CHUNK)
                    if chunk:
                        base = f.pos
                        f.pos += len(chunk)
                        # Checked before delivering: a copytruncate seen only at EOF would let
                        # post-truncation bytes past our old offset through twice.
                        if not f.head_ok():
                            self._rewind(f, splitter)
                            caught_t = partial_t = None
                            continue
                        prefix = f.prefix
                        # Copytruncate with a non-O_APPEND writer leaves a NUL-filled hole:
                        # feed only the runs between NULs, keeping their file offsets.
                        segs = (
                            [(m.start(), m.group()) for m in _NON_NUL.finditer(chunk)]
                            if b"\0" in chunk
                            else ((0, chunk),)
                        )
                        for start, seg in segs:
                            held = splitter.pending
                            last_nl = seg.rfind(b"\n")
                            if last_nl < 0:
                                splitter.feed(seg)
                                if not held:
                                    partial_t = caught_t
                                continue
                            if held:
                                # Finish the line begun in an earlier read (bounded by the splitter).
                                nl = seg.find(b"\n")
                                (line,) = splitter.feed(seg[: nl + 1])
                                self._count(line)
                                # Give back a CR the splitter dropped: bodies keep theirs too.
                                eol = b"\n" if len(line.data) + line.cut == held + nl else b"\r\n"
                                data = line.data + eol + seg[nl + 1 : last_nl + 1]
                            else:
                                data = seg[: last_nl + 1]  # no copy when the read ends with a newline
                            if last_nl + 1 < len(seg):
                                splitter.feed(seg[last_nl + 1 :])  # the new partial line, held back
                            f.line_end = base + start + last_nl + 1
                            partial_t = caught_t
                            fresh = True
                            yield Chunk(name, data, f"{prefix}{f.line_end}")
                        await asyncio.sleep(0)  # let the rest of the daemon run between chunks
                        continue
                    if f.retiring is not None:
                        # The old file is complete: its last line will never get a newline.
                        last = splitter.flush()
                        if last is not None:
                            self._count(last)
                            fresh = True
                            yield Chunk(name, last.data + b"\n", f"{f.prefix}{f.pos}")
                        if f.retiring == "removed":
                            missing = "file removed"
                        os.close(f.fd)
                        f = None
                        continue
                    change = self._check(f)
                    if change == "truncated":
                        self._rewind(f, splitter)
                        caught_t = partial_t = None
                        continue
                    if change is not None:
                        if change == "rotated":
                            self.stats.rotations += 1
                        log.info("%s: %s was %s; draining the old file", name, self._path, change)
                        f.retiring = change
                        continue
                except OSError as exc:
                    reason = self._fail(exc)
                    log.warning("%s: %s; reopening", name, reason)
                    resume = cur.resume_point()
                    os.close(cur.fd)
                    f = None
                    if reason != down:
                        down = reason
                        yield SourceDown(name, reason)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._max_delay)
                    continue
                # Caught up with the file at the path: healthy again.
                delay = self._poll
                wm = t0 if not splitter.pending else partial_t
                caught_t = t0
                now = time.monotonic()
                if wm is not None and wm > last_wm and (fresh or now - last_wm_mono >= IDLE_WATERMARK_EVERY):
                    last_wm, last_wm_mono, fresh, down = wm, now, False, None
                    yield Watermark(name, wm)  # the daemon takes this as "up" again
                await asyncio.sleep(self._poll)
        finally:
            if f is not None:
                os.close(f.fd)

    def _open(self, resume: _Cursor | None) -> tuple[_File, Gap | None]:
        """The file to read next, positioned; raises OSError when there is none yet."""
        try:
            f = _File(self._path)
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
            now = self._clock()
            reason = "file replaced while not watching; unread tail lost"
            log.warning("%s: %s: %s", self.name, self._path, reason)
            return f, Gap(self.name, min(os.fstat(f.fd).st_mtime, now), now, reason)
        except OSError:
            os.close(f.fd)
            raise

    def _predecessor(self, cur: _Cursor) -> _File | None:
        """The cursor's file renamed within the same directory (path.1, path-20240501, ...)."""
        parent, base = os.path.split(self._path)
        try:
            with os.scandir(parent or ".") as entries:
                for entry in entries:
                    if entry.name == base or not entry.is_file(follow_symlinks=False):
                        continue
                    st = entry.stat(follow_symlinks=False)
                    if (st.st_dev, st.st_ino) != (cur.dev, cur.ino):
                        continue
                    f = _File(entry.path)
                    if not f.matches(cur):
                        os.close(f.fd)
                        return None
                    f.seek(cur.offset)
                    f.retiring = "rotated"
                    self.stats.rotations += 1
                    log.info("%s: resuming in rotated %s before %s", self.name, entry.path, self._path)
                    return f
        except OSError as exc:
            log.warning("%s: looking for the rotated file: %s", self.name, exc)
        return None

    def _check(self, f: _File) -> str | None:
        """Why the open file is no longer the one to follow at the path, or None."""
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            return "removed" if os.fstat(f.fd).st_nlink == 0 else "rotated"
        if (st.st_dev, st.st_ino) != (f.dev, f.ino):
            return "rotated"
        if st.st_size < f.pos or not f.head_ok():
            return "truncated"
        return None

    def _rewind(self, f: _File, splitter: LineSplitter) -> None:
        self.stats.truncations_detected += 1
        log.warning("%s: %s was truncated (copytruncate?); reading it from the start", self.name, self._path)
        splitter.reset()  # the partial line's end went to the copy
        f.seek(0)
        f.set_fp(os.pread(f.fd, FP_SIZE, 0))

    def _count(self, line: Line) -> None:
        if line.cut:
            self.stats.lines_truncated += 1

    def _fail(self, exc: OSError) -> str:
        reason = f"{self._path}: {exc.strerror or exc}"
        self.stats.reopen_errors += 1
        self.stats.last_error = reason
        return reason
