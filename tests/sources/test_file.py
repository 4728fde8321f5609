"""FileSource against real files: rotation, truncation, restarts, limits, memory."""

from __future__ import annotations

import asyncio
import os
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from itertools import accumulate
from pathlib import Path
from types import TracebackType

from hypothesis import example, given, settings
from hypothesis import strategies as st

from watcher.config import FileSourceConfig
from watcher.events import Chunk, Gap, SourceDown, Watermark
from watcher.sources import SourceEvent
from watcher.sources.file.follow import CHUNK
from watcher.sources.file.source import FileSource
from watcher.sources.file.tail import READ_FIRST

POLL = 0.002


def make(path: Path, max_line_bytes: int = 1 << 20, rotate_wait: float = 5.0) -> FileSource:
    cfg = FileSourceConfig.model_validate(
        {"name": "edge", "kind": "file", "path": path, "rotate_wait": f"{rotate_wait}s"}
    )
    return FileSource(cfg, max_line_bytes=max_line_bytes, poll_interval=POLL)


def write(path: Path, data: bytes) -> None:
    with path.open("ab") as fh:
        fh.write(data)


def numbered(prefix: str, lo: int, hi: int) -> bytes:
    return b"".join(f"{prefix}{i}\n".encode() for i in range(lo, hi))


def offset(chunk: Chunk) -> int:
    assert chunk.cursor is not None
    return int(chunk.cursor.rsplit(":", 1)[1])


def raw_lines(data: bytes) -> list[bytes]:
    """A Chunk's lines as the scanner sees them: split on LF, one trailing CR dropped."""
    parts = data.split(b"\n")
    assert parts.pop() == b"", "a Chunk holds whole lines only"
    return [p[:-1] if p.endswith(b"\r") else p for p in parts]


def located(events: list[SourceEvent]) -> Iterator[tuple[int, str]]:
    """Each delivered line's text with the index of the event that carried it."""
    for i, e in enumerate(events):
        if isinstance(e, Chunk):
            for line in raw_lines(e.data):
                yield i, line.decode("utf-8", errors="replace")


def texts(events: list[SourceEvent]) -> list[str]:
    return [text for _, text in located(events)]


def chunks(events: list[SourceEvent]) -> list[Chunk]:
    return [e for e in events if isinstance(e, Chunk)]


class Reader:
    """Pumps a source's events into a list in the background; waits on conditions."""

    def __init__(self, src: FileSource, after: str | None = None) -> None:
        self.src = src
        self.gen = src.read(after)
        self.events: list[SourceEvent] = []

    async def __aenter__(self) -> Reader:
        self.task = asyncio.create_task(self._pump())
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.gen.aclose()

    async def _pump(self) -> None:
        async for ev in self.gen:
            self.events.append(ev)

    async def until(self, pred: Callable[[], bool]) -> None:
        async with asyncio.timeout(10):
            # Polled: counters and the fake clock change inside the source's loop, with no event.
            while not pred():  # noqa: ASYNC110
                await asyncio.sleep(POLL)

    async def lines(self, n: int) -> list[str]:
        await self.until(lambda: len(self.texts()) >= n)
        return self.texts()

    def texts(self) -> list[str]:
        return texts(self.events)

    def downs(self) -> list[SourceDown]:
        return [e for e in self.events if isinstance(e, SourceDown)]

    def caught_up(self) -> bool:
        return any(isinstance(e, Watermark) for e in self.events)

    def index_of(self, text: str) -> int:
        """Index of the event that carried the line."""
        return next(i for i, t in located(self.events) if t == text)

    def cursor_of(self, text: str) -> str:
        """The resume point after the Chunk carrying the line (the line must end its Chunk)."""
        chunk = self.events[self.index_of(text)]
        assert isinstance(chunk, Chunk) and chunk.cursor is not None
        assert raw_lines(chunk.data)[-1].decode() == text, "the cursor would skip lines after it"
        return chunk.cursor

    async def watermark_after_line(self, text: str) -> None:
        def seen() -> bool:
            idx = [i for i, t in located(self.events) if t == text]
            return bool(idx) and any(isinstance(e, Watermark) for e in self.events[idx[0] :])

        await self.until(seen)


