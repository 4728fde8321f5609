from __future__ import annotations

import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.support import ROOT
from watcher import details
from watcher.details import MitigatedDetail, SnapshotDetail, SourceDownDetail, Transition
from watcher.errors import IncidentClosed, IncidentExists, IncidentNotFound, StoreError
from watcher.events import Kind, State
from watcher.store import Store
from watcher.store.rows import MitigationRow
from watcher.store.schema import SCHEMA_VERSION


def dead(store: Store) -> int:
    """Announcements dead-lettered on every channel."""
    return sum(b.dead for b in store.outbox.backlog().values())


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(state_dir: Path, clock: Clock) -> Iterator[Store]:
    with Store.open(state_dir, clock=clock) as s:
        yield s


def raw(state_dir: Path) -> closing[sqlite3.Connection]:
    """A second, independent connection, as another process would have."""
    return closing(sqlite3.connect(state_dir / "watcher.db", isolation_level=None))


def sql(state_dir: Path, statement: str) -> list[tuple[object, ...]]:
    with raw(state_dir) as conn:
        return conn.execute(statement).fetchall()


def transition(incident: str, kind: Kind, at: float, **detail: object) -> Transition:
    return Transition(incident, kind, at, State.VERIFYING, details.from_json(kind, detail))


class TestOpen:
    def test_creates_and_migrates(self, state_dir: Path) -> None:
        """A missing state_dir is created and the empty database migrated to the current schema."""
        with Store.open(state_dir) as s:
            assert s.incidents() == []
        assert sql(state_dir, "PRAGMA user_version") == [(SCHEMA_VERSION,)]

    def test_file_modes(self, state_dir: Path, store: Store) -> None:
        """The directory is 0700; the database and its WAL files are 0600."""
        store.outbox.enqueue("incident", "opened", {}, 1.0)
        assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
        for name in ("watcher.db", "watcher.db-wal", "watcher.db-shm"):
            assert stat.S_IMODE((state_dir / name).stat().st_mode) == 0o600, name

    def test_wal_and_pragmas(self, state_dir: Path, store: Store) -> None:
        """WAL mode persists in the file; full sync and foreign keys are on for the connection."""
        assert sql(state_dir, "PRAGMA journal_mode") == [("wal",)]
        conn = store._conn
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0

    def test_reopen_keeps_data(self, state_dir: Path) -> None:
        """What one Store wrote, the next one opened on the same directory reads."""
        with Store.open(state_dir) as s:
            s.create_incident("P1-a", "cams down", ["gw/*"], 900.0, 10.0, "ana")
            s.save_resume("gw/b1", "c-1", 12.0)
        with Store.open(state_dir) as s:
            inc = s.incident("P1-a")
            assert inc is not None
            assert inc.scope == ("gw/*",)
            assert s.resume_points()["gw/b1"].cursor == "c-1"

    def test_schema_1_outbox_is_not_sent_late(self, state_dir: Path) -> None:
        """Rows a schema-1 daemon queued without any sender are dropped on upgrade; history stays."""
        with Store.open(state_dir) as s:
            s.create_incident("P1-a", "cams down", ["gw/*"], 900.0, 10.0, "ana")
            sent = s.outbox.enqueue("incident", "opened", {}, 10.0)
            s.outbox.mark_sent(sent, 11.0)
            s.outbox.enqueue("incident", "mitigated", {}, 12.0)
        sql(state_dir, "PRAGMA user_version = 1")
        with Store.open(state_dir) as s:
            assert s.outbox.pending_count() == 0
            assert s.incident("P1-a") is not None
        assert sql(state_dir, "SELECT id, status FROM outbox") == [(sent, "sent")]

    def test_newer_schema_refused(self, state_dir: Path) -> None:
        """A store written by a newer watcher is refused with a message saying to upgrade."""
        Store.open(state_dir).close()
        sql(state_dir, f"PRAGMA user_version = {SCHEMA_VERSION + 7}")
        with pytest.raises(StoreError) as info:
            Store.open(state_dir)
        assert (
            f"newer than this watcher (schema {SCHEMA_VERSION + 7} > {SCHEMA_VERSION}); "
            "upgrade novavms-watcher"
        ) in str(info.value)

    def test_garbage_refused(self, state_dir: Path) -> None:
        """A file that is not SQLite is refused, naming the path and what to do; it is left as is."""
        state_dir.mkdir()
        db = state_dir / "watcher.db"
        garbage = b"this is not a database, just some bytes\n" * 200
        db.write_bytes(garbage)
        with pytest.raises(StoreError, match="move it aside") as info:
            Store.open(state_dir)
        assert str(db) in str(info.value)
        assert db.read_bytes() == garbage

    def test_foreign_sqlite_refused(self, state_dir: Path) -> None:
        """Another application's SQLite file is not adopted and migrated."""
        state_dir.mkdir()
        sql(state_dir, "CREATE TABLE incidents (x)")
        with pytest.raises(StoreError, match="not a watcher state store"):
            Store.open(state_dir)

    def test_two_connections(self, state_dir: Path, store: Store) -> None:
        """A second Store (the CLI beside the daemon) sees each commit as soon as the call returns."""
        with Store.open(state_dir) as other:
            store.create_incident("P1-a", "t", [], 900.0, 1.0, "ana")
            other.add_mitigation("P1-a", 5.0, "restart", "bo")
            assert store.incident("P1-a").mitigations == (MitigationRow(5.0, "restart", "bo"),)  # type: ignore[union-attr]

    def test_closed_store(self, state_dir: Path) -> None:
        """Using a closed store raises StoreError, not a raw sqlite3 error."""
        s = Store.open(state_dir)
        s.close()
        with pytest.raises(StoreError):
            s.incidents()


