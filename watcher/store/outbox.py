"""The announcement outbox: rows queued in the same commit as the transition behind them,
drained in order per channel by the senders (watcher.notify.sender).

Beside it, the held announcements: what a rate limit keeps back (a summary of the
streak resets since the last one announced), one per channel and incident, committed
with the transitions like the rows, and moved into the outbox when announced."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from watcher.errors import StoreError
from watcher.store.db import Database, dumps, loads
from watcher.store.rows import HeldRow, OutboxRow


@dataclass(frozen=True, slots=True)
class Backlog:
    """One channel's announcements not sent: how many wait or were given up, and why."""

    pending: int = 0
    dead: int = 0
    oldest_pending: float | None = None
    """When the oldest waiting one was queued."""
    last_error: str | None = None
    """The newest error recorded on one not sent: why the channel is stuck."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One announcement about an incident, and what became of it."""

    channel: str
    kind: str
    created_at: float
    status: str
    """pending, sent or dead (given up)."""
    done_at: float | None
    attempts: int
    last_error: str | None


class Outbox:
    """The outbox table of a store: use the store's `outbox`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def enqueue(self, channel: str, kind: str, payload: Mapping[str, object], created_at: float) -> int:
        """Queue an announcement, due at once; returns its id (ids grow in enqueue order)."""
        text = dumps(payload, f"the {kind} payload for {channel}")
        with self._db.transaction():
            cur = self._db.execute(
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
        rows = self._db.query(
            "SELECT id, channel, kind, payload, created_at, attempts, next_attempt_at,"
            " last_error FROM outbox WHERE channel = ? AND status = 'pending'"
            " ORDER BY id LIMIT ?",
            (channel, max(limit, 0)),
        )
        head: list[OutboxRow] = []
        for r in rows:
            if r[6] > now:
                break
            head.append(OutboxRow(r[0], r[1], r[2], loads(r[3]), r[4], r[5], r[6], r[7]))
        return head

    def superseded(self, row: OutboxRow, incident: str) -> bool:
        """Whether a pending row of the same lane and kind about `incident` was queued after `row`."""
        return bool(
            self._db.query(
                "SELECT 1 FROM outbox WHERE channel = ? AND kind = ? AND status = 'pending' AND id > ?"
                " AND json_extract(payload, '$.incident') = ? LIMIT 1",
                (row.channel, row.kind, row.id, incident),
            )
        )

    def hold(
        self, channel: str, incident: str, kind: str, payload: Mapping[str, object], due_at: float
    ) -> None:
        """Keep `payload` back for `incident` on `channel` until `due_at`, replacing what was held."""
        text = dumps(payload, f"the held {kind} payload for {channel}")
        with self._db.transaction():
            self._db.execute(
                "INSERT INTO held_announcements (channel, incident, kind, payload, due_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel, incident) DO UPDATE SET"
                " kind = excluded.kind, payload = excluded.payload, due_at = excluded.due_at",
                (channel, incident, kind, text, due_at),
            )

    def release(self, channel: str, incident: str) -> None:
        """Forget what was held for `incident` on `channel`: it has been announced (or summed up)."""
        with self._db.transaction():
            self._db.execute(
                "DELETE FROM held_announcements WHERE channel = ? AND incident = ?", (channel, incident)
            )

    def held(self) -> list[HeldRow]:
        """Everything held back, soonest due first (the announcer's memory after a restart)."""
        rows = self._db.query(
            "SELECT channel, incident, kind, payload, due_at FROM held_announcements ORDER BY due_at, channel"
        )
        return [HeldRow(r[0], r[1], r[2], loads(r[3]), r[4]) for r in rows]

    def _mark(self, id: int, assignments: str, args: Sequence[object]) -> None:
        with self._db.transaction():
            rows = self._db.query("SELECT status FROM outbox WHERE id = ?", (id,))
            if not rows or rows[0][0] != "pending":
                raise StoreError(f"outbox item {id} is {rows[0][0] if rows else 'unknown'}, not pending")
            self._db.execute(f"UPDATE outbox SET {assignments} WHERE id = ?", (*args, id))

    def mark_sent(self, id: int, at: float) -> None:
        self._mark(id, "status = 'sent', done_at = ?", (at,))

    def mark_retry(self, id: int, attempts: int, next_attempt_at: float, error: str) -> None:
        self._mark(
            id, "attempts = ?, next_attempt_at = ?, last_error = ?", (attempts, next_attempt_at, error)
        )

    def reschedule(self, id: int, next_attempt_at: float) -> None:
        self._mark(id, "next_attempt_at = ?", (next_attempt_at,))

    def mark_dead(self, id: int, at: float, error: str) -> None:
        self._mark(id, "status = 'dead', done_at = ?, last_error = ?", (at, error))

    def prune_sent(self, before: float) -> int:
        """Forget announcements delivered before `before`; how many. The newest of each kind stays:
        the heartbeat's memory is read back from it (`last_enqueued`)."""
        with self._db.transaction():
            return self._db.execute(
                "DELETE FROM outbox WHERE status = 'sent' AND done_at < ?"
                " AND id NOT IN (SELECT max(id) FROM outbox GROUP BY kind)",
                (before,),
            ).rowcount

    def pending_count(self, channel: str | None = None) -> int:
        rows = self._db.query(
            "SELECT count(*) FROM outbox WHERE status = 'pending' AND (?1 IS NULL OR channel = ?1)",
            (channel,),
        )
        return int(rows[0][0])

    def last_enqueued(self, kind: str) -> tuple[float, Mapping[str, object]] | None:
        """When the newest item of `kind` was queued, and its payload (the heartbeat's memory)."""
        rows = self._db.query(
            "SELECT created_at, payload FROM outbox WHERE kind = ? ORDER BY id DESC LIMIT 1", (kind,)
        )
        return (rows[0][0], loads(rows[0][1])) if rows else None

    def about(self, incident: str) -> list[Delivery]:
        """Every announcement still kept that is about `incident` (heartbeats naming it included),
        in the order queued: for the postmortem's "delayed or dead-lettered"."""
        rows = self._db.query(
            "SELECT channel, kind, created_at, status, done_at, attempts, last_error FROM outbox"
            " WHERE json_extract(payload, '$.incident') = ?1 OR (kind = 'heartbeat' AND EXISTS"
            " (SELECT 1 FROM json_each(payload, '$.incidents') WHERE json_extract(value, '$.incident') = ?1))"
            " ORDER BY id",
            (incident,),
        )
        return [Delivery(*r) for r in rows]

    def backlog(self) -> dict[str, Backlog]:
        """Per channel with pending or dead items: their counts, the oldest pending one's
        `created_at`, and the newest error recorded on an unsent item (why it is stuck)."""
        counts: dict[str, dict[str, int]] = {}
        oldest: dict[str, float] = {}
        for channel, status, n, first in self._db.query(
            "SELECT channel, status, count(*), min(created_at) FROM outbox"
            " WHERE status != 'sent' GROUP BY channel, status"
        ):
            counts.setdefault(channel, {})[status] = n
            if status == "pending":
                oldest[channel] = first
        errors = dict(
            self._db.query(
                "SELECT channel, last_error FROM outbox WHERE id IN (SELECT max(id) FROM outbox"
                " WHERE status != 'sent' AND last_error IS NOT NULL GROUP BY channel)"
            )
        )
        return {
            channel: Backlog(n.get("pending", 0), n.get("dead", 0), oldest.get(channel), errors.get(channel))
            for channel, n in counts.items()
        }