class TestFollow:
    """Following one file by name."""

    async def test_lines_in_order_exactly_once(self, tmp_path: Path) -> None:
        """Lines written in many small appends arrive once each, in order, with rising cursors."""
        path = tmp_path / "app.log"
        path.touch()
        async with Reader(make(path)) as r:
            for i in range(0, 2000, 100):
                write(path, numbered("line ", i, i + 100))
                await asyncio.sleep(0)
            got = await r.lines(2000)
            offsets = [offset(c) for c in chunks(r.events)]
        assert got == [f"line {i}" for i in range(2000)]
        assert offsets == list(accumulate(len(c.data) for c in chunks(r.events)))
        assert offsets[-1] == path.stat().st_size

    async def test_watermark_only_at_eof(self, tmp_path: Path) -> None:
        """A backlog yields no watermark until every line of it has been delivered."""
        path = tmp_path / "app.log"
        write(path, numbered("old ", 0, 50_000))
        async with Reader(make(path)) as r:
            await r.watermark_after_line("old 49999")
            first_wm = next(i for i, e in enumerate(r.events) if isinstance(e, Watermark))
        assert len(texts(r.events[:first_wm])) == 50_000

    async def test_missing_file_appears_later(self, tmp_path: Path) -> None:
        """A missing file is SourceDown naming its path, without watermarks, then read from its start."""
        path = tmp_path / "later.log"
        async with Reader(make(path)) as r:
            await r.until(lambda: bool(r.events))
            assert r.events == [SourceDown("edge", f"{path}: no such file (waiting for it to appear)")]
            write(path, b"first\nsecond\n")
            await r.watermark_after_line("second")
        assert r.texts() == ["first", "second"]

    async def test_delete_and_recreate_freezes_watermark(self, tmp_path: Path) -> None:
        """A deleted file is drained, then SourceDown with no watermark until a new one is read from 0."""
        path = tmp_path / "app.log"
        write(path, b"a1\na2\n")
        src = make(path)
        async with Reader(src) as r:
            await r.watermark_after_line("a2")
            path.unlink()
            await r.until(
                lambda: SourceDown("edge", f"{path}: removed (waiting for it to appear)") in r.events
            )
            down_at = r.events.index(SourceDown("edge", f"{path}: removed (waiting for it to appear)"))
            path.mkdir()  # unreadable as a log: the source says why, and stays down
            await r.until(lambda: any("not a regular file" in e.reason for e in r.downs()[1:]))
            assert not any(isinstance(e, Watermark) for e in r.events[down_at:])
            path.rmdir()
            write(path, b"b1\n")
            await r.watermark_after_line("b1")
        assert r.texts() == ["a1", "a2", "b1"]


