"""Classify a whole file or stdin: count lines, records and error events per rule.

The format is sniffed from the first 64 KiB (`journal`, `docker` or `auto`), and so is
whether the file is *timed*: when most of those lines carry a time of their own, a line
without one continues the record before it; in an untimed file only the continuation
patterns group lines (grouping.py). Input is read in 16 MiB chunks; a line longer
than max_line_bytes is cut, counted and marked, so memory does not grow with the input.
`StreamScanner` does the same for a live source, chunk by chunk.

Engines, all with identical results (readers.py): `reference` feeds every line through
framing.LineSplitter and grouping.SourceClassifier; `python` and `hyperscan` find the
lines that matter with scan.Finder and feed only those, counting the rest in bulk
(`hyperscan` on Linux x86_64 only; `auto` picks it there and `python` elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import BinaryIO, Literal

from watcher.classify import framing
from watcher.classify.grouping import ClassifyStats, SourceClassifier
from watcher.classify.lines import LineParser, sniff_format
from watcher.classify.readers import Fast, Reference
from watcher.classify.rules import SourceRules
from watcher.classify.scan import HYPERSCAN, Finder
from watcher.config.base import Format
from watcher.errors import InputError
from watcher.events import ErrorEvent

Engine = Literal["auto", "hyperscan", "python", "reference"]
CHUNK = 16 << 20
SNIFF = 64 << 10


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
) -> ClassifyStats:
    """Read `stream` to its end and count.

    `on_error` gets each error event in file order; `progress` the number of bytes read
    so far, after each chunk. `chunk_size` is there for tests (chunk boundaries).
    """
    if engine == "hyperscan" and not HYPERSCAN:
        raise InputError(
            "the hyperscan engine is not available here (Linux x86_64 only); use --engine python"
        )
    head_chunks = _read_head(stream, chunk_size)  # fed like any other chunks afterwards
    # One big chunk is sliced, not joined: a copy of 16 MiB would be the peak of memory.
    head = (head_chunks[0] if len(head_chunks) == 1 else b"".join(head_chunks))[:SNIFF]
    if fmt == "auto":
        fmt = sniff_format(head)
    parser = LineParser(fmt)
    whole = len(head) < SNIFF
    clf = SourceClassifier(source, rules, parser, timed=_is_timed(head, parser, whole))
    emit = on_error or (lambda _event: None)
    head_chunks.reverse()  # popped from the end, so that each is released once fed

    def read() -> bytes:
        return head_chunks.pop() if head_chunks else _read(stream, chunk_size)

    _run(_reader(clf, engine, max_line_bytes, emit), read, progress)
    return clf.stats


def _reader(
    clf: SourceClassifier, engine: Engine, max_line_bytes: int, emit: Callable[[ErrorEvent], None]
) -> Reference | Fast:
    if engine == "reference":
        return Reference(clf, max_line_bytes, emit)
    finder = Finder(clf.rules.prefilters(), clf.parser.fmt, clf.timed, HYPERSCAN and engine != "python")
    return Fast(clf, finder, max_line_bytes, emit)


class StreamScanner:
    """The same engines for a live byte source (the daemon's sources): feed whole lines as they come.

    The format and whether the source is timed are decided from the first data fed, as
    classify_stream decides them from a file's first 64 KiB. A source with its own
    timestamp_field or timestamp_format goes through the reference engine, because the
    fast scanner recognises a line's own time by the standard shapes only. `stream`
    names a further byte stream of the source (a container's stderr) in its events.
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
    ) -> None:
        self._source, self._rules, self._fmt = source, rules, fmt
        self._time = (timestamp_field, timestamp_format)
        self._max = max_line_bytes
        self._stream = stream
        self._found: list[ErrorEvent] = []
        self._engine: Engine = "reference" if timestamp_field or timestamp_format else "auto"
        self._reader: Reference | Fast | None = None
        self.stats = ClassifyStats(
            errors_by_rule=dict.fromkeys(rules.rule_names, 0),
            ignored_by_rule=dict.fromkeys(rules.ignore_names, 0),
        )

    def feed(self, data: bytes) -> list[ErrorEvent]:
        """Whole lines (`data` ends with a newline); the error events they completed, in order."""
        if self._reader is None:
            head = data[:SNIFF]
            parser = LineParser(sniff_format(head) if self._fmt == "auto" else self._fmt, *self._time)
            clf = SourceClassifier(self._source, self._rules, parser, timed=_is_timed(head, parser, True))
            self._reader = _reader(clf, self._engine, self._max, self._found.append)
            self.stats = clf.stats
        self._reader.feed(data)
        self.stats.bytes += len(data)
        found = self._found.copy()  # the reader holds this list's append
        self._found.clear()
        if self._stream:
            return [replace(e, stream=self._stream) for e in found]
        return found


def _run(reader: Reference | Fast, read: Callable[[], bytes], progress: Callable[[int], None] | None) -> None:
    total = 0
    while chunk := read():
        reader.feed(chunk)
        total += len(chunk)
        del chunk  # not two chunks in memory while the next one is read
        if progress is not None:
            progress(total)
    reader.finish()
    reader.clf.stats.bytes = total


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


def _is_timed(head: bytes, parser: LineParser, whole: bool) -> bool:
    """Whether most lines of the sample carry a time of their own."""
    lines = head.split(b"\n")
    if not whole or not lines[-1]:
        lines.pop()  # cut off mid-line, or the empty rest after the final newline
    if not lines:
        return False
    texts = (framing.decode(framing.Line(ln.removesuffix(b"\r")))[0] for ln in lines)
    timed = sum(1 for text in texts if parser.parse(text).at is not None)
    return timed * 2 > len(lines)