class TestIncidents:
    def test_create_and_read(self, store: Store) -> None:
        """An incident reads back as created, open and unmitigated."""
        row = store.create_incident("P1-a", "cams down", ["cloud", "gw/*"], 900.0, 10.0, "ana")
        assert store.incident("P1-a") == row
        assert row.scope == ("cloud", "gw/*")
        assert (row.closed_at, row.mitigations, row.opened_by) == (None, (), "ana")
        assert store.incident("P1-zz") is None

    def test_duplicate(self, store: Store) -> None:
        """Creating an id twice is refused and says the incident exists."""
        store.create_incident("P1-a", "one", [], 900.0, 10.0, "ana")
        with pytest.raises(IncidentExists, match="P1-a already exists"):
            store.create_incident("P1-a", "two", [], 900.0, 20.0, "bo")
        assert store.incident("P1-a").title == "one"  # type: ignore[union-attr]

    def test_mitigations_ordered(self, store: Store) -> None:
        """Mitigations come back in time order, ties in the order recorded."""
        store.create_incident("P1-a", "t", [], 900.0, 10.0, "ana")
        store.add_mitigation("P1-a", 30.0, "second", "ana")
        store.add_mitigation("P1-a", 20.0, "first", "bo")
        store.add_mitigation("P1-a", 30.0, "third", "ana")
        inc = store.incident("P1-a")
        assert inc is not None
        assert [m.action for m in inc.mitigations] == ["first", "second", "third"]

    def test_close(self, store: Store) -> None:
        """A closed incident leaves the open list, keeps its reason, and takes no more changes."""
        store.create_incident("P1-a", "t", [], 900.0, 10.0, "ana")
        store.create_incident("P1-b", "t", [], 900.0, 11.0, "ana")
        store.close_incident("P1-a", 50.0, "fixed", "bo")
        assert [i.id for i in store.incidents()] == ["P1-b"]
        assert [i.id for i in store.incidents(include_closed=True)] == ["P1-a", "P1-b"]
        inc = store.incident("P1-a")
        assert inc is not None
        assert (inc.closed_at, inc.close_reason, inc.closed_by) == (50.0, "fixed", "bo")
        with pytest.raises(IncidentClosed, match="P1-a is closed"):
            store.add_mitigation("P1-a", 60.0, "late", "bo")
        with pytest.raises(IncidentClosed, match="P1-a is closed"):
            store.close_incident("P1-a", 60.0, None, "bo")

    def test_unknown(self, store: Store) -> None:
        """Mitigating or closing an unknown incident is refused by name."""
        with pytest.raises(IncidentNotFound, match="no incident P1-x"):
            store.add_mitigation("P1-x", 1.0, "a", "b")
        with pytest.raises(IncidentNotFound, match="no incident P1-x"):
            store.close_incident("P1-x", 1.0, None, "b")


