"""Classify a whole file or stdin: count lines, records and error events per rule.

The format is sniffed from the first 64 KiB (`journal`, `docker` or `auto`). Lines are
grouped into records by what they look like (grouping.py), the same way for a file, for
`replay` and for a live source. Input is read in 8 MiB chunks, the next one while this one
is classified; a line longer than max_line_bytes is cut, counted and marked, so memory
does not grow with the input.
`StreamScanner` does the same for a live source, chunk by chunk; there a line must also
arrive with the line before it (within CONTINUATION_GRACE) to continue its record.

Engines, all with identical results (readers.py): `reference` feeds every line through
framing.LineSplitter and grouping.SourceClassifier; `python` and `hyperscan` find the
lines that matter with scan.Finder and feed only those, counting the rest in bulk
(`hyperscan` on Linux x86_64 only; `auto` picks it there and `python` elsewhere).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import BinaryIO, Literal

from watcher.classify import split
from watcher.classify.grouping import ClassifyStats, SourceClassifier
from watcher.classify.impact import ImpactKey
from watcher.classify.lines import LineParser, sniff_format
from watcher.classify.readers import Fast, Reference
from watcher.classify.rules import SourceRules
from watcher.classify.scan import HYPERSCAN, Finder
from watcher.classify.stamps import ChunkTimes
from watcher.config.base import Format
from watcher.errors import InputError
from watcher.events import ErrorEvent
from watcher.patterns import compile_linear

Engine = Literal["auto", "hyperscan", "python", "reference"]
CHUNK = 8 << 20
SNIFF = 64 << 10
CONTINUATION_GRACE = 1.0
"""Seconds within which a live line must arrive after the line before it to continue its
record: a frame-like line read later is a record of its own (DESIGN §2.1)."""


def classify_stream(
    stream: BinaryIO,
    source: str,
    rules: SourceRules,
    *,
    fmt: Format = "auto",
    max_line_bytes: int = 1 << 20,
    on_error: Callable[[ErrorEvent], None] | None = None,
    progress: Callable[[int], None] | None = None,
    engine: Engine = "auto",
    chunk_size: int = CHUNK,
    on_stamps: Callable[[list[float]], None] | None = None,
    parts: int | None = None,
    split_min: int = split.SPLIT_MIN,
) -> ClassifyStats:
    """Read `stream` to its end and count.

    `on_error` gets each error event in file order; `progress` the number of bytes read
    so far, after each chunk; `on_stamps`, after each chunk, its lines' own times in order.
    An error record whose head has no time of its own has the newest own time before it.
    A regular file of `split_min` bytes or more is classified in `parts` processes (None:
    one per CPU; split.py), unless `on_stamps` wants every line's time in order or the
    engine is `reference`. `chunk_size` is there for tests (chunk boundaries).
    """
    if engine == "hyperscan" and not HYPERSCAN:
        raise InputError(
            "the hyperscan engine is not available here (Linux x86_64 only); use --engine python"
        )
    whole = split.splittable(stream, split.workers() if parts is None else parts, split_min)
    head_chunks = _read_head(stream, chunk_size)  # fed like any other chunks afterwards
    # One big chunk is sliced, not joined: a copy of a whole chunk would be the peak of memory.
    head = (head_chunks[0] if len(head_chunks) == 1 else b"".join(head_chunks))[:SNIFF]
    if fmt == "auto":
        fmt = sniff_format(head)
    clf = SourceClassifier(source, rules, LineParser(fmt))
    emit = on_error or (lambda _event: None)
    head_chunks.reverse()  # popped from the end, so that each is released once fed

    def read() -> bytes:
        return head_chunks.pop() if head_chunks else _read(stream, chunk_size)

    reader = _reader(clf, engine, max_line_bytes, emit, [] if on_stamps is not None else None)
    if whole is None or engine == "reference" or on_stamps is not None:
        _run(reader, read, progress, on_stamps)
        return clf.stats
    job = _Part(source, rules, fmt, max_line_bytes, engine, chunk_size, whole[0], on_error is not None)
    _in_parts(reader, job, whole, read, progress, emit, split.workers() if parts is None else parts)
    return clf.stats


@dataclass(frozen=True, slots=True)
class _Part:
    """How a forked helper classifies its part of the file (split.py)."""

    source: str
    rules: SourceRules
    fmt: Format
    max_line_bytes: int
    engine: Engine
    chunk_size: int
    fd: int
    events: bool

    def __call__(self, start: int, end: int) -> split.Result:
        clf = SourceClassifier(self.source, self.rules, LineParser(self.fmt))
        clf.last_stamp = split.stamp_before(self.fd, start, self.fmt, self.max_line_bytes)
        found: list[ErrorEvent] = []
        reader = _reader(clf, self.engine, self.max_line_bytes, found.append if self.events else _drop)
        _run(reader, split.chunks(self.fd, start, end, self.chunk_size), None, None)
        return clf.stats, found


def _drop(_event: ErrorEvent) -> None:
    pass


def _in_parts(
    reader: Reference | Fast,
    job: _Part,
    whole: tuple[int, int],
    read: Callable[[], bytes],
    progress: Callable[[int], None] | None,
    emit: Callable[[ErrorEvent], None],
    parts: int,
) -> None:
    """The first part here, the others in forked helpers, merged in file order."""
    fd, size = whole
    starts = split.cuts(fd, size, parts, job.fmt, job.max_line_bytes)
    helpers: list[split.Helper] = []
    try:
        for a, b in split.parts_of(size, starts):
            helpers.append(split.Helper.fork(lambda a=a, b=b: job(a, b)))  # type: ignore[misc]
        mine = starts[0] if starts else size
        _run(reader, _upto(read, mine), progress, None)
        stats = reader.clf.stats
        while helpers:
            part, events = helpers[0].result()
            helpers.pop(0)
            split.merge(stats, part)
            for event in events:
                emit(event)
            if progress is not None:
                progress(stats.bytes)
    finally:
        for h in helpers:
            h.cancel()


def _upto(read: Callable[[], bytes], limit: int) -> Callable[[], bytes]:
    """`read`, ending after `limit` bytes."""
    done = 0

    def limited() -> bytes:
        nonlocal done
        if done >= limit:
            return b""
        data = read()[: limit - done]
        done += len(data)
        return data

    return limited


def _reader(
    clf: SourceClassifier,
    engine: Engine,
    max_line_bytes: int,
    emit: Callable[[ErrorEvent], None],
    stamps: list[float] | None = None,
) -> Reference | Fast:
    if engine == "reference":
        return Reference(clf, max_line_bytes, emit, stamps)
    finder = Finder(clf.rules.prefilters(), clf.parser.fmt, HYPERSCAN and engine != "python")
    return Fast(clf, finder, max_line_bytes, emit, stamps)


@dataclass(frozen=True, slots=True)
class Input:
    """A recorded log for `classify` or `replay`: `name` is its source name (what rules'
    `sources` globs see)."""

    name: str
    open: Callable[[], BinaryIO]
    size: int | None = None
    """Bytes, when known in advance (not for stdin): the progress bar's total."""


