"""One incident proven across several watchers: the sites' status merged with the resolution rule.

Past one machine, one watcher runs per site with disjoint sources and the same
incident ids (DESIGN §8). The resolution rule merges exactly across them:

    streak_start = max over sites     verified_to = min over sites
    clean_streak = max(0, verified_to - streak_start)

An incident is `blind` for the fleet when any site is blind on it, cannot be
reached, or does not track it: never a partial answer. It is `resolved` when the
merged streak covers the window and every site resolved it itself (each site also
proves its evidence, DESIGN §2.1, which two timestamps do not carry); it resolved at
the latest streak start plus the window. `monitoring/rules/watcher-fleet.rules.yml`
computes the same verdict in Prometheus.

Pure: documents in (watcher.schema), a document out. Source, channel and evidence
names are prefixed with their site (`eu1:gw/gw-berlin-01`), so the status views
render the merged document as they render one daemon's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

from watcher.schema import ChannelDoc, ErrorDoc, EvidenceDoc, IncidentDoc, OutboxDoc, SourceDoc, StatusDoc
from watcher.times import format_time, parse_time

SEP = ":"
"""Between a site and a name of its own: `eu1:gw/gw-berlin-01`."""


class SiteDoc(TypedDict):
    name: str
    reachable: bool
    error: str | None
    """Why it gave no status (None when it did)."""


class FleetStatusDoc(StatusDoc):
    """`watcher status --all-sites --json`: the merged status and what each site answered."""

    sites: list[SiteDoc]


@dataclass(frozen=True, slots=True)
class SiteStatus:
    """What one site answered: its status, or why there is none."""

    name: str
    status: StatusDoc | None
    error: str | None = None
    reachable: bool = True
    """False when nothing answered there; a site that answered with a refusal (a wrong token)
    is reachable and has no status either."""


def merge(sites: Sequence[SiteStatus], now: float) -> FleetStatusDoc:
    """The fleet's status at `now` from each site's."""
    ids: dict[str, None] = {}
    for site in sites:
        for inc in site.status["incidents"] if site.status else ():
            ids.setdefault(inc["id"])
    return {
        "now": now,
        "incidents": [_incident(i, sites) for i in ids],
        "sources": [_source(s.name, d) for s in sites if s.status for d in s.status["sources"]],
        "outbox": _outbox(sites),
        "sites": [
            {
                "name": s.name,
                "reachable": s.reachable,
                "error": s.error if s.status is None else None,
            }
            for s in sites
        ],
    }


def _incident(incident: str, sites: Sequence[SiteStatus]) -> IncidentDoc:
    parts: list[tuple[str, IncidentDoc]] = []
    missing: list[str] = []
    for site in sites:
        doc = _find(site, incident)
        if doc is None:
            why = (
                "does not track this incident"
                if site.status
                else f"{'refused' if site.reachable else 'cannot be reached'}: {site.error}"
            )
            missing.append(f"site {site.name} {why}")
        else:
            parts.append((site.name, doc))
    window = max(d["window"] for _, d in parts)
    start = verified = None
    if not missing:  # never a partial answer: a streak without some site's part is not proven
        start = _latest([d["streak_start"] for _, d in parts])
        verified = _earliest([d["verified_to"] for _, d in parts])
    streak = max(0.0, verified - start) if start is not None and verified is not None else 0.0
    state = _state([d["state"] for _, d in parts], bool(missing), streak >= window)
    closed = [
        f"site {s} closed it: its streak there no longer moves" for s, d in parts if d["state"] == "closed"
    ]
    return {
        "id": incident,
        "title": parts[0][1]["title"],
        "state": state,
        "scope": sorted({g for _, d in parts for g in d["scope"]}),
        "window": window,
        "opened_at": format_time(_earliest([d["opened_at"] for _, d in parts])),
        "mitigated_at": format_time(_latest([d["mitigated_at"] for _, d in parts])),
        "streak_start": format_time(start),
        "verified_to": format_time(verified),
        "clean_streak": streak,
        "progress": round(min(1.0, streak / window), 4) if window else 0.0,
        "resolved_at": format_time(start + window) if state == "resolved" and start is not None else None,
        "errors": sum(d["errors"] for _, d in parts),
        "gaps": sum(d["gaps"] for _, d in parts),
        "lines": sum(d["lines"] for _, d in parts),
        "last_error": _last_error(parts),
        "blind_sources": [_name(s, b) for s, d in parts for b in d["blind_sources"]],
        "sources": [_name(s, n) for s, d in parts for n in d["sources"]],
        "cannot_resolve": (
            missing
            + (closed if state != "closed" else [])
            + [_name(s, r) for s, d in parts for r in d.get("cannot_resolve", [])]
        ),
        "evidence": [_evidence(s, e) for s, d in parts for e in d.get("evidence", [])],
    }


def _state(states: Sequence[str], missing: bool, covered: bool) -> str:
    """The fleet's state from the sites' (see the module docstring)."""
    if not missing and all(s == "closed" for s in states):
        return "closed"
    if missing or "blind" in states:
        return "blind"
    if "investigating" in states:
        return "investigating"
    if covered and all(s == "resolved" for s in states):
        return "resolved"
    return "regressed" if "regressed" in states else "verifying"


def _find(site: SiteStatus, incident: str) -> IncidentDoc | None:
    if site.status is None:
        return None
    return next((i for i in site.status["incidents"] if i["id"] == incident), None)


def _latest(times: Sequence[str | None]) -> float | None:
    """The latest of RFC 3339 times as epoch seconds; None when any is unknown."""
    known = [parse_time(t) for t in times if t is not None]
    return max(known) if known and len(known) == len(times) else None


def _earliest(times: Sequence[str | None]) -> float | None:
    known = [parse_time(t) for t in times if t is not None]
    return min(known) if known and len(known) == len(times) else None


def _last_error(parts: Sequence[tuple[str, IncidentDoc]]) -> ErrorDoc | None:
    errors = [(s, d["last_error"]) for s, d in parts if d["last_error"] is not None]
    if not errors:
        return None
    site, last = max(errors, key=lambda e: parse_time(e[1]["time"]) if e[1]["time"] else float("-inf"))
    return {**last, "source": _name(site, last["source"])}


def _source(site: str, doc: SourceDoc) -> SourceDoc:
    return {**doc, "name": _name(site, doc["name"])}


def _evidence(site: str, doc: EvidenceDoc) -> EvidenceDoc:
    return {**doc, "source": _name(site, doc["source"]), "text": _name(site, doc["text"])}


def _outbox(sites: Sequence[SiteStatus]) -> OutboxDoc:
    channels: dict[str, ChannelDoc] = {}
    pending = dead = 0
    for site in sites:
        if site.status is None:
            continue
        box = site.status["outbox"]
        pending += box["pending"]
        dead += box["dead"]
        channels.update({_name(site.name, n): c for n, c in box["channels"].items()})
    return {"pending": pending, "dead": dead, "channels": channels}


def _name(site: str, name: str) -> str:
    return f"{site}{SEP}{name}"