class TestRotation:
    """Rename+create rotation and copytruncate while following."""

    async def test_rename_create_drains_old_file_first(self, tmp_path: Path) -> None:
        """Lines the writer adds to the renamed file come before the new file's, each exactly once."""
        path = tmp_path / "app.log"
        src = make(path)
        old = path.open("ab", buffering=0)
        old.write(numbered("n", 0, 100))
        async with Reader(src) as r:
            await r.lines(100)
            old.write(numbered("n", 100, 300))
            path.rename(tmp_path / "app.log.1")
            old.write(numbered("n", 300, 400))  # late writes before the writer reopens
            old.close()
            write(path, numbered("n", 400, 500))
            got = await r.lines(500)
            await r.watermark_after_line("n499")
        assert got == [f"n{i}" for i in range(500)]

    async def test_rename_then_create_later(self, tmp_path: Path) -> None:
        """A renamed file with no successor yet counts as a rotation, the path as missing."""
        path = tmp_path / "app.log"
        src = make(path)
        write(path, b"old\n")
        async with Reader(src) as r:
            await r.watermark_after_line("old")
            path.rename(tmp_path / "app.log.1")
            await r.until(
                lambda: SourceDown("edge", f"{path}: no such file (waiting for it to appear)") in r.events
            )
            write(path, b"new\n")
            await r.watermark_after_line("new")
        assert r.texts() == ["old", "new"]

    async def test_copytruncate_append_writer(self, tmp_path: Path) -> None:
        """A copy-truncated file is counted and read again from 0."""
        path = tmp_path / "app.log"
        src = make(path)
        write(path, numbered("before ", 0, 10))
        write(path, b"lost half")
        async with Reader(src) as r:
            await r.lines(10)
            os.truncate(path, 0)
            await r.until(lambda: src.counters().copytruncate == 1)
            write(path, numbered("after ", 0, 3))
            got = await r.lines(13)
        assert got[10:] == ["after 0", "after 1", "after 2"]

    async def test_rewrite_to_same_size_detected(self, tmp_path: Path) -> None:
        """A file truncated and refilled to exactly our offset is caught by its first bytes."""
        path = tmp_path / "app.log"
        src = make(path)
        write(path, numbered("x", 0, 1000))
        size = path.stat().st_size
        async with Reader(src) as r:
            await r.watermark_after_line("x999")
            with path.open("r+b") as fh:
                fh.write(b"y" * (size - 1) + b"\n")
            await r.until(lambda: src.counters().copytruncate == 1)
            got = await r.lines(1001)
        assert got[1000] == "y" * (size - 1)

    async def test_copytruncate_leaves_no_nul_bytes(self, tmp_path: Path) -> None:
        """A writer without O_APPEND leaves a NUL hole that is skipped, never delivered."""
        path = tmp_path / "app.log"
        src = make(path)
        write(path, numbered("before ", 0, 200))  # longer than the fingerprint
        fd = os.open(path, os.O_WRONLY)
        os.lseek(fd, 0, os.SEEK_END)  # the writer keeps its own offset
        async with Reader(src) as r:
            await r.watermark_after_line("before 199")
            os.truncate(path, 0)
            os.write(fd, b"after 0\nafter 1\n")  # the file grows past our offset at once
            os.close(fd)
            got = await r.lines(202)
            await r.watermark_after_line("after 1")
        assert got[200:] == ["after 0", "after 1"]
        assert src.counters().copytruncate == 1
        assert not any("\0" in t for t in r.texts())