@dataclass(frozen=True, slots=True)
class Scanned:
    """What one chunk of a live source held."""

    errors: list[ErrorEvent]
    """The error events it completed, in order; a record whose head has no time of its own
    has the arrival time."""
    times: list[float]
    """Times at which it has records (meeting the source's expect_match, when set): the
    evidence that the source writes (stamps.py)."""
    newest: float | None
    """The own stamp of its last stamped line: against the arrival, the source's clock skew."""


class StreamScanner:
    """The same engines for a live byte source (the daemon's sources): feed whole lines as they come.

    The format is decided from the first data fed, as classify_stream decides it from a
    file's first 64 KiB. A source with its own timestamp_field or timestamp_format goes
    through the reference engine, because the fast scanner recognises a line's own time
    by the standard shapes only. `stream` names a further byte stream of the source (a
    container's stderr) in its events; `expect_match` picks the records that are its
    evidence of life; `impact` says whom an error record hit.
    """

    def __init__(
        self,
        source: str,
        rules: SourceRules,
        *,
        fmt: Format = "auto",
        timestamp_field: str | None = None,
        timestamp_format: str | None = None,
        max_line_bytes: int,
        stream: str = "",
        expect_match: str | None = None,
        impact: ImpactKey | None = None,
    ) -> None:
        self._source, self._rules, self._fmt = source, rules, fmt
        self._impact = impact
        self._time = (timestamp_field, timestamp_format)
        self._max = max_line_bytes
        self._stream = stream
        self._expect = None if expect_match is None else compile_linear(expect_match)
        self._found: list[ErrorEvent] = []
        self._engine: Engine = "reference" if timestamp_field or timestamp_format else "auto"
        self._reader: Reference | Fast | None = None
        self._times: ChunkTimes | None = None
        self._last_feed: float | None = None
        self.stats = ClassifyStats(
            errors_by_rule=dict.fromkeys(rules.rule_names, 0),
            ignored_by_rule=dict.fromkeys(rules.ignore_names, 0),
        )

    def feed(self, data: bytes, now: float | None = None) -> Scanned:
        """Whole lines (`data` ends with a newline) that arrived at `now`."""
        if self._reader is None:
            parser = LineParser(sniff_format(data[:SNIFF]) if self._fmt == "auto" else self._fmt, *self._time)
            clf = SourceClassifier(self._source, self._rules, parser, self._impact)
            self._reader = _reader(clf, self._engine, self._max, self._found.append)
            self._times = ChunkTimes(parser, self._expect, by_shape=self._engine != "reference")
            self.stats = clf.stats
        assert self._times is not None
        clf = self._reader.clf
        clf.arrival = now
        if now is not None:
            if self._last_feed is not None and now - self._last_feed > CONTINUATION_GRACE:
                clf.break_context()
            self._last_feed = now
        self._reader.feed(data)
        self.stats.bytes += len(data)
        found = self._found.copy()  # the reader holds this list's append
        self._found.clear()
        if self._stream:
            found = [replace(e, stream=self._stream) for e in found]
        times = self._times.times(data, now)
        return Scanned(found, times.times, times.newest)


