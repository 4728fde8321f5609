"""When the pipeline commits: streak resets soon but not forty times a second, resume points alone
seldom enough that a slow commit (a fleet's thousand sources) stays a small share of the time."""

from __future__ import annotations

import pytest

from watcher.daemon.pace import COMMIT_GAP, IDLE_EVERY, IDLE_MAX, IDLE_SHARE, Pace, urgent
from watcher.events import Kind


def test_the_first_commit_is_at_once() -> None:
    assert Pace().wait(100.0, due=True) == 0.0
    assert Pace().wait(100.0, due=False) == 0.0


def test_transitions_right_after_a_commit_wait_for_the_gap() -> None:
    pace = Pace()
    pace.committed(100.0, 100.01)
    assert pace.wait(100.06, due=True) == pytest.approx(COMMIT_GAP - 0.05)
    assert pace.wait(100.01 + COMMIT_GAP, due=True) == 0.0


def test_forced_commits_do_not_wait() -> None:
    pace = Pace()
    pace.committed(100.0, 100.01)
    assert pace.wait(100.02, due=False, force=True) == 0.0
    assert pace.wait(100.02, due=True, force=True) == 0.0


def test_resume_points_alone_every_second_while_commits_are_cheap() -> None:
    pace = Pace()
    pace.committed(100.0, 100.002)
    assert pace.wait(100.5, due=False) is None
    assert pace.wait(100.002 + IDLE_EVERY, due=False) == 0.0


def test_a_slow_commit_makes_resume_points_alone_come_less_often_within_a_bound() -> None:
    slow = 0.1  # a fleet's snapshot and a thousand resume points
    pace = Pace()
    pace.committed(100.0, 100.0 + slow)
    assert pace.wait(100.0 + slow + IDLE_EVERY, due=False) is None
    assert pace.wait(100.0 + slow + slow / IDLE_SHARE + 0.001, due=False) == 0.0
    pace.committed(200.0, 230.0)  # a disk that stalled for half a minute
    assert pace.wait(230.0 + IDLE_MAX, due=False) == 0.0
    assert pace.wait(230.0 + 2 * COMMIT_GAP, due=True) == 0.0


def test_only_an_error_storms_streak_resets_wait_for_the_gap() -> None:
    """A resolution or a regression is announced as soon as it is decided."""
    assert not urgent([Kind.STREAK_RESET, Kind.STREAK_RESET])
    assert not urgent([])
    for kind in (Kind.RESOLVED, Kind.REGRESSED, Kind.BLIND, Kind.GAP, Kind.MITIGATED):
        assert urgent([Kind.STREAK_RESET, kind])
