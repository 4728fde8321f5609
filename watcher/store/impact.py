"""Whom each incident's errors hit (watcher.engine.impact): saved row by row in the commit that
carries the errors behind them, so a restart neither loses nor counts twice an org's error."""

from __future__ import annotations

from collections.abc import Sequence

from watcher.engine.impact import OrgSeen, SavedImpact, Totals
from watcher.store.db import Database


class ImpactRows:
    """The impact tables of a store: use the store's `impact`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def save(self, changes: Sequence[tuple[str, SavedImpact]]) -> None:
        """Each incident's totals, and the orgs that changed (joins the enclosing transaction)."""
        with self._db.transaction():
            for incident, saved in changes:
                t = saved.totals
                self._db.execute(
                    "INSERT OR REPLACE INTO impact (incident, records, first_at, last_at, untracked,"
                    " confirmed_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (incident, t.records, t.first, t.last, t.untracked, t.confirmed_at),
                )
                self._db.executemany(
                    "INSERT OR REPLACE INTO impact_orgs (incident, org, first_at, last_at, records)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [(incident, org, s.first, s.last, s.records) for org, s in saved.orgs],
                )

    def load(self, incident: str) -> SavedImpact:
        """An incident's impact; empty when none was recorded."""
        rows = self._db.query(
            "SELECT records, first_at, last_at, untracked, confirmed_at FROM impact WHERE incident = ?",
            (incident,),
        )
        if not rows:
            return SavedImpact()
        orgs = self._db.query(
            "SELECT org, first_at, last_at, records FROM impact_orgs WHERE incident = ? ORDER BY org",
            (incident,),
        )
        return SavedImpact(Totals(*rows[0]), tuple((o[0], OrgSeen(o[1], o[2], o[3])) for o in orgs))
