"""One SQLite connection in WAL mode under `state_dir`: opening, migrating, transactions.

Every public mutating method of the store commits (`synchronous=FULL`) before it
returns, or joins the enclosing `transaction()`, so whatever the caller acknowledges
is on disk and a kill at any instant leaves whole transactions only.

One Database is used by one thread at a time; a `transaction()` block must run
entirely in the thread that entered it (wrap the whole block in one
`asyncio.to_thread` call).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from watcher.errors import StoreError
from watcher.store.schema import DB_NAME, MIGRATIONS, SCHEMA_VERSION

BUSY_TIMEOUT = 5.0
"""Seconds to wait for another process (the CLI, a second daemon) holding the write lock."""
_UNREADABLE = (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)


def dumps(value: Mapping[str, object], what: str) -> str:
    try:
        # Infinities are allowed (json reads them back): a detail must never stop the
        # daemon from recording a transition.
        return json.dumps(dict(value), sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} cannot be stored as JSON: {exc}") from None


def loads(text: str) -> dict[str, object]:
    value: dict[str, object] = json.loads(text)
    return value


class Database:
    """A connection to `state_dir/watcher.db`, migrated to the current schema."""

    def __init__(self, conn: sqlite3.Connection, path: Path, clock: Callable[[], float]) -> None:
        self._conn = conn
        self.path = path
        self._clock = clock
        # Re-entrant: public methods run inside `transaction()`, which may already hold it.
        self._lock = threading.RLock()
        self._depth = 0

    @classmethod
    def open(cls, state_dir: Path, *, clock: Callable[[], float] = time.time) -> Self:
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

    def __enter__(self) -> Self:
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

    def execute(self, sql: str, args: Sequence[object] = ()) -> sqlite3.Cursor:
        """One statement; inside `transaction()` (its except turns sqlite3 errors into StoreError)."""
        return self._conn.execute(sql, args)

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> sqlite3.Cursor:
        return self._conn.executemany(sql, rows)

    def query(self, sql: str, args: Sequence[object] = ()) -> list[Any]:
        # One statement is one read snapshot, so readers need no explicit transaction.
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc) from None
