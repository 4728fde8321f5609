"""Sources: each is an async stream of lines, watermark advances, gaps and disconnects.

A source owns its reconnects and backoff; it raises only for configuration
errors. Its stream carries everything the engine needs to know about it, so the
daemon never guesses whether a quiet source is healthy: a `Watermark` is a
promise that every line up to that time has been yielded.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from watcher.config import DockerSourceConfig, FileSourceConfig, JournalSourceConfig, Settings, SourceConfig
from watcher.events import SourceEvent
from watcher.sources.docker.source import DockerSource
from watcher.sources.file.source import FileSource
from watcher.sources.journal.source import Fleet, JournalSource


class Source(Protocol):
    name: str

    def read(self, after: str | None) -> AsyncIterator[SourceEvent]:
        """Yield forever, resuming after cursor `after` (None: from the configured start).

        A source with `subsources = True` (docker) names its events `<name>/<leaf>`;
        its `after` is a JSON object of those sub-sources' cursors.
        """
        ...


def build_sources(
    settings: Settings, *, clock: Callable[[], float] = time.time, since: float | None = None
) -> list[tuple[Source, SourceConfig]]:
    """One Source per configured source (a journal source with hosts is one per host).

    `since` is where a source without a saved resume point starts, when it can go
    back in time (journals): the earliest open incident's start; None means now.
    """
    built: list[tuple[Source, SourceConfig]] = []
    for cfg in settings.sources:
        if isinstance(cfg, FileSourceConfig):
            built.append((FileSource(cfg, max_line_bytes=settings.max_line_bytes, clock=clock), cfg))
        elif isinstance(cfg, JournalSourceConfig):
            fleet = Fleet(len(cfg.hosts), cfg.max_handshakes)
            hosts: list[str | None] = [*cfg.hosts] or [None]  # no hosts: the local journal
            for host in hosts:
                built.append((JournalSource(cfg, host, since=since, fleet=fleet, clock=clock), cfg))
        elif isinstance(cfg, DockerSourceConfig):
            built.append((DockerSource(cfg, max_line_bytes=settings.max_line_bytes, clock=clock), cfg))
    return built
