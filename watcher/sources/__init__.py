"""Sources: each is an async stream of lines, watermark advances, gaps and disconnects.

A source owns its reconnects and backoff; it raises only for configuration
errors. Its stream carries everything the engine needs to know about it, so the
daemon never guesses whether a quiet source is healthy: a `Watermark` is a
promise that every line up to that time has been yielded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from watcher.events import SourceEvent


class Source(Protocol):
    name: str

    def read(self, after: str | None) -> AsyncIterator[SourceEvent]:
        """Yield forever, resuming after cursor `after` (None: from the configured start)."""
        ...
