"""The fleet's status: sites' documents merged with the resolution rule (watcher.fleet)."""

from __future__ import annotations

from typing import Any

from watcher.fleet import SiteStatus, merge
from watcher.schema import IncidentDoc, StatusDoc
from watcher.times import format_time

T0 = 1_795_000_000.0
WINDOW = 600.0


def inc(
    state: str = "verifying",
    *,
    start: float | None = 0.0,
    verified: float | None = 300.0,
    incident: str = "P1-x",
    **extra: Any,
) -> IncidentDoc:
    """One site's document of an incident; times in seconds after T0."""
    doc: IncidentDoc = {
        "id": incident,
        "title": "gateways drop streams",
        "state": state,
        "scope": ["*"],
        "window": WINDOW,
        "opened_at": format_time(T0 - 60),
        "mitigated_at": None if start is None else format_time(T0),
        "streak_start": None if start is None else format_time(T0 + start),
        "verified_to": None if verified is None else format_time(T0 + verified),
        "clean_streak": 0.0,
        "progress": 0.0,
        "resolved_at": None,
        "errors": 1,
        "gaps": 0,
        "lines": 100,
        "last_error": None,
        "blind_sources": [],
        "sources": ["edge"],
        "cannot_resolve": [],
        "evidence": [],
    }
    doc.update(extra)  # type: ignore[typeddict-item]
    return doc


def site(name: str, *incidents: IncidentDoc) -> SiteStatus:
    status: StatusDoc = {
        "now": T0,
        "incidents": list(incidents),
        "sources": [
            {
                "name": "edge",
                "up": True,
                "reason": None,
                "watermark": None,
                "lag": 0.5,
                "lines": 100,
                "errors": 1,
            }
        ],
        "outbox": {
            "pending": 2,
            "dead": 1,
            "channels": {"incident": {"pending": 2, "dead": 1, "oldest_pending": None, "last_error": None}},
        },
    }
    return SiteStatus(name, status)


def down(name: str) -> SiteStatus:
    return SiteStatus(name, None, "no watcher daemon answers on 127.0.0.1:9", reachable=False)


def only(doc: Any) -> IncidentDoc:
    (incident,) = doc["incidents"]
    return incident  # type: ignore[no-any-return]


class TestMergeRule:
    def test_streak_start_by_max_verified_to_by_min(self) -> None:
        """The fleet streak starts at the latest site's start and is verified to the earliest
        site's verified_to: 400 - 120 = 280 s clean."""
        doc = merge([site("a", inc(start=0, verified=500)), site("b", inc(start=120, verified=400))], T0)
        merged = only(doc)
        assert merged["streak_start"] == format_time(T0 + 120)
        assert merged["verified_to"] == format_time(T0 + 400)
        assert merged["clean_streak"] == 280
        assert merged["progress"] == round(280 / WINDOW, 4)
        assert merged["state"] == "verifying" and merged["resolved_at"] is None

    def test_resolves_at_the_latest_start_plus_the_window(self) -> None:
        """Both sites resolved and the merged streak covers the window: resolved at max(start) + window."""
        doc = merge(
            [
                site("a", inc("resolved", start=0, verified=900)),
                site("b", inc("resolved", start=200, verified=850)),
            ],
            T0,
        )
        merged = only(doc)
        assert merged["state"] == "resolved"
        assert merged["resolved_at"] == format_time(T0 + 200 + WINDOW)
        assert merged["progress"] == 1.0

    def test_errors_at_one_site_hold_the_fleet_back(self) -> None:
        """Site a is resolved; site b's recent error moved its streak start: the fleet verifies."""
        doc = merge(
            [
                site("a", inc("resolved", start=0, verified=900)),
                site("b", inc("regressed", start=800, verified=900)),
            ],
            T0,
        )
        merged = only(doc)
        assert merged["state"] == "regressed"
        assert merged["clean_streak"] == 100

    def test_a_site_short_of_evidence_keeps_it_unresolved(self) -> None:
        """The streaks cover the window, but site b has not resolved it (nothing read in the
        window): the fleet does not resolve, and says why."""
        reason = "edge: no record in the last 10m"
        doc = merge(
            [
                site("a", inc("resolved", start=0, verified=900)),
                site("b", inc("verifying", start=0, verified=900, cannot_resolve=[reason])),
            ],
            T0,
        )
        merged = only(doc)
        assert merged["state"] == "verifying"
        assert merged["cannot_resolve"] == [f"b:{reason}"]

    def test_investigating_until_every_site_is_mitigated(self) -> None:
        """A site without a mitigation has no streak start: no fleet streak, investigating."""
        doc = merge([site("a", inc(start=0)), site("b", inc("investigating", start=None))], T0)
        merged = only(doc)
        assert merged["state"] == "investigating"
        assert merged["streak_start"] is None and merged["clean_streak"] == 0