class TestTimeline:
    def test_order_and_fields(self, store: Store, clock: Clock) -> None:
        """Rows come in event-time order, ties in insertion order, with detail and recorded_at."""
        store.create_incident("P1-a", "t", [], 900.0, 1.0, "ana")
        store.append_timeline(
            [
                transition("P1-a", Kind.MITIGATED, 20.0, action="restart"),
                transition("P1-a", Kind.STREAK_RESET, 50.0, message="n=1"),
            ]
        )
        clock.now = 2_000.0
        store.append_timeline([transition("P1-a", Kind.STREAK_RESET, 30.0, message="late")])
        store.add_note("P1-a", 50.0, Kind.SNAPSHOT, SnapshotDetail(file="x.tar.gz"))
        rows = store.timeline("P1-a")
        assert [(r.at, r.kind) for r in rows] == [
            (20.0, "mitigated"),
            (30.0, "streak_reset"),
            (50.0, "streak_reset"),
            (50.0, "snapshot"),
        ]
        assert rows[0].detail == MitigatedDetail("restart")
        assert rows[3].detail == SnapshotDetail(file="x.tar.gz")
        assert rows[0].state == "verifying"
        assert rows[3].state is None
        assert [r.recorded_at for r in rows] == [1_000.0, 2_000.0, 1_000.0, 2_000.0]
        assert store.timeline("P1-other") == []
        skipped = store.timeline("P1-a", skip={Kind.STREAK_RESET, Kind.GAP})
        assert [(r.at, r.kind) for r in skipped] == [(20.0, "mitigated"), (50.0, "snapshot")]

    def test_unknown_incident(self, store: Store) -> None:
        """A timeline row for an incident the store lacks is refused and nothing is written."""
        store.create_incident("P1-a", "t", [], 900.0, 1.0, "ana")
        with pytest.raises(StoreError, match="P1-x"):
            store.append_timeline([transition("P1-a", Kind.GAP, 1.0), transition("P1-x", Kind.GAP, 2.0)])
        assert store.timeline("P1-a") == []

    def test_unserialisable_detail(self, store: Store) -> None:
        """A detail that is not JSON raises StoreError naming what could not be stored."""
        store.create_incident("P1-a", "t", [], 900.0, 1.0, "ana")
        with pytest.raises(StoreError, match="detail of P1-a"):
            store.add_note("P1-a", 1.0, Kind.SOURCE_DOWN, SourceDownDetail("s", object()))  # type: ignore[arg-type]


class TestResumeAndEngineState:
    def test_resume_upsert(self, store: Store, clock: Clock) -> None:
        """save_resume replaces a source's point, others are untouched."""
        store.save_resume("gw/b1", "c-1", 10.0)
        store.save_resume("cloud", None, None)
        clock.now = 1_500.0
        store.save_resume("gw/b1", "c-2", 20.0)
        points = store.resume_points()
        assert (points["gw/b1"].cursor, points["gw/b1"].watermark) == ("c-2", 20.0)
        assert points["gw/b1"].updated_at == 1_500.0
        assert (points["cloud"].cursor, points["cloud"].watermark) == (None, None)

    def test_engine_state(self, store: Store) -> None:
        """The engine snapshot round-trips and the latest save wins."""
        assert store.engine_state() is None
        store.save_engine_state({"version": 1, "incidents": []})
        store.save_engine_state({"version": 1, "incidents": [{"id": "P1-a"}], "w": {"a": 1.5}})
        assert store.engine_state() == {"version": 1, "incidents": [{"id": "P1-a"}], "w": {"a": 1.5}}