class TestRotateWait:
    """After a rename rotation the old file is read on, beside the new one, until idle (rotate_wait)."""

    async def test_writes_to_the_renamed_file_after_the_new_one_is_followed(self, tmp_path: Path) -> None:
        """logrotate renames and creates; the writer reopens only later: nothing it wrote is lost."""
        path = tmp_path / "app.log"
        old = path.open("ab", buffering=0)
        old.write(b"old 0\n")
        async with Reader(make(path)) as r:
            await r.lines(1)
            path.rename(tmp_path / "app.log.1")
            write(path, b"new 0\n")  # `create`: the new file, already written by someone
            await r.lines(2)  # the new file is followed...
            old.write(b"old 1\nold 2\n")  # ...and the writer has not reopened yet (SIGHUP comes later)
            old.close()
            write(path, b"new 1\n")
            await r.lines(5)
            await r.watermark_after_line("new 1")
        got = r.texts()
        assert sorted(got) == ["new 0", "new 1", "old 0", "old 1", "old 2"]
        assert [t for t in got if t.startswith("old")] == ["old 0", "old 1", "old 2"]  # in order per file
        rotated = [c for c in chunks(r.events) if c.stream == "rotated"]
        assert b"old 1" in b"".join(c.data for c in rotated)

    async def test_the_renamed_file_retires_once_idle(self, tmp_path: Path) -> None:
        """Idle for rotate_wait, the rotated file is closed and drops out of the resume point."""
        path = tmp_path / "app.log"
        write(path, b"a\n")
        async with Reader(make(path, rotate_wait=0.2)) as r:
            await r.lines(1)
            path.rename(tmp_path / "app.log.1")
            write(path, b"b\n")
            await r.lines(2)
            await r.until(lambda: "|" not in (chunks(r.events)[-1].cursor or "|"))
            write(tmp_path / "app.log.1", b"too late\n")
            write(path, b"c\n")
            await r.watermark_after_line("c")
        assert r.texts() == ["a", "b", "c"]

    async def test_restart_resumes_in_both_files(self, tmp_path: Path) -> None:
        """A cursor taken while the rotated file is still read resumes in it and in the new file."""
        path = tmp_path / "app.log"
        old = path.open("ab", buffering=0)
        old.write(b"o0\n")
        async with Reader(make(path)) as r:
            await r.lines(1)
            path.rename(tmp_path / "app.log.1")
            write(path, b"n0\n")
            await r.lines(2)
            cursor = chunks(r.events)[-1].cursor
        assert cursor is not None and "|" in cursor
        old.write(b"o1\n")
        old.close()
        write(path, b"n1\n")
        async with Reader(make(path), cursor) as r2:
            await r2.lines(2)
            await r2.watermark_after_line("n1")
        assert sorted(r2.texts()) == ["n1", "o1"]

    async def test_copytruncate_unread_tail_is_a_gap(self, tmp_path: Path) -> None:
        """Truncated before we read what was written last: a gap, not silence."""
        path = tmp_path / "app.log"
        write(path, numbered("l", 0, 10))
        src = make(path)
        async with Reader(src) as r:
            await r.watermark_after_line("l9")
            with path.open("r+b") as fh:  # written and truncated between two of our reads
                fh.seek(0, os.SEEK_END)
                fh.write(b"unread error\n")
                fh.truncate(0)
            await r.until(lambda: src.counters().copytruncate == 1)
            await r.until(lambda: any(isinstance(e, Gap) for e in r.events))
        (gap,) = [e for e in r.events if isinstance(e, Gap)]
        assert "copytruncate" in gap.reason and gap.start <= gap.end

    async def test_copytruncate_with_a_complete_copy_is_no_gap(self, tmp_path: Path) -> None:
        """The copy holds exactly what we read: nothing was lost, no gap."""
        path = tmp_path / "app.log"
        write(path, numbered("l", 0, 10))
        src = make(path)
        async with Reader(src) as r:
            await r.watermark_after_line("l9")
            (tmp_path / "app.log.1").write_bytes(path.read_bytes())  # logrotate's copy...
            os.truncate(path, 0)  # ...then the truncate
            await r.until(lambda: src.counters().copytruncate == 1)
            write(path, b"after\n")
            await r.watermark_after_line("after")
        assert not any(isinstance(e, Gap) for e in r.events)


class TestPartialLine:
    """A last line without its newline is held back, then delivered once."""

    async def test_held_until_newline(self, tmp_path: Path) -> None:
        """The partial line appears once, when its newline is written; no watermark passes it."""
        path = tmp_path / "app.log"
        write(path, b"first\npar")
        async with Reader(make(path)) as r:
            await r.lines(1)  # "par" came in the same read
            write(path, b"tial\n")
            await r.watermark_after_line("partial")
        assert r.texts() == ["first", "partial"]
        # "par" may be older than any read that found EOF, so no watermark may pass it.
        assert not any(isinstance(e, Watermark) for e in r.events[: r.index_of("partial")])

    async def test_watermark_stops_before_a_new_partial_line(self, tmp_path: Path) -> None:
        """With a partial line held, the watermark advances only to the last EOF before it began."""
        path = tmp_path / "app.log"
        ticks = [0.0]

        def clock() -> float:
            ticks[0] += 1.0
            return ticks[0]

        def wms() -> list[float]:
            return [e.at for e in r.events if isinstance(e, Watermark)]

        async def write_after_idle_eof(data: bytes) -> float:
            last = wms()[-1]
            await r.until(lambda: ticks[0] > last)  # another read has found EOF since
            write(path, data)
            return ticks[0]

        cfg = FileSourceConfig(name="edge", kind="file", path=path)
        src = FileSource(cfg, max_line_bytes=1024, clock=clock, poll_interval=POLL)
        write(path, b"a\n")
        async with Reader(src) as r:
            await r.watermark_after_line("a")
            written_at = await write_after_idle_eof(b"b\npar")  # a block-buffered writer
            await r.watermark_after_line("b")
            assert wms()[-1] <= written_at
            write(path, b"tial\n")
            await r.watermark_after_line("partial")
            before = wms()[-1]
            written_at = await write_after_idle_eof(b"q")  # a partial line alone
            await r.until(lambda: wms()[-1] > before)
            assert wms()[-1] <= written_at
        assert wms() == sorted(set(wms()))

    async def test_held_across_restart(self, tmp_path: Path) -> None:
        """A restart from the last cursor re-reads the partial line and delivers it once."""
        path = tmp_path / "app.log"
        write(path, b"one\ntw")
        async with Reader(make(path)) as r:
            await r.lines(1)
            cursor = r.cursor_of("one")
        write(path, b"o\nthree\n")
        async with Reader(make(path), cursor) as r2:
            await r2.watermark_after_line("three")
        assert r2.texts() == ["two", "three"]