class TestBlind:
    def test_an_unreachable_site_makes_it_blind(self) -> None:
        """Never a partial answer: no streak from the sites that did answer, and the reason."""
        doc = merge([site("a", inc("resolved", start=0, verified=900)), down("b")], T0)
        merged = only(doc)
        assert merged["state"] == "blind"
        assert merged["verified_to"] is None and merged["clean_streak"] == 0
        assert merged["cannot_resolve"] == [
            "site b cannot be reached: no watcher daemon answers on 127.0.0.1:9"
        ]
        assert doc["sites"] == [
            {"name": "a", "reachable": True, "error": None},
            {"name": "b", "reachable": False, "error": "no watcher daemon answers on 127.0.0.1:9"},
        ]

    def test_a_site_that_does_not_track_it(self) -> None:
        """An incident opened at one site only is blind for the fleet: the other cannot vouch for it."""
        doc = merge([site("a", inc("resolved", start=0, verified=900)), site("b")], T0)
        merged = only(doc)
        assert merged["state"] == "blind"
        assert merged["cannot_resolve"] == ["site b does not track this incident"]

    def test_blind_at_any_site(self) -> None:
        """One site blind on it: the fleet is blind, naming that site's source."""
        doc = merge(
            [
                site("a", inc("resolved", start=0, verified=900)),
                site("b", inc("blind", start=0, verified=100, blind_sources=["edge"])),
            ],
            T0,
        )
        merged = only(doc)
        assert merged["state"] == "blind"
        assert merged["blind_sources"] == ["b:edge"]


class TestClosedAndNames:
    def test_closed_only_when_closed_everywhere(self) -> None:
        """Closed at every site is closed; closed at one only is not resolved, and says so."""
        both = merge([site("a", inc("closed")), site("b", inc("closed"))], T0)
        assert only(both)["state"] == "closed"
        one = only(
            merge([site("a", inc("resolved", verified=900)), site("b", inc("closed", verified=900))], T0)
        )
        assert one["state"] == "verifying"
        assert one["cannot_resolve"] == ["site b closed it: its streak there no longer moves"]

    def test_names_carry_their_site_and_counts_add_up(self) -> None:
        """Sources, evidence and channels are prefixed with their site; counts and the outbox sum."""
        evidence = {
            "source": "edge",
            "lines": 100,
            "running": None,
            "proven_from": None,
            "proven_to": None,
            "last_record": None,
            "text": "edge: 100 lines checked",
        }
        doc = merge([site("a", inc(evidence=[evidence])), site("b", inc(evidence=[evidence]))], T0)
        merged = only(doc)
        assert merged["sources"] == ["a:edge", "b:edge"]
        assert [e["text"] for e in merged["evidence"]] == [
            "a:edge: 100 lines checked",
            "b:edge: 100 lines checked",
        ]
        assert merged["errors"] == 2 and merged["lines"] == 200
        assert [s["name"] for s in doc["sources"]] == ["a:edge", "b:edge"]
        assert doc["outbox"]["pending"] == 4 and doc["outbox"]["dead"] == 2
        assert set(doc["outbox"]["channels"]) == {"a:incident", "b:incident"}

    def test_the_latest_error_of_any_site(self) -> None:
        """last_error is the newest across sites, with its site in the source name."""
        old = {"time": format_time(T0 + 10), "source": "edge", "rule": "level", "message": "old"}
        new = {"time": format_time(T0 + 20), "source": "edge", "rule": "level", "message": "new"}
        doc = merge([site("a", inc(last_error=new)), site("b", inc(last_error=old))], T0)
        last = only(doc)["last_error"]
        assert last is not None and last["message"] == "new" and last["source"] == "a:edge"
