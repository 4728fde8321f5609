"""When the pipeline commits: what was decided soon, resume points alone seldom enough to be cheap.

Every commit is a SQLite transaction with `synchronous=FULL` (an fsync) that also compares the
engine's state with the one last saved. In an error storm each error resets a streak, and a
commit per batch of records would be forty a second; with a fleet of a thousand sources the
comparison alone takes milliseconds. A commit always holds the resume points together with what
was decided from the records before them, so holding it back costs nothing on a crash: the records
after the last commit are read again and decided again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from watcher.events import Kind

COMMIT_GAP = 0.2
"""Seconds at least between two commits of streak resets, notes and heartbeats while records
keep coming; any other transition (a resolution, a regression, a blind spell), a person's
command, an alert and a shutdown commit at once."""
PACED: frozenset[Kind] = frozenset({Kind.STREAK_RESET})
"""The transitions an error storm makes one of per error."""
IDLE_EVERY = 1.0
"""Seconds between commits of resume points alone, at least."""
IDLE_MAX = 10.0
"""Seconds between commits of resume points alone, at most, however slow a commit is."""
IDLE_SHARE = 0.02
"""The share of the time commits of resume points alone may take: a slow one comes less often."""


@dataclass(slots=True)
class Pace:
    last: float = float("-inf")
    """When the last commit ended (monotonic seconds)."""
    cost: float = 0.0
    """Seconds the last commit took."""

    def wait(self, now: float, *, due: bool, force: bool = False) -> float | None:
        """0: commit now; more: what is due may be committed in that many seconds; None: nothing
        is due, and it is not yet time to commit resume points alone."""
        since = now - self.last
        if force:
            return 0.0
        if due:
            return max(0.0, COMMIT_GAP - since)
        every = max(IDLE_EVERY, min(IDLE_MAX, self.cost / IDLE_SHARE))
        return 0.0 if since >= every else None

    def committed(self, started: float, ended: float) -> None:
        self.last = ended
        self.cost = ended - started


def urgent(kinds: Iterable[Kind]) -> bool:
    """Whether transitions of these kinds are committed (and so announced) without the gap."""
    return any(k not in PACED for k in kinds)
