"""`watcher classify` of a big file on every core: the file cut where records surely begin.

A regular file of at least SPLIT_MIN bytes is cut into one part per CPU we may run on
(at most MAX_PARTS). The first part is classified in this process, each other one in
a forked process; their counts are summed and their error events reported in file
order. The result is the one a single pass gives, because a part starts at a line
that starts a record whatever came before it:

- neither it nor the line before it is a line the continuation search (context.py)
  finds, so it does not continue a record by itself (grouping rules 1-2) and the line
  before it gives no context (rules 3-4);
- both are whole UTF-8 lines no longer than max_line_bytes, so their messages are the
  bytes the search looked at.

A record whose head has no time of its own counts at the newest own time before it:
for a part's first such records that time lies before the part, and is found by
searching backwards from its start, as TimedLines does within a chunk. When no safe
line is found near a cut, there is one part fewer.
"""

from __future__ import annotations

import os
import pickle
import signal
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from watcher.classify.context import Context
from watcher.classify.grouping import ClassifyStats
from watcher.classify.lines import LineParser
from watcher.classify.readers import Block, TimedLines
from watcher.config.base import Format
from watcher.errors import InputError
from watcher.events import ErrorEvent

SPLIT_MIN = 64 << 20
"""Bytes below which a file is classified in one pass (a fork costs more than it saves)."""
MAX_PARTS = 4
_WINDOW = 1 << 20
"""Bytes looked at after a cut for a safe line, and read at a time when searching back."""

Result = tuple[ClassifyStats, list[ErrorEvent]]


def workers() -> int:
    """How many parts a big file is cut into: the CPUs this process may run on."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_PARTS, cpus))


def splittable(stream: BinaryIO, parts: int, min_bytes: int = SPLIT_MIN) -> tuple[int, int] | None:
    """(fd, size) of a regular file at least `min_bytes` long that `stream` reads from its
    start, when there are parts to cut it into; else None."""
    if parts < 2:
        return None
    try:
        fd = stream.fileno()
        st = os.fstat(fd)
        at = stream.tell()
    except (OSError, AttributeError, ValueError):  # a pipe, or a stream without a file
        return None
    if not stat.S_ISREG(st.st_mode) or at != 0 or st.st_size < min_bytes:
        return None
    return fd, st.st_size


def cuts(fd: int, size: int, parts: int, fmt: Format, max_line_bytes: int) -> list[int]:
    """Where parts 2..n start: safe lines near each n-th of the file, ascending."""
    context = Context(fmt)
    out: list[int] = []
    for i in range(1, parts):
        at = safe_line(fd, size * i // parts, context, max_line_bytes)
        if at is not None and (not out or at > out[-1]):
            out.append(at)
    return out


def safe_line(fd: int, offset: int, context: Context, max_line_bytes: int) -> int | None:
    """The first line after `offset` that surely starts a record (the module docstring)."""
    buf = os.pread(fd, _WINDOW, offset)
    first, end = buf.find(b"\n") + 1, buf.rfind(b"\n") + 1
    if first == 0 or first >= end:
        return None
    special = context.find(buf, first, end)
    prev = first
    while (nl := buf.find(b"\n", prev, end)) >= 0 and nl + 1 < end:
        line = nl + 1
        if prev not in special and line not in special and _plain(buf[prev:nl], max_line_bytes):
            after = buf.find(b"\n", line, end)
            if _plain(buf[line:after], max_line_bytes):
                return offset + line
        prev = line
    return None


def _plain(line: bytes, max_line_bytes: int) -> bool:
    if len(line) > max_line_bytes:
        return False
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def stamp_before(fd: int, offset: int, fmt: Format, max_line_bytes: int) -> float | None:
    """The own time of the last line before `offset` (a line start) that has one."""
    timed, parser = TimedLines(fmt), LineParser(fmt)
    hi, window = offset, _WINDOW
    while hi > 0:
        lo = max(0, hi - window)
        buf = os.pread(fd, hi - lo, lo)
        start = 0 if lo == 0 else buf.find(b"\n") + 1
        if start == 0 and lo > 0:  # one line longer than the window: look further back
            window *= 2
            continue
        blk = Block(buf, start, len(buf), max_line_bytes)
        for ls in timed.starts(buf, start, len(buf), reverse=True):
            at = blk.parsed(ls, parser).at
            if at is not None:
                return at
        hi, window = lo + start, _WINDOW
    return None


def chunks(fd: int, start: int, end: int, size: int) -> Callable[[], bytes]:
    """A read() of [start, end) of the file, `size` bytes at a time (pread: forked
    processes share the file offset, not their positions)."""
    pos = start

    def read() -> bytes:
        nonlocal pos
        data = os.pread(fd, min(size, end - pos), pos) if pos < end else b""
        pos += len(data)
        return data

    return read


def merge(into: ClassifyStats, part: ClassifyStats) -> None:
    """Add a later part's counts to `into` (the parts before it)."""
    into.lines += part.lines
    into.records += part.records
    for k, v in part.errors_by_rule.items():
        into.errors_by_rule[k] = into.errors_by_rule.get(k, 0) + v
    for k, v in part.ignored_by_rule.items():
        into.ignored_by_rule[k] = into.ignored_by_rule.get(k, 0) + v
    into.bad_utf8 += part.bad_utf8
    into.truncated += part.truncated
    into.bytes += part.bytes
    if into.first_at is None:
        into.first_at = part.first_at
    if part.last_at is not None:
        into.last_at = part.last_at


@dataclass(slots=True)
class Helper:
    """A forked process classifying one part; `result()` waits for what it found."""

    pid: int
    pipe: int

    @classmethod
    def fork(cls, job: Callable[[], Result]) -> Helper:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the helper: never returns into the caller's code, flushes nothing of its
            os.close(r)
            _serve(job, w)
        os.close(w)
        return cls(pid, r)

    def result(self) -> Result:
        with os.fdopen(self.pipe, "rb") as f:
            data = f.read()
        _, status = os.waitpid(self.pid, 0)
        if not data:
            raise InputError(f"classifying a part of the file failed (helper process status {status})")
        ok, value = pickle.loads(data)
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def cancel(self) -> None:
        """Stop it, when its result is no longer wanted."""
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.pipe)


def _serve(job: Callable[[], Result], pipe: int) -> None:
    code = 0
    try:
        try:
            reply: tuple[bool, object] = (True, job())
        except Exception as exc:  # the caller raises it (an InputError reads as one line)
            reply = (False, exc if _picklable(exc) else InputError(f"{type(exc).__name__}: {exc}"))
        with os.fdopen(pipe, "wb") as f:
            f.write(pickle.dumps(reply))
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _picklable(exc: Exception) -> bool:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return False
    return True


def parts_of(size: int, starts: list[int]) -> Iterator[tuple[int, int]]:
    """The [start, end) of each part after the first."""
    yield from zip(starts, [*starts[1:], size][: len(starts)], strict=True)
