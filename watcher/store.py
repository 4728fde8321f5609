"""The one embedded state store: SQLite in WAL mode under `state_dir`.

Holds what must survive a restart (DESIGN.md §2, §6): incidents and their mitigations,
the timeline, each source's resume point, the engine's snapshot and the announcement
outbox. Every public mutating method commits (`synchronous=FULL`) before it returns,
or joins the enclosing `transaction()`, so whatever the caller acknowledges is on disk
and a kill at any instant leaves whole transactions only.

One Store is used by one thread at a time; a `transaction()` block must run entirely
in the thread that entered it (wrap the whole block in one `asyncio.to_thread` call).
Times are float epoch seconds, UTC, as everywhere in `watcher`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watcher import details
from watcher.details import Detail
from watcher.errors import IncidentClosed, IncidentExists, IncidentNotFound, StoreError
from watcher.events import Kind, Transition

DB_NAME = "watcher.db"
BUSY_TIMEOUT = 5.0
"""Seconds to wait for another process (the CLI, a second daemon) holding the write lock."""

# Append only: entry i moves the schema from version i to i+1 in one transaction.
# Never edit a released entry; add a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE incidents (id TEXT PRIMARY KEY, title TEXT NOT NULL, scope TEXT NOT NULL,
            window_s REAL NOT NULL, opened_at REAL NOT NULL, opened_by TEXT NOT NULL,
            closed_at REAL, close_reason TEXT, closed_by TEXT)""",
        """CREATE TABLE mitigations (seq INTEGER PRIMARY KEY, incident TEXT NOT NULL REFERENCES
            incidents(id), at REAL NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL)""",
        "CREATE INDEX mitigations_by_incident ON mitigations(incident, at, seq)",
        # AUTOINCREMENT: ids are never reused, so insertion order stays total even if
        # old rows are pruned one day.
        """CREATE TABLE timeline (seq INTEGER PRIMARY KEY AUTOINCREMENT, incident TEXT NOT NULL
            REFERENCES incidents(id), at REAL NOT NULL, kind TEXT NOT NULL, state TEXT,
            detail TEXT NOT NULL, recorded_at REAL NOT NULL)""",
        "CREATE INDEX timeline_by_incident ON timeline(incident, at, seq)",
        """CREATE TABLE resume_points (source TEXT PRIMARY KEY, cursor TEXT, watermark REAL,
            updated_at REAL NOT NULL)""",
        """CREATE TABLE engine_state (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL,
            saved_at REAL NOT NULL)""",
        """CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL,
            kind TEXT NOT NULL, payload TEXT NOT NULL, created_at REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL,
            last_error TEXT, done_at REAL)""",
        "CREATE INDEX outbox_pending ON outbox(channel, id) WHERE status = 'pending'",
    ),
    (
        # Schema 1 daemons queued a row per transition but had no sender: once a webhook is
        # configured those would all be posted, hours late. They are history, not news.
        "DELETE FROM outbox WHERE status = 'pending'",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
_UNREADABLE = (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)
_TimelineInsert = tuple[str, float, str, str | None, str, float]


@dataclass(frozen=True, slots=True)
class MitigationRow:
    at: float
    action: str
    by: str


@dataclass(frozen=True, slots=True)
class IncidentRow:
    """`mitigations` oldest first: the engine's `M` is the last one's `at`."""

    id: str
    title: str
    scope: tuple[str, ...]
    window: float
    opened_at: float
    closed_at: float | None
    close_reason: str | None
    mitigations: tuple[MitigationRow, ...]
    opened_by: str = ""
    closed_by: str | None = None


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """`state` is None for notes (kinds that are not transitions).

    `recorded_at` is the wall-clock time of writing: later than `at` for backfilled events.
    """

    incident: str
    at: float
    kind: Kind
    state: str | None
    detail: Detail
    recorded_at: float
    seq: int


@dataclass(frozen=True, slots=True)
class ResumePoint:
    source: str
    cursor: str | None
    watermark: float | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    channel: str
    kind: str
    payload: Mapping[str, object]
    created_at: float
    attempts: int
    next_attempt_at: float
    last_error: str | None


def _dumps(value: Mapping[str, object], what: str) -> str:
    try:
        # Infinities are allowed (json reads them back): a detail must never stop the
        # daemon from recording a transition.
        return json.dumps(dict(value), sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} cannot be stored as JSON: {exc}") from None


def _loads(text: str) -> dict[str, object]:
    value: dict[str, object] = json.loads(text)
    return value


class Store:
    """A connection to `state_dir/watcher.db`; use `Store.open`, then `close()` or `with`."""

    def __init__(self, conn: sqlite3.Connection, path: Path, clock: Callable[[], float]) -> None:
        self._conn = conn
        self.path = path
        self._clock = clock
        # Re-entrant: public methods run inside `transaction()`, which may already hold it.
        self._lock = threading.RLock()
        self._depth = 0

    @classmethod
    def open(cls, state_dir: Path, *, clock: Callable[[], float] = time.time) -> Store:
        """Open the store, creating and migrating it as needed; `clock` stamps `recorded_at`."""
        path = state_dir / DB_NAME
        try:
            if not state_dir.is_dir():
                state_dir.mkdir(mode=0o700, parents=True)
                os.chmod(state_dir, 0o700)  # mkdir's mode is masked by the umask
            # Create the file ourselves: SQLite would make it 0644, and it gives the -wal
            # and -shm files the mode of the database file.
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        except OSError as exc:
            raise StoreError(
                f"cannot create the state store {path}: {exc.strerror}; check state_dir and its permissions"
            ) from None
        else:
            os.fchmod(fd, 0o600)
            os.close(fd)
        try:
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the state store {path}: {exc}") from None
        store = cls(conn, path, clock)
        try:
            store._setup()
        except BaseException:
            conn.close()
            raise
        return store

    def _setup(self) -> None:
        try:
            # Read before anything writes, so a newer or foreign file is left untouched.
            (version,) = self._conn.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the state store {self.path} is newer than this watcher "
                    f"(schema {version} > {SCHEMA_VERSION}); upgrade novavms-watcher"
                )
            if version == 0 and self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise StoreError(
                    f"{self.path} is an SQLite database but not a watcher state store; "
                    "point state_dir elsewhere or move the file aside"
                )
            (mode,) = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()
            if mode != "wal":
                raise StoreError(
                    f"the state store {self.path} cannot use WAL mode (got {mode}); "
                    "put state_dir on a local filesystem"
                )
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            for target, statements in enumerate(MIGRATIONS, start=1):
                with self.transaction():
                    # Re-read under the write lock: another process may have migrated meanwhile.
                    if self._conn.execute("PRAGMA user_version").fetchone()[0] >= target:
                        continue
                    for sql in statements:
                        self._conn.execute(sql)
                    self._conn.execute(f"PRAGMA user_version = {target}")
        except sqlite3.DatabaseError as exc:
            if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF in _UNREADABLE:
                raise StoreError(
                    f"{self.path} is not a usable watcher state store ({exc}); "
                    "move it aside to start empty, or restore it from a backup"
                ) from None
            raise self._error(exc) from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(self, exc: sqlite3.Error) -> StoreError:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return StoreError(
                f"the state store {self.path} stayed locked by another process for "
                f"{BUSY_TIMEOUT:g}s; retry, or find the process holding it"
            )
        return StoreError(f"the state store {self.path} failed: {exc}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group calls into one commit; an exception rolls all of them back and propagates.

        A nested block joins the outer transaction through a savepoint, so a failed inner
        block that the caller catches leaves none of its writes behind.
        """
        with self._lock:
            outer = self._depth == 0
            name = f"sp{self._depth}"
            try:
                # IMMEDIATE takes the write lock up front: a deferred transaction that
                # upgrades later fails at once with SQLITE_BUSY instead of waiting.
                self._conn.execute("BEGIN IMMEDIATE" if outer else f"SAVEPOINT {name}")
            except sqlite3.Error as exc:
                raise self._error(exc) from None
            self._depth += 1
            try:
                yield
                self._conn.execute("COMMIT" if outer else f"RELEASE {name}")
            except BaseException as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK" if outer else f"ROLLBACK TO {name}")
                    if not outer:
                        self._conn.execute(f"RELEASE {name}")
                if isinstance(exc, sqlite3.Error):
                    raise self._error(exc) from None
                raise
            finally:
                self._depth -= 1

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[Any]:
        # One statement is one read snapshot, so readers need no explicit transaction.
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc) from None

    # Incidents

    def create_incident(
        self, id: str, title: str, scope: Sequence[str], window: float, opened_at: float, opened_by: str
    ) -> IncidentRow:
        with self.transaction():
            if self._query("SELECT 1 FROM incidents WHERE id = ?", (id,)):
                raise IncidentExists(f"incident {id} already exists")
            self._conn.execute(
                "INSERT INTO incidents (id, title, scope, window_s, opened_at, opened_by)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (id, title, json.dumps(list(scope)), window, opened_at, opened_by),
            )
        return IncidentRow(id, title, tuple(scope), window, opened_at, None, None, (), opened_by)

    def require(self, id: str) -> IncidentRow:
        """The incident `id`; IncidentNotFound when there is none."""
        row = self.incident(id)
        if row is None:
            raise IncidentNotFound(f"no incident {id}")
        return row

    def require_open(self, id: str) -> IncidentRow:
        """The incident `id` if it is open: the one place that decides it."""
        row = self.require(id)
        if row.closed_at is not None:
            raise IncidentClosed(f"incident {id} is closed")
        return row

    def add_mitigation(self, id: str, at: float, action: str, by: str) -> MitigationRow:
        with self.transaction():
            self.require_open(id)
            self._conn.execute(
                "INSERT INTO mitigations (incident, at, action, actor) VALUES (?, ?, ?, ?)",
                (id, at, action, by),
            )
        return MitigationRow(at, action, by)

    def close_incident(self, id: str, at: float, reason: str | None, by: str) -> None:
        with self.transaction():
            self.require_open(id)
            self._conn.execute(
                "UPDATE incidents SET closed_at = ?, close_reason = ?, closed_by = ? WHERE id = ?",
                (at, reason, by, id),
            )

    def incident(self, id: str) -> IncidentRow | None:
        found = self._incidents("WHERE i.id = ?", (id,))
        return found[0] if found else None

    def incidents(self, include_closed: bool = False) -> list[IncidentRow]:
        """Oldest first."""
        return self._incidents("" if include_closed else "WHERE i.closed_at IS NULL", ())

    def _incidents(self, where: str, args: Sequence[object]) -> list[IncidentRow]:
        # One joined query, so an incident and its mitigations come from the same snapshot.
        rows = self._query(
            "SELECT i.id, i.title, i.scope, i.window_s, i.opened_at, i.closed_at,"
            " i.close_reason, i.opened_by, i.closed_by, m.at, m.action, m.actor"
            f" FROM incidents i LEFT JOIN mitigations m ON m.incident = i.id {where}"
            " ORDER BY i.opened_at, i.id, m.at, m.seq",
            args,
        )
        found: dict[str, tuple[tuple[Any, ...], list[MitigationRow]]] = {}
        for row in rows:
            mitigations = found.setdefault(row[0], (row[:9], []))[1]
            if row[9] is not None:
                mitigations.append(MitigationRow(row[9], row[10], row[11]))
        return [
            IncidentRow(h[0], h[1], tuple(json.loads(h[2])), h[3], h[4], h[5], h[6], tuple(m), h[7], h[8])
            for h, m in found.values()
        ]

    # Timeline

    def append_timeline(self, transitions: Sequence[Transition]) -> None:
        now = self._clock()
        self._insert_timeline(
            [
                (
                    t.incident,
                    t.at,
                    str(t.kind),
                    str(t.state),
                    _dumps(details.to_json(t.detail), f"the detail of {t.incident} {t.kind}"),
                    now,
                )
                for t in transitions
            ]
        )

    def add_note(self, incident: str, at: float, kind: Kind, detail: Detail) -> None:
        """A timeline entry that is not a state change (a snapshot taken, a source down)."""
        detail_json = _dumps(details.to_json(detail), f"the detail of {incident} {kind}")
        self._insert_timeline([(incident, at, str(kind), None, detail_json, self._clock())])

    def _insert_timeline(self, rows: Sequence[_TimelineInsert]) -> None:
        with self.transaction():
            try:
                self._conn.executemany(
                    "INSERT INTO timeline (incident, at, kind, state, detail, recorded_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
            except sqlite3.IntegrityError:
                names = ", ".join(sorted({r[0] for r in rows}))
                raise StoreError(
                    f"timeline entries for {names} name an incident the store does not "
                    "have; create the incident first"
                ) from None

    def timeline(self, incident_id: str) -> list[TimelineRow]:
        """Event-time order; ties (a backfilled event stamped alike) in the order written."""
        rows = self._query(
            "SELECT incident, at, kind, state, detail, recorded_at, seq FROM timeline"
            " WHERE incident = ? ORDER BY at, seq",
            (incident_id,),
        )
        return [
            TimelineRow(r[0], r[1], Kind(r[2]), r[3], details.from_json(Kind(r[2]), _loads(r[4])), r[5], r[6])
            for r in rows
        ]

    # Resume points and engine state

    def save_resume(self, source: str, cursor: str | None, watermark: float | None) -> None:
        """Replace the source's resume point: both fields, None included."""
        with self.transaction():
            self._conn.execute(
                "INSERT INTO resume_points (source, cursor, watermark, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET"
                " cursor = excluded.cursor, watermark = excluded.watermark,"
                " updated_at = excluded.updated_at",
                (source, cursor, watermark, self._clock()),
            )

    def resume_points(self) -> dict[str, ResumePoint]:
        rows = self._query("SELECT source, cursor, watermark, updated_at FROM resume_points")
        return {r[0]: ResumePoint(*r) for r in rows}

    def save_engine_state(self, state: Mapping[str, object]) -> None:
        text = _dumps(state, "the engine state")
        with self.transaction():
            self._conn.execute(
                "INSERT OR REPLACE INTO engine_state (id, state, saved_at) VALUES (1, ?, ?)",
                (text, self._clock()),
            )

    def engine_state(self) -> dict[str, object] | None:
        rows = self._query("SELECT state FROM engine_state WHERE id = 1")
        return _loads(rows[0][0]) if rows else None

    # Outbox

    def enqueue(self, channel: str, kind: str, payload: Mapping[str, object], created_at: float) -> int:
        """Queue an announcement, due at once; returns its id (ids grow in enqueue order)."""
        text = _dumps(payload, f"the {kind} payload for {channel}")
        with self.transaction():
            cur = self._conn.execute(
                "INSERT INTO outbox (channel, kind, payload, created_at,"
                " next_attempt_at) VALUES (?, ?, ?, ?, ?)",
                (channel, kind, text, created_at, created_at),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def due(self, channel: str, now: float, limit: int) -> list[OutboxRow]:
        """The channel's head of line: pending items in id order, up to the first not yet due.

        An item waiting for its retry holds back every later one on its channel, so the
        channel sees announcements in order; a dead item no longer blocks.
        """
        rows = self._query(
            "SELECT id, channel, kind, payload, created_at, attempts, next_attempt_at,"
            " last_error FROM outbox WHERE channel = ? AND status = 'pending'"
            " ORDER BY id LIMIT ?",
            (channel, max(limit, 0)),
        )
        head: list[OutboxRow] = []
        for r in rows:
            if r[6] > now:
                break
            head.append(OutboxRow(r[0], r[1], r[2], _loads(r[3]), r[4], r[5], r[6], r[7]))
        return head

    def _mark(self, id: int, assignments: str, args: Sequence[object]) -> None:
        with self.transaction():
            rows = self._query("SELECT status FROM outbox WHERE id = ?", (id,))
            if not rows or rows[0][0] != "pending":
                raise StoreError(f"outbox item {id} is {rows[0][0] if rows else 'unknown'}, not pending")
            self._conn.execute(f"UPDATE outbox SET {assignments} WHERE id = ?", (*args, id))

    def mark_sent(self, id: int, at: float) -> None:
        self._mark(id, "status = 'sent', done_at = ?", (at,))

    def mark_retry(self, id: int, attempts: int, next_attempt_at: float, error: str) -> None:
        self._mark(
            id, "attempts = ?, next_attempt_at = ?, last_error = ?", (attempts, next_attempt_at, error)
        )

    def mark_dead(self, id: int, at: float, error: str) -> None:
        self._mark(id, "status = 'dead', done_at = ?, last_error = ?", (at, error))

    def pending_count(self, channel: str | None = None) -> int:
        rows = self._query(
            "SELECT count(*) FROM outbox WHERE status = 'pending' AND (?1 IS NULL OR channel = ?1)",
            (channel,),
        )
        return int(rows[0][0])

    def dead_count(self) -> int:
        return int(self._query("SELECT count(*) FROM outbox WHERE status = 'dead'")[0][0])

    def last_enqueued(self, kind: str) -> tuple[float, Mapping[str, object]] | None:
        """When the newest item of `kind` was queued, and its payload (the heartbeat's memory)."""
        rows = self._query(
            "SELECT created_at, payload FROM outbox WHERE kind = ? ORDER BY id DESC LIMIT 1", (kind,)
        )
        return (rows[0][0], _loads(rows[0][1])) if rows else None

    def outbox_channels(self) -> dict[str, dict[str, object]]:
        """Per channel with pending or dead items: their counts, the oldest pending one's
        `created_at`, and the newest error recorded on an unsent item (why it is stuck)."""
        out: dict[str, dict[str, object]] = {}
        for channel, status, n, oldest in self._query(
            "SELECT channel, status, count(*), min(created_at) FROM outbox"
            " WHERE status != 'sent' GROUP BY channel, status"
        ):
            empty: dict[str, object] = {"pending": 0, "dead": 0, "oldest_pending": None, "last_error": None}
            entry = out.setdefault(channel, empty)
            entry[status] = n
            if status == "pending":
                entry["oldest_pending"] = oldest
        for channel, error in self._query(
            "SELECT channel, last_error FROM outbox WHERE id IN (SELECT max(id) FROM outbox"
            " WHERE status != 'sent' AND last_error IS NOT NULL GROUP BY channel)"
        ):
            out[channel]["last_error"] = error
        return out
