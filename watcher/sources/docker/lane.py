"""One docker sub-source ("lane"): its containers, its cursor, and which container to read next.

A lane reads its containers one after another in creation order: the current one to
its last line, then its successor from its first. `choose` and `finished` are the
decisions, pure but for the lane's own state; watcher.sources.docker does the I/O.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from watcher.events import Gap, Liveness
from watcher.sources.docker.cursor import Cursor

CAUGHT_UP_IDLE = 0.1
"""Seconds without data after attaching that mean the backlog has been read."""
GAP_REASON = "container removed before its logs were read"


def time_ns(rfc3339: str) -> int:
    """Docker's `Created`/`FinishedAt` (RFC 3339, up to 9 fractional digits) -> ns; 0 for "never"."""
    if not rfc3339 or rfc3339.startswith("0001-"):
        return 0
    head, _, frac = rfc3339.rstrip("Z").partition(".")
    secs = int(datetime.fromisoformat(head + "+00:00").timestamp())
    return secs * 1_000_000_000 + int(frac.ljust(9, "0")[:9] or "0")


@dataclass
class Container:
    id: str
    sub: str
    image: str
    tty: bool
    created_ns: int
    run_ns: int
    """Where its current run's lines begin: the end of the run before (StartedAt is set
    after the process has already written)."""
    running: bool
    fresh: bool
    """Created while the watcher was watching: read from its first line."""
    removed_at: float | None = None
    died: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by a die/stop event, cleared by start."""
    starts: int = 0
    """Start events seen."""
    read_starts: int = 0
    """`starts` when the lane last began reading it: a start event since then may be a run
    it has not read, even if the container has stopped again (the events lag the engine)."""
    paused: bool = False
    started: float = 0.0
    """When its current (or last) run started, in the engine's clock; 0: never."""
    finished: float = 0.0
    """When its last run ended; 0: never."""

    @property
    def runs(self) -> bool:
        """Running and not paused: able to write a line."""
        return self.running and not self.paused


@dataclass
class Lane:
    """One sub-source: its containers, its cursor, and whether it is caught up."""

    sub: str
    cursor: Cursor | None
    containers: dict[str, Container] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    attached: bool = False
    behind: bool = True
    idle: bool = False
    last_data: float = 0.0
    last_image: str | None = None
    reported: bool | None = None
    """Whether a container of it ran, as last reported (None: not since the engine was listed)."""

    def caught_up(self, mono: float) -> bool:
        """Attached with the backlog read, or nothing left to read."""
        if self.attached:
            if self.behind and mono - self.last_data >= CAUGHT_UP_IDLE:
                self.behind = False
            return not self.behind
        return self.idle

    def liveness(self, at: float) -> list[Liveness]:
        """A report when whether one of its containers runs changed (`at`: when it changed).

        Not running: since the stop at `at`, with why (exited, paused, removed)."""
        alive = any(c.runs for c in self.containers.values())
        if alive == self.reported:
            return []
        self.reported = alive
        return [Liveness(self.sub, at, alive, "" if alive else self._why())]

    def listed(self, now: float) -> list[Liveness]:
        """The first report after listing the engine's containers: since when they run, or since
        when none does (a run that ended while not watched comes first, for the engine to judge).
        With no container left, it was last known running at the last line read (else `now`)."""
        self.reported = None
        running = [c for c in self.containers.values() if c.runs]
        if running:
            latest = max(running, key=lambda c: c.started)
            before = [Liveness(self.sub, latest.finished, False, "no running container (exited)")]
            return (before if latest.finished else []) + self.liveness(latest.started)
        ended = max((c.finished for c in self.containers.values()), default=0.0)
        if not ended:
            ended = self.cursor.ns / 1e9 if self.cursor is not None and self.cursor.ns else now
        return self.liveness(ended)

    def _why(self) -> str:
        if not self.containers:
            return "no running container (removed)"
        if any(c.paused for c in self.containers.values()):
            return "no running container (paused)"
        return "no running container (exited)"

    def choose(self, now: float) -> tuple[tuple[Container, Cursor] | None, Gap | None]:
        """The container to read now and from where (None: nothing to read), and a gap to record."""
        ordered = sorted(self.containers.values(), key=lambda c: c.created_ns)
        cur = self.cursor
        if cur is not None and cur.container in self.containers:
            c = self.containers[cur.container]
            if not cur.done or c.running or c.starts != c.read_starts:
                return (c, cur), None
            if c.removed_at is not None:
                del self.containers[c.id]
            return self._start([x for x in ordered if x.created_ns > c.created_ns]), None
        if cur is not None:
            # The cursor's container is gone: removed while the watcher was not reading it.
            gap = None
            if not cur.done:
                start = cur.ns / 1e9
                gap = Gap(self.sub, start, max(start, now), GAP_REASON)
                self.cursor = cur = Cursor(cur.container, cur.ns, cur.hashes, done=True)
            return self._start([x for x in ordered if x.created_ns > cur.ns]), gap
        fresh = [x for x in ordered if x.fresh]
        if fresh:
            return self._start(fresh), None
        running = [x for x in ordered if x.running]
        if not running:
            return None, None  # stopped before the watcher first saw them: nothing new will come
        c = running[-1]
        self.cursor = Cursor(c.id, c.run_ns)
        return (c, self.cursor), None

    def _start(self, candidates: list[Container]) -> tuple[Container, Cursor] | None:
        if not candidates:
            return None
        self.cursor = Cursor(candidates[0].id, 0)
        return candidates[0], self.cursor

    def finished(self, c: Container, *, complete: bool) -> Gap | None:
        """`c` stopped or was removed and its stream ended; `complete`: Docker ended it (all read)."""
        cur = self.cursor or Cursor(c.id, 0)
        gap = None
        if c.removed_at is not None and not complete and not cur.done:
            start = cur.ns / 1e9
            gap = Gap(self.sub, start, max(start, c.removed_at), GAP_REASON)
        self.cursor = Cursor(c.id, cur.ns, cur.hashes, done=True)
        if c.removed_at is not None:
            del self.containers[c.id]
        return gap
