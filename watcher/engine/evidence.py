"""Evidence (DESIGN §2.1): whether a source could have shown an error, and when an error counts.

Pure, like the rest of the engine. Per source the engine keeps a `Track`: its
watermark, whether what it reads runs (`down`, from `Liveness` reports), the newest
record that met its expectation (`last_seen`) and its `Activity` (when it wrote
records at all). From these follow:

- the source's *effective* watermark: never past the moment it stopped running or
  missed its `expect_every`, so a stopped service cannot prove a clean span;
- whether a window holds a record of it (`Activity.holds`), since a source that wrote
  nothing during a window proves nothing about it unless it is `quiet_ok`;
- the reasons an incident cannot resolve (`Blocker`), named per source.

`counted_at` decides the time an error counts at: its own stamp when plausible,
else its arrival.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from watcher.events import ErrorEvent, Expectation
from watcher.times import format_duration, format_time

NOT_KNOWN = "not yet known to be running"
"""The reason of a source that reports liveness before its first report."""


@dataclass(frozen=True, slots=True)
class Down:
    """Not running since `since` (-inf: never known to run), for `reason`."""

    since: float
    reason: str


class Activity:
    """When a source wrote records: disjoint runs [first, last] of record times, each run
    narrower than the `width` it was built with.

    Every first and last is a real record time, and the records of a run lie within it,
    so "is there a record in (r - window, r]" is answered exactly for any window wider
    than a run (the engine builds runs half as wide as the smallest open window), and
    conservatively (no) otherwise. Memory: two floats per run.
    """

    __slots__ = ("firsts", "lasts")

    def __init__(self, runs: list[tuple[float, float]] | None = None) -> None:
        self.firsts = [f for f, _ in runs or ()]
        self.lasts = [last for _, last in runs or ()]

    def __len__(self) -> int:
        return len(self.firsts)

    def add(self, t: float, width: float) -> None:
        i = bisect.bisect_right(self.firsts, t) - 1
        if i >= 0 and t <= self.lasts[i]:
            return
        if i >= 0 and t - self.firsts[i] < width:
            self.lasts[i] = t  # bisect: t is before the next run's first
            return
        self.firsts.insert(i + 1, t)
        self.lasts.insert(i + 1, t)

    def add_all(self, times: Sequence[float], width: float) -> None:
        """`add` each time; in order, as a file's usually are, each costs a few comparisons."""
        firsts, lasts = self.firsts, self.lasts
        i = len(firsts) - 1  # the run the time before went to
        for t in times:
            if i >= 0 and firsts[i] <= t and (i + 1 == len(firsts) or t < firsts[i + 1]):
                if t <= lasts[i]:
                    continue
                if t - firsts[i] < width:
                    lasts[i] = t
                    continue
                firsts.insert(i + 1, t)
                lasts.insert(i + 1, t)
                i += 1
                continue
            self.add(t, width)
            i = bisect.bisect_right(firsts, t) - 1

    def holds(self, r: float, window: float) -> bool:
        """Whether a record lies in (r - window, r]."""
        i = bisect.bisect_right(self.firsts, r) - 1
        if i < 0:
            return False
        return self.firsts[i] > r - window or r - window < self.lasts[i] <= r

    def starts(self, after: float, upto: float) -> list[float]:
        """The firsts of runs in (after, upto]: where "a record in the window" can begin to hold."""
        lo = bisect.bisect_right(self.firsts, after)
        hi = bisect.bisect_right(self.firsts, upto)
        return self.firsts[lo:hi]

    def newest(self, upto: float = math.inf) -> float | None:
        """The newest record time known at or before `upto`."""
        i = bisect.bisect_right(self.firsts, upto) - 1
        if i < 0:
            return None
        return self.lasts[i] if self.lasts[i] <= upto else self.firsts[i]

    def prune(self, before: float) -> None:
        """Forget runs that ended before `before` (no window can need them), keeping the newest."""
        n = min(bisect.bisect_left(self.lasts, before), len(self.lasts) - 1)
        if n > 0:
            del self.firsts[:n], self.lasts[:n]

    def runs(self) -> list[list[float]]:
        return [[f, last] for f, last in zip(self.firsts, self.lasts, strict=True)]


