"""The alerts Alertmanager (or Grafana) notified: which incident each alert group opened, and
every (alert, start, status) already recorded, so a retried or repeated notification changes
nothing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from watcher.store.db import Database


@dataclass(frozen=True, slots=True)
class AlertKey:
    """One state of one alert: the same alert firing again later has another `starts_at`."""

    fingerprint: str
    starts_at: float
    status: str


class AlertLog:
    """The alerts table of a store: use the store's `alerts`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def incident_of(self, group_key: str) -> str | None:
        """The incident the group's newest recorded alert belongs to."""
        rows = self._db.query(
            "SELECT incident FROM alerts WHERE group_key = ? ORDER BY received_at DESC, rowid DESC LIMIT 1",
            (group_key,),
        )
        return rows[0][0] if rows else None

    def seen(self, group_key: str, keys: Iterable[AlertKey]) -> set[AlertKey]:
        """Those of `keys` already recorded for the group."""
        found = set()
        for key in keys:
            if self._db.query(
                "SELECT 1 FROM alerts WHERE group_key = ? AND fingerprint = ? AND starts_at = ?"
                " AND status = ?",
                (group_key, key.fingerprint, key.starts_at, key.status),
            ):
                found.add(key)
        return found

    def record(self, group_key: str, keys: Iterable[AlertKey], incident: str, at: float) -> None:
        with self._db.transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO alerts (group_key, fingerprint, starts_at, status, incident,"
                " received_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(group_key, k.fingerprint, k.starts_at, k.status, incident, at) for k in keys],
            )
