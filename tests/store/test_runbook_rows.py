"""What the store keeps for the runbook: named orgs, impact row by row, reopen and change of an
incident, and the announcements about one incident."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from watcher.engine.impact import OrgSeen, SavedImpact, Totals
from watcher.errors import IncidentClosed, IncidentNotClosed
from watcher.store import Store
from watcher.store.schema import SCHEMA_VERSION


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "state", clock=lambda: 1_000.0) as s:
        s.create_incident("P1-a", "cams down", ["gw/*"], 900.0, 10.0, "ana", ["org-a", "org-b"])
        yield s


class TestRunbookRows:
    def test_named_orgs_round_trip(self, store: Store) -> None:
        """Orgs named on open come back with the incident, in order; none for an incident without."""
        store.create_incident("P1-b", "t", ["*"], 900.0, 11.0, "ana")
        a, b = store.incidents()
        assert (a.orgs, b.orgs) == (("org-a", "org-b"), ())

    def test_change_and_reopen(self, store: Store) -> None:
        """change_incident rewrites scope, window and orgs of an open incident; reopen clears the close."""
        store.change_incident("P1-a", ["gw/*", "cloud/*"], 1200.0, ["org-c"])
        row = store.require("P1-a")
        assert (row.scope, row.window, row.orgs) == (("gw/*", "cloud/*"), 1200.0, ("org-c",))
        with pytest.raises(IncidentNotClosed):
            store.reopen_incident("P1-a")
        store.close_incident("P1-a", 20.0, "done", "bob")
        with pytest.raises(IncidentClosed):
            store.change_incident("P1-a", ["*"], 900.0, [])
        row = store.reopen_incident("P1-a")
        assert (row.closed_at, row.close_reason, row.closed_by, row.opened_at) == (None, None, None, 10.0)

    def test_impact_saved_row_by_row(self, store: Store) -> None:
        """Totals replaced, orgs upserted: a later save of one org leaves the others as they were."""
        store.impact.save([("P1-a", SavedImpact(Totals(2, 10.0, 11.0), (("o1", OrgSeen(10.0, 10.0)),)))])
        store.impact.save(
            [("P1-a", SavedImpact(Totals(3, 10.0, 12.0, 1, 12.0), (("o2", OrgSeen(11.0, 12.0, 2)),)))]
        )
        saved = store.impact.load("P1-a")
        assert saved.totals == Totals(3, 10.0, 12.0, 1, 12.0)
        assert saved.orgs == (("o1", OrgSeen(10.0, 10.0, 1)), ("o2", OrgSeen(11.0, 12.0, 2)))
        assert store.impact.load("P1-none") == SavedImpact()

    def test_pruning_forgets_impact_and_orgs(self, store: Store) -> None:
        """An incident pruned after its retention takes its impact and named orgs with it."""
        store.impact.save([("P1-a", SavedImpact(Totals(1, 10.0, 10.0), (("o1", OrgSeen(10.0, 10.0)),)))])
        store.close_incident("P1-a", 20.0, "done", "bob")
        assert store.prune_closed(before=30.0) == 1
        assert store.impact.load("P1-a") == SavedImpact()
        names = store.query("SELECT count(*) FROM incident_orgs")
        assert names == [(0,)]

    def test_announcements_about_one_incident(self, store: Store) -> None:
        """Its own announcements and the heartbeats that name it, in order, with what became of them."""
        opened = store.outbox.enqueue("incident", "opened", {"incident": "P1-a"}, 10.0)
        store.outbox.enqueue("incident", "opened", {"incident": "P1-b"}, 10.5)
        beat = store.outbox.enqueue(
            "oncall", "heartbeat", {"at": 11.0, "incidents": [{"incident": "P1-a"}]}, 11.0
        )
        store.outbox.mark_sent(opened, 12.5)
        store.outbox.mark_dead(beat, 13.0, "HTTP 404: no")
        about = store.outbox.about("P1-a")
        assert [(d.kind, d.status, d.done_at, d.last_error) for d in about] == [
            ("opened", "sent", 12.5, None),
            ("heartbeat", "dead", 13.0, "HTTP 404: no"),
        ]

    def test_schema_version_counts_the_impact_migration(self) -> None:
        """The impact tables are a migration of their own, after every earlier one."""
        from watcher.store.schema import MIGRATIONS

        assert len(MIGRATIONS) == SCHEMA_VERSION
        assert "incident_orgs" in MIGRATIONS[-1][0]