class TestOutbox:
    def test_order_per_channel(self, store: Store) -> None:
        """Each channel yields its own items oldest first, payload intact, up to limit."""
        a1 = store.outbox.enqueue("incident", "opened", {"text": "a1"}, 10.0)
        b1 = store.outbox.enqueue("oncall", "heartbeat", {"text": "b1"}, 11.0)
        a2 = store.outbox.enqueue("incident", "mitigated", {"text": "a2"}, 12.0)
        assert [r.id for r in store.outbox.due("incident", 100.0, 10)] == [a1, a2]
        assert [r.id for r in store.outbox.due("incident", 100.0, 1)] == [a1]
        assert [r.payload for r in store.outbox.due("oncall", 100.0, 10)] == [{"text": "b1"}]
        assert [r.id for r in store.outbox.due("incident", 11.0, 10)] == [a1]
        assert b1 > a1

    def test_head_of_line(self, store: Store) -> None:
        """A later message is not due while an earlier one on its channel waits for its retry."""
        first = store.outbox.enqueue("incident", "opened", {}, 10.0)
        second = store.outbox.enqueue("incident", "mitigated", {}, 11.0)
        other = store.outbox.enqueue("oncall", "heartbeat", {}, 12.0)
        store.outbox.mark_retry(first, 1, 40.0, "429 Too Many Requests")
        assert store.outbox.due("incident", 30.0, 10) == []
        assert [r.id for r in store.outbox.due("oncall", 30.0, 10)] == [other]
        rows = store.outbox.due("incident", 40.0, 10)
        assert [r.id for r in rows] == [first, second]
        assert (rows[0].attempts, rows[0].last_error) == (1, "429 Too Many Requests")

    def test_sent_and_dead(self, store: Store) -> None:
        """Sent and dead items leave the queue; a dead item no longer blocks its channel."""
        ids = [store.outbox.enqueue("incident", "k", {"n": n}, 10.0) for n in range(3)]
        store.outbox.enqueue("oncall", "k", {}, 10.0)
        assert (store.outbox.pending_count(), store.outbox.pending_count("incident")) == (4, 3)
        store.outbox.mark_sent(ids[0], 20.0)
        store.outbox.mark_retry(ids[1], 5, 1e9, "500")
        store.outbox.mark_dead(ids[1], 21.0, "gave up after 5 attempts")
        assert [r.id for r in store.outbox.due("incident", 30.0, 10)] == [ids[2]]
        assert (
            store.outbox.pending_count(),
            store.outbox.pending_count("incident"),
            dead(store),
        ) == (2, 1, 1)
        assert store.outbox.pending_count("nowhere") == 0

    def test_mark_not_pending(self, store: Store) -> None:
        """Marking an item that is already done, or unknown, is refused."""
        i = store.outbox.enqueue("incident", "k", {}, 10.0)
        store.outbox.mark_sent(i, 11.0)
        with pytest.raises(StoreError, match="is sent, not pending"):
            store.outbox.mark_retry(i, 1, 20.0, "x")
        with pytest.raises(StoreError, match="unknown"):
            store.outbox.mark_sent(i + 100, 11.0)

    def test_held_announcements_one_per_channel_and_incident(self, store: Store) -> None:
        """Holding again replaces what was held; release forgets it; none of it is due to a sender."""
        store.outbox.hold("incident", "P1-a", "streak_reset", {"also": 0}, 70.0)
        store.outbox.hold("incident", "P1-a", "streak_reset", {"also": 1}, 70.0)
        store.outbox.hold("oncall", "P1-a", "streak_reset", {"also": 1}, 75.0)
        store.outbox.hold("incident", "P1-b", "streak_reset", {"also": 0}, 60.0)
        held = store.outbox.held()
        assert [(h.channel, h.incident, h.payload, h.due_at) for h in held] == [
            ("incident", "P1-b", {"also": 0}, 60.0),
            ("incident", "P1-a", {"also": 1}, 70.0),
            ("oncall", "P1-a", {"also": 1}, 75.0),
        ]
        assert store.outbox.pending_count() == 0 and store.outbox.due("incident", 100.0, 10) == []
        store.outbox.release("incident", "P1-a")
        assert [(h.channel, h.incident) for h in store.outbox.held()] == [
            ("incident", "P1-b"),
            ("oncall", "P1-a"),
        ]


