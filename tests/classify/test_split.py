"""A big file classified in parts, in forked processes: the same result as one pass."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.classify.test_scan import DEFAULT, EXTRA, logs
from watcher.classify import split
from watcher.classify.context import Context
from watcher.classify.grouping import ClassifyStats
from watcher.classify.rules import SourceRules
from watcher.classify.stream import classify_stream
from watcher.errors import InputError
from watcher.events import ErrorEvent

_TRACE = b'2026-11-27T14:05:00Z Traceback (most recent call last):\n  File "a.py", line 1\nValueError: v\n'


def classify(path: Path, rules: SourceRules, **kw: object) -> tuple[ClassifyStats, list[ErrorEvent]]:
    events: list[ErrorEvent] = []
    with path.open("rb") as f:
        stats = classify_stream(f, "f", rules, on_error=events.append, **kw)  # type: ignore[arg-type]
    return stats, events


class TestSameAsOnePass:
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        data=logs(),
        rules=st.sampled_from([DEFAULT, EXTRA]),
        parts=st.integers(2, 4),
        chunk=st.integers(16, 400) | st.just(1 << 16),
        max_line=st.integers(8, 400),
    )
    def test_parts_agree(
        self, tmp_path: Path, data: bytes, rules: SourceRules, parts: int, chunk: int, max_line: int
    ) -> None:
        """Counts, events (and their times) and first/last time equal one pass, wherever the cuts fall."""
        path = tmp_path / "log"
        path.write_bytes(data * 3)
        kw = {"chunk_size": chunk, "max_line_bytes": max_line}
        whole = classify(path, rules, parts=1, **kw)
        assert classify(path, rules, parts=parts, split_min=0, **kw) == whole

    def test_cut_never_inside_a_record(self, tmp_path: Path) -> None:
        """Tracebacks throughout: every cut lands on a record's first line, and the counts hold."""
        path = tmp_path / "log"
        path.write_bytes(_TRACE * 20_000)
        with path.open("rb") as f:
            starts = split.cuts(f.fileno(), path.stat().st_size, 4, "auto", 1 << 20)
        assert len(starts) == 3
        data = path.read_bytes()
        assert all(data[at:].startswith(_TRACE) for at in starts)
        assert classify(path, DEFAULT, parts=4, split_min=0) == classify(path, DEFAULT, parts=1)

    def test_untimed_heads_take_the_time_before_the_part(self, tmp_path: Path) -> None:
        """Error lines without a time of their own, long after the last stamp, across a cut."""
        path = tmp_path / "log"
        path.write_bytes(b"2026-11-27T14:05:00Z start\n" + b"ERROR: no time here\n" * 50_000)
        stats, events = classify(path, DEFAULT, parts=2, split_min=0)
        assert stats.errors == 50_000
        assert {e.at for e in events} == {classify(path, DEFAULT, parts=1)[1][0].at}

    def test_no_safe_line_no_cut(self, tmp_path: Path) -> None:
        """A file of continuation lines only is classified in one part."""
        path = tmp_path / "log"
        path.write_bytes(b"  frame\n" * 200_000)
        with path.open("rb") as f:
            assert split.cuts(f.fileno(), path.stat().st_size, 2, "auto", 1 << 20) == []
        assert classify(path, DEFAULT, parts=2, split_min=0) == classify(path, DEFAULT, parts=1)


class TestWhenToSplit:
    def test_small_files_and_pipes_are_not_split(self, tmp_path: Path) -> None:
        """Below split_min, from a pipe, or not from the start: one pass."""
        path = tmp_path / "log"
        path.write_bytes(b"x\n" * 100)
        with path.open("rb") as f:
            assert split.splittable(f, 2, 10_000) is None
            assert split.splittable(f, 2, 10) is not None
            assert split.splittable(f, 1, 10) is None
            f.read(2)
            assert split.splittable(f, 2, 10) is None
        r, w = os.pipe()
        with os.fdopen(r, "rb") as pipe, os.fdopen(w, "wb"):
            assert split.splittable(pipe, 2, 0) is None

    def test_safe_line_skips_special_lines(self) -> None:
        """The cut moves past continuation lines and the line before them."""
        buf = b"partial\nhead\n  frame\nCaused by: x\nnext\nok\n"
        fd = _memfd(buf)
        at = split.safe_line(fd, 0, Context("auto"), 1 << 20)
        assert at is not None and buf[at:].startswith(b"ok\n")


class TestHelper:
    def test_result_comes_back(self) -> None:
        """What the forked job returns reaches the caller."""
        stats = ClassifyStats(lines=3)
        assert split.Helper.fork(lambda: (stats, [])).result() == (stats, [])

    def test_error_is_raised_here(self) -> None:
        """An error in the helper is raised in the caller, as one clear line."""

        def fail() -> split.Result:
            raise InputError("cannot read part")

        with pytest.raises(InputError, match="cannot read part"):
            split.Helper.fork(fail).result()

    def test_cancel(self) -> None:
        """A helper no longer wanted is killed and reaped."""

        def forever() -> split.Result:
            signal.pause()
            return ClassifyStats(), []

        helper = split.Helper.fork(forever)
        helper.cancel()
        with pytest.raises(ChildProcessError):
            os.waitpid(helper.pid, 0)


def _memfd(data: bytes) -> int:
    fd = os.memfd_create("split-test")
    os.write(fd, data)
    return fd
