"""Compiled hyperscan databases kept between runs, and never trusted when they could be wrong."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.classify.test_scan import DEFAULT
from watcher.classify import hscache, scan

pytestmark = pytest.mark.skipif(not scan.HYPERSCAN, reason="hyperscan is Linux x86_64 only")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    scan._serialized.cache_clear()
    return tmp_path / "novavms-watcher" / "hyperscan"


class TestHscache:
    def test_round_trip(self, cache: Path) -> None:
        """What is stored comes back, in a directory only we may write."""
        hscache.store("k", b"database")
        assert hscache.load("k") == b"database"
        assert cache.stat().st_mode & 0o777 == 0o700

    def test_torn_file_is_ignored(self, cache: Path) -> None:
        """A file whose content does not match its hash is never handed to hyperscan."""
        hscache.store("k", b"database")
        (cache / "k").write_bytes((cache / "k").read_bytes()[:-1])
        assert hscache.load("k") is None

    def test_shared_directory_is_not_used(self, cache: Path) -> None:
        """A cache directory others may write to is left alone."""
        cache.mkdir(parents=True)
        cache.chmod(0o777)
        hscache.store("k", b"database")
        assert hscache.load("k") is None and not (cache / "k").exists()

    def test_no_home(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without an absolute cache home there is no cache."""
        monkeypatch.setenv("XDG_CACHE_HOME", "relative")
        monkeypatch.setenv("HOME", "relative")
        assert hscache.directory() is None

    def test_oldest_pruned(self, cache: Path) -> None:
        """Only the KEEP most recently stored databases stay."""
        for i in range(hscache.KEEP + 3):
            hscache.store(f"k{i}", b"x")
            os.utime(cache / f"k{i}", (i, i))
        assert len(list(cache.iterdir())) == hscache.KEEP

    def test_second_finder_does_not_compile(self, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A second run with the same rules loads the database instead of compiling it."""
        first = scan.Finder(DEFAULT.prefilters(), "auto", True)
        scan._serialized.cache_clear()

        def no_compile(patterns: object) -> object:
            raise AssertionError("compiled again")

        monkeypatch.setattr(scan, "_compile", no_compile)
        second = scan.Finder(DEFAULT.prefilters(), "auto", True)
        buf = b"x\n" + b'{"level":"error"}\n' + b"  frame\n"
        assert second.find(buf, 0, len(buf)) == first.find(buf, 0, len(buf)) == {2, 20}

    def test_refused_database_is_compiled_again(self, cache: Path) -> None:
        """A cached database hyperscan refuses (built elsewhere) is replaced by a fresh one."""
        scan.Finder(DEFAULT.prefilters(), "auto", True)
        (name,) = [p.name for p in cache.iterdir()]
        hscache.store(name, b"not a database")
        scan._serialized.cache_clear()
        scan.Finder(DEFAULT.prefilters(), "auto", True)
        assert hscache.load(name) not in (None, b"not a database")