class TestErrors:
    """I/O errors at runtime."""

    async def test_error_then_resume_in_place(self, tmp_path: Path) -> None:
        """A failing stat is SourceDown and counted; once it works again reading resumes in place."""
        logs = tmp_path / "logs"
        logs.mkdir()
        path = logs / "app.log"
        write(path, b"a\npar")
        src = make(path)
        async with Reader(src) as r:
            await r.lines(1)
            logs.rename(tmp_path / "moved")
            logs.write_bytes(b"")  # stat(logs/app.log) now fails with ENOTDIR
            await r.until(lambda: bool(r.downs()))
            down = r.downs()
            assert len(down) == 1 and "Not a directory" in down[0].reason
            logs.unlink()
            (tmp_path / "moved").rename(logs)
            write(path, b"tial\nb\n")
            await r.watermark_after_line("b")
        assert r.texts() == ["a", "partial", "b"]


class TestRestart:
    """Resuming from a saved cursor."""

    async def test_resume_mid_file(self, tmp_path: Path) -> None:
        """A restart delivers exactly the lines after the cursor."""
        path = tmp_path / "app.log"
        write(path, numbered("l", 0, 40))
        async with Reader(make(path)) as r:
            await r.watermark_after_line("l39")
            cursor = r.cursor_of("l39")
        write(path, numbered("l", 40, 110))
        async with Reader(make(path), cursor) as r2:
            await r2.watermark_after_line("l109")
        assert r2.texts() == [f"l{i}" for i in range(40, 110)]

    async def test_crlf_offsets(self, tmp_path: Path) -> None:
        """CRs stay in the bytes and the cursors, also on a line finished across reads."""
        path = tmp_path / "app.log"
        write(path, b"a\r\nb\r")
        async with Reader(make(path)) as r:
            await r.lines(1)
            cursor = r.cursor_of("a")
            write(path, b"\r\nc\r\n")
            await r.watermark_after_line("c")
        assert [c.data for c in chunks(r.events)] == [b"a\r\n", b"b\r\r\nc\r\n"]
        async with Reader(make(path), cursor) as r2:
            await r2.watermark_after_line("c")
        assert r.texts()[1:] == r2.texts() == ["b\r", "c"]

    async def test_rotated_while_stopped(self, tmp_path: Path) -> None:
        """The rotated file's unread rest comes first, then the new file from its start."""
        path = tmp_path / "app.log"
        write(path, numbered("l", 0, 20))
        async with Reader(make(path)) as r:
            await r.watermark_after_line("l19")
            cursor = r.cursor_of("l19")
        write(path, numbered("l", 20, 60))
        path.rename(tmp_path / "app.log-20240501")
        write(path, numbered("l", 60, 70))
        src = make(path)
        async with Reader(src, cursor) as r2:
            await r2.watermark_after_line("l69")
        assert r2.texts() == [f"l{i}" for i in range(20, 70)]
        assert not any(isinstance(e, Gap) for e in r2.events)

    async def test_replaced_while_stopped(self, tmp_path: Path) -> None:
        """A file replaced while stopped is read from its start after a Gap."""
        path = tmp_path / "app.log"
        write(path, numbered("old", 0, 20))
        async with Reader(make(path)) as r:
            await r.watermark_after_line("old19")
            cursor = r.cursor_of("old19")
        write(path, numbered("old", 20, 50))
        path.unlink()
        write(path, numbered("new", 0, 30))  # on ext4/tmpfs this often reuses the inode
        async with Reader(make(path), cursor) as r2:
            await r2.watermark_after_line("new29")
        gap = r2.events[0]
        assert isinstance(gap, Gap) and "replaced" in gap.reason and gap.start <= gap.end
        assert r2.texts() == [f"new{i}" for i in range(30)]

    async def test_rewritten_in_place_while_stopped(self, tmp_path: Path) -> None:
        """Same inode, larger than the offset, different first bytes: read from the start after a Gap."""
        path = tmp_path / "app.log"
        write(path, numbered("old", 0, 20))
        async with Reader(make(path)) as r:
            await r.watermark_after_line("old19")
            cursor = r.cursor_of("old19")
        write(path, numbered("old", 20, 50))
        with path.open("r+b") as fh:
            fh.truncate(0)
            fh.write(numbered("new", 0, 100))
        async with Reader(make(path), cursor) as r2:
            await r2.watermark_after_line("new99")
        assert isinstance(r2.events[0], Gap)
        assert r2.texts() == [f"new{i}" for i in range(100)]

    async def test_unreadable_cursor_reads_from_start(self, tmp_path: Path) -> None:
        """A cursor that does not parse is logged and the file is read from its start."""
        path = tmp_path / "app.log"
        write(path, b"x\n")
        async with Reader(make(path), "garbage") as r:
            await r.watermark_after_line("x")
        assert r.texts() == ["x"]