@dataclass(slots=True)
class Track:
    """What the engine knows about one source."""

    expect: Expectation = field(default_factory=Expectation)
    watermark: float | None = None
    down: Down | None = None
    alive_since: float | None = None
    last_seen: float | None = None
    """The newest record that met the expectation (any record, without expect_match)."""
    activity: Activity = field(default_factory=Activity)

    @classmethod
    def new(cls, expect: Expectation) -> Track:
        return cls(expect, down=Down(-math.inf, NOT_KNOWN) if expect.liveness else None)

    def silent_since(self) -> float | None:
        """The last record meeting `expect_every`, once the watermark is further past it than that."""
        every, last, wm = self.expect.every, self.last_seen, self.watermark
        if every is None or last is None or wm is None:
            return None
        return last if wm - last > every else None

    def effective(self) -> float | None:
        """The watermark, never past the moment the source stopped running or fell silent."""
        wm = self.watermark
        if wm is None:
            return None
        if self.down is not None:
            wm = min(wm, self.down.since)
        silent = self.silent_since()
        return wm if silent is None else min(wm, silent)

    def missed(self) -> str:
        """What a missed expectation is called: `no record matching 'heartbeat ok' (expect_every 1m)`."""
        what = "no record" if self.expect.match is None else f"no record matching {self.expect.match!r}"
        return f"{what} (expect_every {format_duration(self.expect.every or 0.0)})"


@dataclass(frozen=True, slots=True)
class Blocker:
    """Why an incident cannot resolve now: about one source, or the scope itself (`source` None)."""

    source: str | None
    reason: str
    since: float | None = None

    def text(self) -> str:
        when = f" since {format_time(self.since)}" if self.since is not None else ""
        return f"{self.source}: {self.reason}{when}" if self.source else f"{self.reason}{when}"


@dataclass(frozen=True, slots=True)
class SourceEvidence:
    """One source's part of an incident's verdict."""

    source: str
    lines: int
    """Lines read from it since the mitigation."""
    running: bool | None
    """Whether what it reads runs; None for a source that does not report it (a file)."""
    proven_from: float | None
    proven_to: float | None
    """The span proven clean for it: from the streak start to its effective watermark."""
    last_record: float | None

    def text(self) -> str:
        parts = [f"{self.lines:,} lines checked"]
        if self.running is not None:
            parts.append("running" if self.running else "NOT running")
        if self.proven_from is not None and self.proven_to is not None and self.proven_to > self.proven_from:
            parts.append(f"proven {format_time(self.proven_from)} to {format_time(self.proven_to)}")
        else:
            parts.append("nothing proven yet")
        if self.last_record is not None:
            parts.append(f"last record {format_time(self.last_record)}")
        return f"{self.source}: {', '.join(parts)}"


def blockers(name: str, track: Track, streak_start: float | None, window: float) -> list[Blocker]:
    """Why `name` keeps an incident whose streak started at `streak_start` from resolving."""
    if track.watermark is None:
        return [Blocker(name, "nothing read from it yet")]
    out: list[Blocker] = []
    if track.down is not None:
        since = track.down.since
        out.append(Blocker(name, track.down.reason, since if math.isfinite(since) else None))
    silent = track.silent_since()
    if silent is not None:
        out.append(Blocker(name, track.missed(), silent))
    upto = track.effective()
    if (
        not track.expect.quiet_ok
        and streak_start is not None
        and upto is not None
        and upto - streak_start >= window
        and not track.activity.holds(upto, window)
    ):
        last = track.activity.newest(upto)
        out.append(Blocker(name, f"no record in the last {format_duration(window)}", last))
    return out


def counted_at(event: ErrorEvent, mitigated_at: float | None, tolerance: float) -> tuple[float, float | None]:
    """The time `event` counts at for an incident mitigated at `mitigated_at`, and the record's
    own stamp when that was not trusted (None when it was).

    Backlog and recorded files keep their stamps. A live record (`arrived` set) counts at
    its arrival when its stamp is missing, further than `tolerance` from the arrival
    either way, or before the mitigation although it arrived after it.
    """
    own, arrived = event.at, event.arrived
    if arrived is None:
        if own is None:
            raise ValueError("an error event needs a time to count for the streak")
        return own, None
    if own is None:
        return arrived, None
    if abs(own - arrived) > tolerance or (mitigated_at is not None and own < mitigated_at <= arrived):
        return arrived, own
    return own, None
