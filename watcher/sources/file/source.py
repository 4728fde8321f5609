"""A local log file followed by name, like `tail -F` (the reading itself is follow.py).

The follower reads as soon as inotify reports a change to the file or its directory
(sources/file/inotify.py), and at least every `poll_interval` (one stat and a 1 KiB
pread at EOF), which is all it does where inotify is not available. Reads of up to 256 KiB
(tail.ReadSize) are made on the event loop (page-cache reads take microseconds). A slow consumer
stops the reading, and memory stays bounded by one chunk plus `max_line_bytes`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Mapping

from watcher.config import FileSourceConfig
from watcher.events import Expectation
from watcher.sources import Counters, SourceEvent, expectation, scan_options
from watcher.sources.file.follow import Follower, Settings
from watcher.sources.file.tail import Tally


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
        self.scan = scan_options(cfg, cfg.format, cfg.timestamp_field, cfg.timestamp_format)
        self._expect = expectation(cfg, liveness=False)
        self._settings = Settings(
            cfg.name, str(cfg.path), max_line_bytes, clock, poll_interval, cfg.rotate_wait
        )
        self._tally = Tally()

    def read(self, after: str | None) -> AsyncGenerator[SourceEvent, None]:
        """Yield forever from cursor `after` (None: from the start of the file)."""
        return Follower(self._settings, self._tally, after).events()

    def owns(self, name: str) -> bool:
        return False

    def after(self, cursors: Mapping[str, str]) -> str | None:
        return cursors.get(self.name)

    def expectation(self, name: str) -> Expectation:
        return self._expect

    def counters(self) -> Counters:
        return Counters(truncated=self._tally.truncated, copytruncate=self._tally.copytruncate)

    def describe(self) -> str:
        return f"file {self._settings.path}"