class TestLimits:
    """Long lines, bad bytes and bounded memory."""

    async def test_long_line_truncated(self, tmp_path: Path) -> None:
        """A 10 MB line spanning reads keeps max_line_bytes and is counted; one inside a read passes whole."""
        path = tmp_path / "app.log"
        # The 5000-byte line lies inside one read (reads of 64, 128, then 256 KiB while the
        # reader keeps up: it starts 104,065 bytes into one): passed raw.
        write(path, b"A" * 10_000_000 + b"\n" + b"B" * 5000 + b"\nnext\n")
        src = make(path, max_line_bytes=1024)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            async with Reader(src) as r:
                got = await r.lines(3)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert got == ["A" * 1024, "B" * 5000, "next"]
        assert all(len(line) <= max(1024, CHUNK) for c in chunks(r.events) for line in raw_lines(c.data))
        assert src.counters().truncated == 1
        assert r.cursor_of("next").endswith(f":{path.stat().st_size}")
        assert peak < 1 << 20, f"peak {peak / 1e6:.1f} MB"

    async def test_bad_utf8_passed_raw(self, tmp_path: Path) -> None:
        """Bytes that are not UTF-8 reach the scanner as they are, and reading goes on."""
        path = tmp_path / "app.log"
        write(path, b"ok\n\xff\xfebad\nfine\n")
        async with Reader(make(path)) as r:
            got = await r.lines(3)
        assert got == ["ok", "\ufffd\ufffdbad", "fine"]
        assert b"".join(c.data for c in chunks(r.events)) == path.read_bytes()

    async def test_memory_bounded_under_burst(self, tmp_path: Path) -> None:
        """200 MB written faster than it is consumed never raises traced memory past 4 MB."""
        path = tmp_path / "big.log"
        path.touch()
        line = b"x" * 4095 + b"\n"
        block = line * 256  # 1 MiB, reused: the writer's own memory stays flat
        total = 200

        def writer() -> None:
            with path.open("ab") as fh:
                for _ in range(total):
                    fh.write(block)

        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            done = asyncio.create_task(asyncio.to_thread(writer))
            n = 0
            gen = make(path, max_line_bytes=8192).read(None)
            async with asyncio.timeout(120):
                async for ev in gen:
                    if isinstance(ev, Chunk):
                        n += ev.data.count(b"\n")
                        await asyncio.sleep(0.0001)  # the slow consumer
                        if n == total * 256:
                            break
            await gen.aclose()
            await done
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert n == total * 256
        assert peak < 4 << 20, f"peak {peak / 1e6:.1f} MB"


