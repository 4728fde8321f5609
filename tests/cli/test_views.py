"""What `watcher status` and `watcher timeline` say about evidence (DESIGN §2.1)."""

from __future__ import annotations

from rich.console import Console

from watcher import details
from watcher.cli.status_view import status_view
from watcher.cli.timeline import timeline_markdown
from watcher.details import (
    BreakDetail,
    CannotResolveDetail,
    ClockSkewDetail,
    Detail,
    NotRunningDetail,
    ResolvedDetail,
)
from watcher.events import Kind
from watcher.schema import EventDoc, IncidentDoc, SourceDoc, StatusDoc, TimelineDoc

WHY = "cloud/api: no running container (exited) since 2026-11-27T14:03:12.000Z"


def rendered(doc: StatusDoc) -> str:
    console = Console(record=True, width=200)
    console.print(status_view(doc))
    return console.export_text()


def incident() -> IncidentDoc:
    return {
        "id": "P1-x",
        "title": "api down",
        "state": "verifying",
        "scope": ["cloud/*"],
        "window": 900.0,
        "opened_at": "2026-11-27T14:00:00.000Z",
        "mitigated_at": "2026-11-27T14:01:00.000Z",
        "streak_start": "2026-11-27T14:01:00.000Z",
        "verified_to": "2026-11-27T14:03:12.000Z",
        "clean_streak": 132.0,
        "progress": 0.1467,
        "resolved_at": None,
        "errors": 0,
        "gaps": 0,
        "lines": 10,
        "last_error": None,
        "blind_sources": [],
        "sources": ["cloud/api"],
        "cannot_resolve": [WHY],
        "evidence": [
            {
                "source": "cloud/api",
                "lines": 10,
                "running": False,
                "proven_from": "2026-11-27T14:01:00.000Z",
                "proven_to": "2026-11-27T14:03:12.000Z",
                "last_record": "2026-11-27T14:03:11.000Z",
                "text": "cloud/api: 10 lines checked, NOT running, proven ...",
            }
        ],
    }


def source() -> SourceDoc:
    return {
        "name": "cloud/api",
        "up": True,
        "reason": None,
        "watermark": "2026-11-27T14:05:00.000Z",
        "lag": 0.2,
        "lines": 10,
        "errors": 0,
        "running": False,
        "not_running": "no running container (exited) since 2026-11-27T14:03:12.000Z",
        "clock_skew": 3600.2,
    }


def test_status_says_why_it_cannot_resolve_and_names_the_evidence() -> None:
    """The incident's reasons and per-source evidence; each source running or not, and its skew."""
    doc: StatusDoc = {
        "now": 0.0,
        "incidents": [incident()],
        "sources": [source()],
        "outbox": {"pending": 0, "dead": 0, "channels": {}},
    }
    text = rendered(doc)
    assert f"cannot resolve: {WHY}" in text
    assert "evidence: cloud/api: 10 lines checked, NOT running" in text
    assert "no: no running container (exited)" in text and "+3600.2s" in text


def test_a_status_from_a_daemon_before_evidence_still_renders() -> None:
    """Documents without the evidence keys (an older daemon) render as before."""
    inc, src = dict(incident()), dict(source())
    for key in ("cannot_resolve", "evidence"):
        inc.pop(key)
    for key in ("running", "not_running", "clock_skew"):
        src.pop(key)
    doc = {
        "now": 0.0,
        "incidents": [inc],
        "sources": [src],
        "outbox": {"pending": 0, "dead": 0, "channels": {}},
    }
    assert "cannot resolve" not in rendered(doc)  # type: ignore[arg-type]


def event(kind: Kind, detail: Detail) -> EventDoc:
    return {
        "at": "2026-11-27T14:03:12.000Z",
        "kind": str(kind),
        "state": "verifying",
        "detail": details.to_json(detail),
        "recorded_at": None,
    }


def test_the_timeline_names_evidence_and_reasons() -> None:
    """RESOLVED names the evidence per source; a stop, a reason, a skew, a distrusted stamp read plainly."""
    doc: TimelineDoc = {
        "id": "P1-x",
        "title": "api down",
        "scope": ["cloud/*"],
        "window": 900.0,
        "opened_at": None,
        "closed_at": None,
        "mitigations": [],
        "events": [
            event(
                Kind.NOT_RUNNING, NotRunningDetail("cloud/api", "no running container (exited)", 1795788192.0)
            ),
            event(Kind.CANNOT_RESOLVE, CannotResolveDetail((WHY,))),
            event(Kind.CLOCK_SKEW, ClockSkewDetail("edge", 3600.0, 60.0)),
            event(Kind.STREAK_RESET, BreakDetail("edge", "level", "boom", 1.0, 1795791792.0)),
            event(
                Kind.RESOLVED,
                ResolvedDetail(1.0, 900.0, ("cloud/api",), 10, ("cloud/api: 10 lines checked",)),
            ),
        ],
    }
    text = timeline_markdown(doc)
    assert "cloud/api: no running container (exited) since 2026-11-27T14:03:12.000Z" in text
    assert f"Cannot resolve: {WHY}" in text
    assert "Clock skew in edge: live lines stamped +3600.0s" in text
    assert "counted at its arrival" in text
    assert "RESOLVED: no errors for 15m in cloud/api" in text
    assert "lines checked; cloud/api: 10 lines checked" in text
