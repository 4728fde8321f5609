"""The file source wakes on inotify: with a poll interval of a minute, every change is still
seen at once (the Reader's 10 s deadline is far below the poll), and without inotify the
poll still reads everything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.sources.test_file import Reader, numbered, write
from watcher.config import FileSourceConfig
from watcher.events import Gap
from watcher.sources.file import inotify
from watcher.sources.file.source import FileSource

SLOW_POLL = 60.0


def make(path: Path, poll: float = SLOW_POLL, rotate_wait: str = "5s") -> FileSource:
    cfg = FileSourceConfig.model_validate(
        {"name": "edge", "kind": "file", "path": path, "rotate_wait": rotate_wait}
    )
    return FileSource(cfg, max_line_bytes=1 << 20, poll_interval=poll)


class TestWake:
    async def test_append_read_at_once(self, tmp_path: Path) -> None:
        """A line appended to an idle file is read without waiting for the poll."""
        path = tmp_path / "app.log"
        write(path, b"first\n")
        async with Reader(make(path)) as r:
            await r.watermark_after_line("first")
            write(path, b"second\n")
            await r.watermark_after_line("second")

    async def test_file_appears(self, tmp_path: Path) -> None:
        """A file created at the path after the source started is read at once."""
        path = tmp_path / "later.log"
        async with Reader(make(path)) as r:
            await r.until(lambda: bool(r.downs()))
            write(path, b"hello\n")
            await r.watermark_after_line("hello")

    async def test_rename_rotation(self, tmp_path: Path) -> None:
        """Renamed away, written on under its new name, replaced by a new file: all read at once."""
        path = tmp_path / "app.log"
        write(path, b"a0\n")
        async with Reader(make(path)) as r:
            await r.watermark_after_line("a0")
            path.rename(tmp_path / "app.log.1")
            write(tmp_path / "app.log.1", b"a1\n")  # the writer has not reopened yet
            await r.lines(2)
            write(path, b"b0\n")
            assert await r.lines(3) == ["a0", "a1", "b0"]

    async def test_copytruncate(self, tmp_path: Path) -> None:
        """Copied, truncated and written again: the file is read again from its start at once."""
        path = tmp_path / "app.log"
        write(path, numbered("old ", 0, 3))
        async with Reader(make(path)) as r:
            await r.watermark_after_line("old 2")
            (tmp_path / "app.log.1").write_bytes(path.read_bytes())
            os.truncate(path, 0)
            write(path, b"new 0\n")
            await r.watermark_after_line("new 0")
        assert r.texts() == ["old 0", "old 1", "old 2", "new 0"]
        assert not any(isinstance(e, Gap) for e in r.events)  # the copy holds all we had not read

    async def test_deleted_while_written(self, tmp_path: Path) -> None:
        """Removed while its writer still holds it open: what it writes on is still read at once."""
        path = tmp_path / "app.log"
        write(path, b"kept\n")
        with path.open("ab", buffering=0) as writer:
            async with Reader(make(path)) as r:
                await r.watermark_after_line("kept")
                path.unlink()
                await r.until(lambda: any("removed" in d.reason for d in r.downs()))
                writer.write(b"after removal\n")
                assert await r.lines(2) == ["kept", "after removal"]


class TestWithoutInotify:
    async def test_polls(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """When inotify cannot start (no instances left), the poll reads every line."""

        def no_instances(self: object) -> None:
            raise OSError(24, "inotify_init1: Too many open files")

        monkeypatch.setattr(inotify._Libc, "__init__", no_instances)
        path = tmp_path / "app.log"
        async with Reader(make(path, poll=0.01)) as r:
            write(path, b"x\n")
            await r.watermark_after_line("x")

    async def test_directory_gone_and_back(self, tmp_path: Path) -> None:
        """The directory removed and made again: the watch is set again once it is back."""
        logs = tmp_path / "logs"
        logs.mkdir()
        path = logs / "app.log"
        write(path, b"one\n")
        async with Reader(make(path, poll=0.01)) as r:
            await r.watermark_after_line("one")
            path.unlink()
            logs.rmdir()
            await r.until(lambda: any("removed" in d.reason for d in r.downs()))
            logs.mkdir()
            write(path, b"two\n")
            await r.watermark_after_line("two")
