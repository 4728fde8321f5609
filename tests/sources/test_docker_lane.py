"""Lane.choose / Lane.finished: which container a docker sub-source reads next, and gaps."""

from __future__ import annotations

from watcher.config import DockerSourceConfig
from watcher.events import Expectation, Liveness
from watcher.sources.docker.cursor import Cursor
from watcher.sources.docker.lane import Container, Lane, time_ns
from watcher.sources.docker.source import DockerSource

S = 1_000_000_000


def container(
    cid: str, created: int, *, running: bool = True, fresh: bool = False, run: int = 0
) -> Container:
    return Container(cid, "cloud/api", "img", False, created * S, run * S, running, fresh)


def lane(*containers: Container, cursor: Cursor | None = None) -> Lane:
    ln = Lane("cloud/api", cursor)
    ln.containers = {c.id: c for c in containers}
    return ln


class TestChoose:
    def test_first_start_reads_current_run(self) -> None:
        """No cursor: the newest running container, from the end of its previous run."""
        target, gap = lane(container("a", 1, run=5)).choose(100.0)
        assert target is not None and target[1] == Cursor("a", 5 * S) and gap is None

    def test_first_start_stopped_reads_nothing(self) -> None:
        """No cursor and nothing running: nothing to read (idle, caught up)."""
        assert lane(container("a", 1, running=False)).choose(100.0) == (None, None)

    def test_new_container_from_first_line(self) -> None:
        """A container created while watching is read from its first line."""
        target, _ = lane(container("b", 2, fresh=True)).choose(100.0)
        assert target is not None and target[1] == Cursor("b", 0)

    def test_old_read_to_end_then_new(self) -> None:
        """The cursor's container stopped and read to its end: its successor, from the start."""
        ln = lane(container("a", 1, running=False), container("b", 2), cursor=Cursor("a", 7, (), done=True))
        target, gap = ln.choose(100.0)
        assert target is not None and target[0].id == "b" and target[1] == Cursor("b", 0) and gap is None

    def test_restarted_container_resumes(self) -> None:
        """The cursor's container runs again (docker restart): the same cursor."""
        cur = Cursor("a", 7, ("h",), done=True)
        target, _ = lane(container("a", 1), cursor=cur).choose(100.0)
        assert target is not None and target[1] == cur

    def test_started_since_read_is_read_again(self) -> None:
        """Read to its end and stopped, but a start event came after that read began (the events
        lag): that run may be unread, so the same container from the same cursor, once."""
        a = container("a", 1, running=False)
        a.starts = 1
        cur = Cursor("a", 7, ("h",), done=True)
        ln = lane(a, container("b", 2), cursor=cur)
        assert ln.choose(100.0) == ((a, cur), None)
        a.read_starts = 1  # the lane began reading it again after that start
        target, _ = ln.choose(100.0)
        assert target is not None and target[0].id == "b"

    def test_gone_container_is_a_gap(self) -> None:
        """The cursor's container vanished unread: a gap from its last line to now, once."""
        ln = lane(container("b", 20), cursor=Cursor("a", 10 * S))
        target, gap = ln.choose(100.0)
        assert gap is not None and (gap.start, gap.end) == (10.0, 100.0)
        assert target is not None and target[0].id == "b"
        assert ln.choose(101.0)[1] is None


class TestFinished:
    def test_removed_unread_is_a_gap(self) -> None:
        """Removed before its stream ended normally: a gap up to its removal."""
        c = container("a", 1)
        c.removed_at = 50.0
        ln = lane(c, cursor=Cursor("a", 10 * S))
        gap = ln.finished(c, complete=False)
        assert gap is not None and (gap.start, gap.end) == (10.0, 50.0)
        assert ln.cursor is not None and ln.cursor.done and "a" not in ln.containers

    def test_stopped_and_read(self) -> None:
        """Stopped and read to its end: no gap, the cursor says done."""
        c = container("a", 1, running=False)
        ln = lane(c, cursor=Cursor("a", 10 * S))
        assert ln.finished(c, complete=True) is None
        assert ln.cursor == Cursor("a", 10 * S, (), True)


def test_time_ns() -> None:
    """Docker's nanosecond RFC 3339 times; year 1 means never."""
    assert time_ns("0001-01-01T00:00:00Z") == 0
    assert time_ns("1970-01-01T00:00:01.5Z") == 1_500_000_000


class TestLiveness:
    def test_reported_on_change_only(self) -> None:
        """A lane runs while one of its containers runs and is not paused; each change is reported once."""
        c = container("a", 1)
        ln = lane(c)
        assert ln.liveness(10.0) == [Liveness("cloud/api", 10.0, True)]
        assert ln.liveness(11.0) == []
        c.paused = True
        assert ln.liveness(12.0) == [Liveness("cloud/api", 12.0, False, "no running container (paused)")]
        c.paused, c.running = False, False
        assert ln.liveness(13.0) == []  # still not running: nothing new
        del ln.containers["a"]
        ln.reported = None
        assert ln.liveness(14.0) == [Liveness("cloud/api", 14.0, False, "no running container (removed)")]

    def test_listed_reports_a_run_that_ended_unwatched_first(self) -> None:
        """After listing: a container restarted while unwatched was down from its last finish to its start."""
        c = container("a", 1)
        c.started, c.finished = 50.0, 40.0
        assert lane(c).listed(99.0) == [
            Liveness("cloud/api", 40.0, False, "no running container (exited)"),
            Liveness("cloud/api", 50.0, True),
        ]

    def test_listed_with_no_container_dates_the_stop_at_the_last_line_read(self) -> None:
        """A sub-source whose containers are all gone was last known running at its cursor."""
        ln = lane(cursor=Cursor("gone", 30 * S))
        assert ln.listed(99.0) == [Liveness("cloud/api", 30.0, False, "no running container (removed)")]


class TestExpectations:
    def test_the_engine_connection_and_one_shot_services(self) -> None:
        """The source itself may be silent and runs while a container matches; a one_shot service
        neither reports liveness nor has to write."""
        cfg = DockerSourceConfig.model_validate(
            {"name": "cloud", "kind": "docker", "compose_project": "p", "one_shot": ["migrate"]}
        )
        src = DockerSource(cfg, max_line_bytes=1 << 20)
        assert src.expectation("cloud") == Expectation(quiet_ok=True, liveness=True)
        assert src.expectation("cloud/migrate") == Expectation(quiet_ok=True, liveness=False)
        assert src.expectation("cloud/api") == Expectation(quiet_ok=False, liveness=True)