class TestTransaction:
    def test_exception_rolls_back_everything(self, store: Store) -> None:
        """An exception inside transaction() undoes every call in it and propagates."""
        store.create_incident("P1-a", "t", [], 900.0, 1.0, "ana")
        with pytest.raises(RuntimeError), store.transaction():
            store.append_timeline([transition("P1-a", Kind.GAP, 5.0)])
            store.outbox.enqueue("incident", "gap", {}, 5.0)
            store.save_resume("gw/b1", "c", 5.0)
            raise RuntimeError("boom")
        assert store.timeline("P1-a") == []
        assert store.outbox.pending_count() == 0
        assert store.resume_points() == {}
        store.outbox.enqueue("incident", "gap", {}, 6.0)  # the store is usable afterwards
        assert store.outbox.pending_count() == 1

    def test_one_commit(self, state_dir: Path, store: Store) -> None:
        """Another connection sees nothing of a transaction, nested ones included, until it ends."""
        with store.transaction():
            store.outbox.enqueue("incident", "a", {}, 1.0)
            with store.transaction():
                store.outbox.enqueue("incident", "b", {}, 2.0)
            assert sql(state_dir, "SELECT count(*) FROM outbox") == [(0,)]
        assert sql(state_dir, "SELECT count(*) FROM outbox") == [(2,)]

    def test_failed_inner_block(self, store: Store) -> None:
        """A nested block that fails and is caught leaves none of its writes; the outer commits."""
        with store.transaction():
            store.outbox.enqueue("incident", "kept", {}, 1.0)
            with pytest.raises(StoreError), store.transaction():
                store.outbox.enqueue("incident", "dropped", {}, 2.0)
                store.outbox.mark_sent(12345, 2.0)
        assert [r.kind for r in store.outbox.due("incident", 10.0, 10)] == ["kept"]


CHILD = """
import sys
from pathlib import Path
from watcher.details import BreakDetail, Transition
from watcher.events import Kind, State
from watcher.store import Store

store = Store.open(Path(sys.argv[1]))
if store.incident("P1-k") is None:
    store.create_incident("P1-k", "kill", ["*"], 900.0, 0.0, "test")
n = len(store.timeline("P1-k"))
print("open", n, flush=True)
while True:
    n += 1
    with store.transaction():
        detail = BreakDetail(message="x" * 3000)
        store.append_timeline([Transition("P1-k", Kind.STREAK_RESET, float(n), State.VERIFYING, detail)])
        store.outbox.enqueue("incident", "streak_reset", {"n": n}, float(n))
        store.save_resume("src", str(n), float(n))
    print(n, flush=True)
"""


class TestKillSafety:
    def test_sigkill_leaves_whole_transactions(self, state_dir: Path) -> None:
        """SIGKILL at random moments never loses an acknowledged commit nor leaves half of one."""
        rng = random.Random(os.environ.get("STORE_KILL_SEED", "7"))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        acked = 0
        for _ in range(10):
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(state_dir)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert child.stdout is not None
            try:
                first = child.stdout.readline().split()
                assert first[:1] == ["open"], child.communicate()[1]
                assert int(first[1]) >= acked  # nothing acknowledged before was lost
                acked = int(first[1])
                for _ in range(rng.randint(0, 100)):
                    line = child.stdout.readline()
                    assert line, child.communicate()[1]
                    acked = int(line)
                # Reading a line puts us in step with the child, just after a commit; a
                # random extra delay moves the kill to any point of its loop instead.
                time.sleep(rng.uniform(0, 0.003))
            finally:
                child.send_signal(signal.SIGKILL)
                child.communicate()
            with Store.open(state_dir) as s:
                committed = [row.at for row in s.timeline("P1-k")]
                outbox = s.outbox.pending_count("incident")
                point = s.resume_points().get("src")
            assert sql(state_dir, "PRAGMA integrity_check") == [("ok",)]
            # Each transaction wrote all three or none: no holes, equal counts, matching point.
            assert committed == [float(n) for n in range(1, len(committed) + 1)]
            assert outbox == len(committed) >= acked
            assert (point.watermark if point else 0) == len(committed)
        assert acked > 0
