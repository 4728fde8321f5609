"""What the daemon keeps per source: its scanners, resume point, health and reported totals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from watcher.classify.grouping import ClassifyStats
from watcher.classify.stream import StreamScanner
from watcher.sources import Source

STARTING = "starting"
"""The reason of a source that has not yet said whether it is up."""


@dataclass
class SourceState:
    source: Source
    """The configured source that reads this one (for a docker sub-source, its docker source)."""
    scanner: StreamScanner
    cursor: str | None = None
    streams: dict[str, StreamScanner] = field(default_factory=dict)
    """Scanners of further byte streams (a container's stderr): a multi-line record never
    mixes lines of two streams."""
    new_scanner: Callable[[str], StreamScanner] | None = None
    up: bool = False
    reason: str | None = STARTING
    dirty: bool = False
    skew: float | None = None
    """The newest live line's own stamp minus its arrival (seconds; positive: ahead)."""
    skewed: bool = False
    """Whether that was beyond the skew tolerance (noted on the timeline once per episode)."""
    reported: dict[str, int] = field(
        default_factory=lambda: {"lines": 0, "bad_utf8": 0, "truncated": 0, "copytruncate": 0}
    )
    """The totals of `totals()` already passed on to the metrics and the engine."""

    def scanner_for(self, stream: str) -> StreamScanner:
        """The scanner of one byte stream: stdout (or the only stream) is the first one."""
        if stream in ("", "stdout") or self.new_scanner is None:
            return self.scanner
        scanner = self.streams.get(stream)
        if scanner is None:
            scanner = self.streams[stream] = self.new_scanner(stream)
        return scanner

    def lines(self) -> int:
        """Lines read on every stream: what `totals()` counts, without merging the rest."""
        return self.scanner.stats.lines + sum(s.stats.lines for s in self.streams.values())

    def stats(self) -> ClassifyStats:
        if not self.streams:
            return self.scanner.stats
        every = [self.scanner.stats, *(s.stats for s in self.streams.values())]
        merged = ClassifyStats(
            lines=sum(s.lines for s in every),
            bad_utf8=sum(s.bad_utf8 for s in every),
            truncated=sum(s.truncated for s in every),
        )
        for s in every:
            for rule, n in s.errors_by_rule.items():
                merged.errors_by_rule[rule] = merged.errors_by_rule.get(rule, 0) + n
        return merged

    def totals(self) -> dict[str, int]:
        """Running totals: lines read, and lines per watcher_source_bad_lines_total reason."""
        stats = self.stats()
        totals = {"lines": stats.lines, "bad_utf8": stats.bad_utf8, "truncated": stats.truncated}
        own = self.source.counters()  # lines it cut itself, and truncations it saw
        totals["truncated"] += own.truncated
        totals["copytruncate"] = own.copytruncate
        return totals