def _run(
    reader: Reference | Fast,
    read: Callable[[], bytes],
    progress: Callable[[int], None] | None,
    on_stamps: Callable[[list[float]], None] | None,
) -> None:
    total = 0
    for chunk in _read_ahead(read):
        reader.feed(chunk)
        total += len(chunk)
        del chunk  # two chunks in memory at most: this one and the one being read
        if progress is not None:
            progress(total)
        _drain(reader, on_stamps)
    reader.finish()
    _drain(reader, on_stamps)
    reader.clf.stats.bytes = total


def _read_ahead(read: Callable[[], bytes]) -> Iterator[bytes]:
    """The chunks `read` returns, each next one read in a thread while this one is classified:
    a read waits in the kernel without the GIL, so reading costs no time of its own."""
    box: list[bytes | BaseException] = []

    def fetch() -> None:
        try:
            box.append(read())
        except BaseException as exc:  # handed to the consumer, raised there
            box.append(exc)

    # A daemon thread: when classifying fails, a read of a pipe may wait for its writer, and
    # must not keep the process (closing a file waits for a read in flight to end).
    worker = threading.Thread(target=fetch, name="classify-read", daemon=True)
    worker.start()
    while True:
        worker.join()
        chunk = box.pop()
        if isinstance(chunk, BaseException):
            raise chunk
        if not chunk:
            return
        worker = threading.Thread(target=fetch, name="classify-read", daemon=True)
        worker.start()
        yield chunk


def _drain(reader: Reference | Fast, on_stamps: Callable[[list[float]], None] | None) -> None:
    if on_stamps is not None and reader.stamps:
        on_stamps(reader.stamps.copy())
        reader.stamps.clear()


def _read_head(stream: BinaryIO, chunk_size: int) -> list[bytes]:
    """The first chunks, enough for the 64 KiB sample (or all there is)."""
    chunks, size = [], 0
    while size < SNIFF and (chunk := _read(stream, chunk_size)):
        chunks.append(chunk)
        size += len(chunk)
    return chunks


def _read(stream: BinaryIO, size: int) -> bytes:
    """`size` bytes, fewer only at the end: a pipe's read() may return less."""
    data = stream.read(size)
    while data and len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            break
        data += more
    return data