class TestChunks:
    """What one Chunk promises: whole lines, and a cursor just after them."""

    async def test_each_cursor_resumes_after_its_chunk(self, tmp_path: Path) -> None:
        """Every Chunk ends with a newline; a new source started at its cursor delivers exactly the rest."""
        path = tmp_path / "app.log"
        n = CHUNK // 10  # about 5 reads' worth
        write(path, b"".join(f"line {i} {'z' * (i % 97)}\n".encode() for i in range(n)))
        assert path.stat().st_size > 4 * CHUNK  # lines span reads
        async with Reader(make(path)) as r:
            await r.lines(n)
        got = chunks(r.events)
        assert len(got) > 4 and all(c.data.endswith(b"\n") for c in got)
        everything = r.texts()
        done = 0
        for c in got:
            done += c.data.count(b"\n")
            async with Reader(make(path), c.cursor) as r2:
                await r2.until(r2.caught_up)
            assert r2.texts() == everything[done:]


def _expected(content: bytes) -> list[tuple[bytes, int]]:
    """Each whole line of the file (NULs dropped, as raw_lines gives it) and the offset after its newline."""
    ends = [i + 1 for i, b in enumerate(content) if b == 10]
    return list(zip(raw_lines(content.replace(b"\0", b"")), ends, strict=True))


async def _read_all(path: Path, max_line_bytes: int, n: int) -> tuple[list[Chunk], int]:
    src = make(path, max_line_bytes)
    async with Reader(src) as r:
        await r.lines(n)
    return chunks(r.events), src.counters().truncated


_piece = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"\n", b"\r\n", b"\r", b"\0" * 7, b"\xff", "é".encode()]),
    st.integers(1, 3000).map(lambda n: b"y" * n),
)


class TestOffsets:
    """Cursor offsets are exact for any content and any chunk boundary."""

    @settings(max_examples=40, deadline=None)
    @example(pieces=[b"\n"], pad=0)  # CR ends one chunk, its LF starts the next
    @given(pieces=st.lists(_piece, min_size=1, max_size=400), pad=st.integers(0, 3))
    def test_cursors_match_newline_positions(self, pieces: list[bytes], pad: int) -> None:
        """Each Chunk's cursor is the offset after its last line's newline, across chunk boundaries.

        A line is delivered whole, or, when it spans reads (or a NUL run) and is longer
        than max_line_bytes, cut to its first max_line_bytes bytes and counted.
        """
        body = b"".join(pieces)
        # Grow past the first read, placing a CR / NUL right at its boundary now and then.
        filler = b"f" * (READ_FIRST - 1 - pad) + [b"\r", b"\0", b"", b"\n"][pad]
        content = filler + body + b"\n"
        expected = _expected(content)
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "p.log"
            path.write_bytes(content)
            got, truncated = asyncio.run(_read_all(path, 500, len(expected)))
        lines = [line for c in got for line in raw_lines(c.data)]
        assert len(lines) == len(expected)
        cut = 0
        for line, (whole, _) in zip(lines, expected, strict=True):
            if line != whole:
                cut += 1
                assert len(whole) > 500 and line == raw_lines(whole[:500] + b"\n")[0]
        assert cut == truncated
        ends = list(accumulate(c.data.count(b"\n") for c in got))
        assert [offset(c) for c in got] == [expected[k - 1][1] for k in ends]
