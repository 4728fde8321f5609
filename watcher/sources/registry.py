"""Which kind of source a configured `[[sources]]` entry is, and what is built from them all.

The one place that dispatches on a source's `kind`: everything else asks the
`SourceKind` it gets here (watcher.sources).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from watcher.config import Settings, SourceConfig
from watcher.sources import BuildContext, Source, SourceKind
from watcher.sources.docker.kind import DockerKind
from watcher.sources.file.kind import FileKind
from watcher.sources.journal.kind import JournalKind

KINDS: Mapping[str, Callable[[Any], SourceKind]] = {
    "docker": DockerKind,
    "journal": JournalKind,
    "file": FileKind,
}
"""`kind` in the config -> the class that takes that kind's config model."""


def kind_of(cfg: SourceConfig) -> SourceKind:
    return KINDS[cfg.kind](cfg)


def kinds(settings: Settings) -> list[SourceKind]:
    return [kind_of(cfg) for cfg in settings.sources]


def source_names(settings: Settings) -> list[str]:
    """Every configured source name (a journal source's hosts each); docker sub-sources come at run time."""
    return [name for kind in kinds(settings) for name in kind.names()]


def build_sources(settings: Settings, ctx: BuildContext) -> list[Source]:
    """One Source per configured source (a journal source with hosts is one per host)."""
    return [src for kind in kinds(settings) for src in kind.build(ctx)]
