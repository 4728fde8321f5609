"""Sources: the contract every kind of log source keeps (docker, journal, file).

Two objects per kind, as Vector's SourceConfig builds a Source:

- a `SourceKind` wraps one configured `[[sources]]` entry: the source names it
  yields, the `Source`s it builds, its `check-config` probe and its snapshot
  collector (registry.py picks the kind from the config's `kind`);
- a `Source` is one running reader: an async stream of `Chunk`s, `Watermark`s,
  `Gap`s, `SourceDown`s, `Liveness` reports, notes and `Stopped` events, plus how its
  lines are scanned, which sub-sources it names, what each must show to count as
  evidence, and what it counted itself.

A source owns its reconnects and backoff; it raises only for configuration errors.
Its health travels in its stream: a `Watermark` promises every line up to that time
has been yielded (and means "up"), a `SourceDown` freezes it, so the daemon never
guesses whether a quiet source is healthy.

Evidence (DESIGN §2.1): being readable is not enough. A source whose `expectation`
says `liveness` reports, in the same stream, whether what it reads runs (a container,
a systemd unit): `Liveness` with the time it started, or the last time it was known
running. It reports the change before any watermark that passes the change, so a
stopped service never proves a clean span. A `Chunk` says whether it was read `live`
(as it was written): only then is a record's own stamp checked against its arrival.

This module stays light (no docker SDK, no asyncssh): `watcher.config` and the CLI
import names from here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from watcher.config.base import Format
from watcher.config.rules import RuleConfig
from watcher.config.sources import SourceBase
from watcher.details import Note
from watcher.events import Chunk, Expectation, Gap, Liveness, SourceDown, Watermark

if TYPE_CHECKING:
    from watcher.snapshot.collect import Job


@dataclass(frozen=True, slots=True)
class Stopped:
    """Something watched stopped (Docker's `kill`/`stop`/`die`): snapshot it now, before removal.

    `job` collects its evidence, bound to the connection the source holds; `subject`
    (a container id) is what repeated stops are recognised by."""

    source: str
    subject: str
    action: str
    at: float
    job: Job


SourceEvent = Chunk | Watermark | Gap | SourceDown | Liveness | Note | Stopped
"""What a source yields, in order: its lines, watermark advances, gaps, disconnects, whether
what it reads runs, notes for the timeline, and things stopped that are worth a snapshot."""


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """How a source's lines are scanned: their format and which rules apply."""

    fmt: Format = "auto"
    timestamp_field: str | None = None
    timestamp_format: str | None = None
    rules: tuple[str, ...] | None = None
    """Names of the rules that apply; None means every rule."""
    expect_match: str | None = None
    """The records that meet the source's expect_every (a regex over the message)."""
    impact_field: str | None = None
    impact_regex: str | None = None
    """Whom an error record hit (config's impact_field or impact_regex)."""


def scan_options(
    cfg: SourceBase,
    fmt: Format,
    timestamp_field: str | None = None,
    timestamp_format: str | None = None,
) -> ScanOptions:
    """How a configured source's lines are scanned, its lines being written as `fmt`."""
    return ScanOptions(
        fmt,
        timestamp_field,
        timestamp_format,
        None if cfg.rules is None else tuple(cfg.rules),
        cfg.expect_match,
        cfg.impact_field,
        cfg.impact_regex,
    )


def expectation(cfg: SourceBase, *, liveness: bool, quiet: bool = False) -> Expectation:
    """What a configured source must show to count as evidence; `quiet`: may stay silent anyway."""
    return Expectation(cfg.quiet_ok or quiet, cfg.expect_every, cfg.expect_match, liveness)


@dataclass(frozen=True, slots=True)
class Counters:
    """Damaged lines a source found itself, beyond what its scanner sees (running totals)."""

    truncated: int = 0
    """Lines it cut to max_line_bytes before handing them on."""
    copytruncate: int = 0
    """Truncations of a followed file it noticed (the copy's unread tail is lost)."""


class Source(Protocol):
    name: str
    scan: ScanOptions

    def read(self, after: str | None) -> AsyncIterator[SourceEvent]:
        """Yield forever, resuming after cursor `after` (None: from the configured start)."""
        ...

    def owns(self, name: str) -> bool:
        """Whether `name` is one of the sub-sources this source's events may name (`cloud/api`)."""
        ...

    def after(self, cursors: Mapping[str, str]) -> str | None:
        """The `read()` start from the stored cursors of this source and of the sub-sources it owns."""
        ...

    def expectation(self, name: str) -> Expectation:
        """What `name` (this source or a sub-source it owns) must show to count as evidence."""
        ...

    def counters(self) -> Counters: ...

    def describe(self) -> str:
        """What it reads, naming the path, socket or host: `file /var/log/edge/error.log`.

        The daemon's start-up log and /readyz show it beside the source's state; a reason
        the source gives for being down names the same place."""
        ...


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What building a source needs beyond its own config."""

    max_line_bytes: int
    clock: Callable[[], float]
    since: float | None = None
    """Where a source without a resume point starts, when it can go back in time (journals):
    the earliest open incident's start; None means now."""
    rules: tuple[RuleConfig, ...] | None = None
    """The rules the sources' records go through (a journal asks only for the fields they
    read); None: not known, so every field is read."""
    ignore: tuple[RuleConfig, ...] = ()


@dataclass
class Findings:
    """What `check-config` found: problems (exit 1) and warnings, one line each, naming the key."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __iadd__(self, other: Findings) -> Findings:
        self.problems += other.problems
        self.warnings += other.warnings
        return self


class SourceKind(Protocol):
    """One configured source of some kind: everything the rest of the watcher does with it."""

    def names(self) -> list[str]:
        """The source names it yields (a journal source's hosts); sub-sources appear at run time."""
        ...

    def build(self, ctx: BuildContext) -> list[Source]: ...

    async def check(self, key: str) -> Findings:
        """Reach it from here as the daemon would; `key` (`sources[2]`) prefixes every finding."""
        ...

    def snapshot_jobs(
        self, scope: Sequence[str], since: float | None, until: float | None, stack: contextlib.ExitStack
    ) -> list[Job]:
        """Blocking: a collection job per source in `scope`; clients it opens close with `stack`."""
        ...
