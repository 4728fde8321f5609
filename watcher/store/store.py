"""What the watcher keeps across restarts, on top of the database (db.py).

Incidents and their mitigations, the timeline, each source's resume point and the
engine's snapshot; the announcement outbox (`store.outbox`), the Slack app's status
messages (`store.threads`) and the alerts Alertmanager notified (`store.alerts`) are
components of their own.
Every public mutating method commits before it returns, or joins the enclosing
`transaction()`. Times are float epoch seconds, UTC, as everywhere in `watcher`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from watcher import details
from watcher.details import Detail, Transition
from watcher.errors import IncidentClosed, IncidentExists, IncidentNotClosed, IncidentNotFound, StoreError
from watcher.events import Kind
from watcher.store.alerts import AlertLog
from watcher.store.db import Database, dumps, loads
from watcher.store.impact import ImpactRows
from watcher.store.outbox import Outbox
from watcher.store.rows import IncidentRow, MitigationRow, ResumePoint, TimelineRow
from watcher.store.threads import SlackMessages

_TimelineInsert = tuple[str, float, str, str | None, str, float]


class Store(Database):
    """The watcher's state: use `Store.open`, then `close()` or `with`."""

    outbox: Outbox
    impact: ImpactRows
    slack_messages: SlackMessages
    alerts: AlertLog

    def _setup(self) -> None:
        super()._setup()
        self.outbox = Outbox(self)
        self.impact = ImpactRows(self)
        self.slack_messages = SlackMessages(self)
        self.alerts = AlertLog(self)

    # Incidents

    def create_incident(
        self,
        id: str,
        title: str,
        scope: Sequence[str],
        window: float,
        opened_at: float,
        opened_by: str,
        orgs: Sequence[str] = (),
    ) -> IncidentRow:
        with self.transaction():
            if self.query("SELECT 1 FROM incidents WHERE id = ?", (id,)):
                raise IncidentExists(f"incident {id} already exists")
            self.execute(
                "INSERT INTO incidents (id, title, scope, window_s, opened_at, opened_by)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (id, title, json.dumps(list(scope)), window, opened_at, opened_by),
            )
            self._name_orgs(id, orgs)
        return IncidentRow(
            id, title, tuple(scope), window, opened_at, None, None, (), opened_by, None, tuple(orgs)
        )

    def reopen_incident(self, id: str) -> IncidentRow:
        """A closed incident open again (its opening, mitigations and timeline stay as they were)."""
        with self.transaction():
            row = self.require(id)
            if row.closed_at is None:
                raise IncidentNotClosed(f"incident {id} is open; only a closed incident can be reopened")
            self.execute(
                "UPDATE incidents SET closed_at = NULL, close_reason = NULL, closed_by = NULL WHERE id = ?",
                (id,),
            )
        return self.require(id)

    def change_incident(
        self, id: str, scope: Sequence[str], window: float, orgs: Sequence[str]
    ) -> IncidentRow:
        """An open incident's new scope, window and named orgs."""
        with self.transaction():
            self.require_open(id)
            self.execute(
                "UPDATE incidents SET scope = ?, window_s = ? WHERE id = ?",
                (json.dumps(list(scope)), window, id),
            )
            self._name_orgs(id, orgs)
        return self.require(id)

    def _name_orgs(self, id: str, orgs: Sequence[str]) -> None:
        self.execute(
            "INSERT OR REPLACE INTO incident_orgs (incident, orgs) VALUES (?, ?)",
            (id, json.dumps(list(orgs))),
        )

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
            self.execute(
                "INSERT INTO mitigations (incident, at, action, actor) VALUES (?, ?, ?, ?)",
                (id, at, action, by),
            )
        return MitigationRow(at, action, by)

    def close_incident(self, id: str, at: float, reason: str | None, by: str) -> None:
        with self.transaction():
            self.require_open(id)
            self.execute(
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
        rows = self.query(
            "SELECT i.id, i.title, i.scope, i.window_s, i.opened_at, i.closed_at,"
            " i.close_reason, i.opened_by, i.closed_by, o.orgs, m.at, m.action, m.actor"
            " FROM incidents i LEFT JOIN incident_orgs o ON o.incident = i.id"
            f" LEFT JOIN mitigations m ON m.incident = i.id {where}"
            " ORDER BY i.opened_at, i.id, m.at, m.seq",
            args,
        )
        found: dict[str, tuple[tuple[Any, ...], list[MitigationRow]]] = {}
        for row in rows:
            mitigations = found.setdefault(row[0], (row[:10], []))[1]
            if row[10] is not None:
                mitigations.append(MitigationRow(row[10], row[11], row[12]))
        return [_incident_row(h, m) for h, m in found.values()]

    def prune_closed(self, before: float) -> int:
        """Forget incidents closed before `before`, with everything kept about them; how many."""
        closed = "SELECT id FROM incidents WHERE closed_at IS NOT NULL AND closed_at < ?"
        with self.transaction():
            tables = ("timeline", "mitigations", "slack_messages", "alerts", "held_announcements")
            for table in (*tables, "incident_orgs", "impact", "impact_orgs"):
                self.execute(f"DELETE FROM {table} WHERE incident IN ({closed})", (before,))
            return self.execute(
                "DELETE FROM incidents WHERE closed_at IS NOT NULL AND closed_at < ?", (before,)
            ).rowcount

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
                    dumps(details.to_json(t.detail), f"the detail of {t.incident} {t.kind}"),
                    now,
                )
                for t in transitions
            ]
        )

    def add_note(self, incident: str, at: float, kind: Kind, detail: Detail) -> None:
        """A timeline entry that is not a state change (a snapshot taken, a source down)."""
        detail_json = dumps(details.to_json(detail), f"the detail of {incident} {kind}")
        self._insert_timeline([(incident, at, str(kind), None, detail_json, self._clock())])

    def _insert_timeline(self, rows: Sequence[_TimelineInsert]) -> None:
        with self.transaction():
            try:
                self.executemany(
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

    def timeline(self, incident_id: str, *, skip: Collection[Kind] = ()) -> list[TimelineRow]:
        """Event-time order; ties (a backfilled event stamped alike) in the order written. `skip`:
        kinds left out (an error storm writes a streak reset per error)."""
        unwanted = ", ".join("?" * len(skip))
        rows = self.query(
            "SELECT incident, at, kind, state, detail, recorded_at, seq FROM timeline"
            f" WHERE incident = ? AND kind NOT IN ({unwanted}) ORDER BY at, seq",
            (incident_id, *(str(k) for k in skip)),
        )
        return [
            TimelineRow(r[0], r[1], Kind(r[2]), r[3], details.from_json(Kind(r[2]), loads(r[4])), r[5], r[6])
            for r in rows
        ]

    # Resume points and engine state

    def save_resume(self, source: str, cursor: str | None, watermark: float | None) -> None:
        """Replace the source's resume point: both fields, None included."""
        with self.transaction():
            self.execute(
                "INSERT INTO resume_points (source, cursor, watermark, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET"
                " cursor = excluded.cursor, watermark = excluded.watermark,"
                " updated_at = excluded.updated_at",
                (source, cursor, watermark, self._clock()),
            )

    def resume_points(self) -> dict[str, ResumePoint]:
        rows = self.query("SELECT source, cursor, watermark, updated_at FROM resume_points")
        return {r[0]: ResumePoint(*r) for r in rows}

    def save_engine_state(self, state: Mapping[str, object]) -> None:
        text = dumps(state, "the engine state")
        with self.transaction():
            self.execute(
                "INSERT OR REPLACE INTO engine_state (id, state, saved_at) VALUES (1, ?, ?)",
                (text, self._clock()),
            )

    def engine_state(self) -> dict[str, object] | None:
        rows = self.query("SELECT state FROM engine_state WHERE id = 1")
        return loads(rows[0][0]) if rows else None


def _incident_row(h: Sequence[Any], mitigations: Sequence[MitigationRow]) -> IncidentRow:
    """An incident from the head of its joined rows (id ... orgs) and its mitigations."""
    scope, orgs = tuple(json.loads(h[2])), tuple(json.loads(h[9] or "[]"))
    return IncidentRow(h[0], h[1], scope, h[3], h[4], h[5], h[6], tuple(mitigations), h[7], h[8], orgs)
