"""What the engine reports about an incident: its status, the evidence per source, and the
reasons it cannot resolve (pure; the engine passes its own state in)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from watcher.engine.evidence import Blocker, SourceEvidence, Track, blockers
from watcher.engine.incident import Incident, IncidentStatus


def status(
    inc: Incident, scope: Sequence[str], tracks: Mapping[str, Track], verified: float | None
) -> IncidentStatus:
    mitigated = inc.mitigated_at is not None
    if verified is not None and not math.isfinite(verified):
        verified = None  # a source not yet known to run: nothing is verified
    streak = verified - inc.streak_start if mitigated and verified is not None else 0.0
    return IncidentStatus(
        id=inc.id,
        title=inc.title,
        state=inc.state(),
        scope=inc.scope,
        window=inc.window,
        opened_at=inc.opened_at,
        mitigated_at=inc.mitigated_at,
        streak_start=inc.streak_start if mitigated else None,
        verified_to=verified,
        clean_streak=max(0.0, streak),
        resolved_at=inc.resolved_at,
        errors=inc.errors,
        gaps=inc.gaps,
        lines=inc.lines,
        last_error=inc.last_error,
        blind_sources=inc.blind,
        sources=tuple(scope),
        blockers=tuple(cannot_resolve(inc, scope, tracks)),
        evidence=tuple(evidence(inc, scope, tracks)),
        impact=inc.impact.summary(verified, inc.window),
    )


def cannot_resolve(inc: Incident, scope: Sequence[str], tracks: Mapping[str, Track]) -> list[Blocker]:
    """Why the incident cannot resolve now (nothing once it is resolved or closed)."""
    if inc.closed_at is not None or inc.resolved_at is not None:
        return []
    if not scope:
        return [Blocker(None, f"no source matches the scope {', '.join(inc.scope)}")]
    start = inc.streak_start if inc.mitigated_at is not None else None
    return [b for name in scope for b in blockers(name, tracks[name], start, inc.window)]


def evidence(
    inc: Incident, scope: Sequence[str], tracks: Mapping[str, Track], upto: float | None = None
) -> list[SourceEvidence]:
    """Per source in scope: lines checked, running or not, the span proven (up to `upto` if given)."""
    out = []
    start = inc.streak_start if inc.mitigated_at is not None else None
    for name in scope:
        track = tracks[name]
        proven = track.effective()
        if upto is not None and proven is not None:
            proven = min(proven, upto)
        if proven is not None and not math.isfinite(proven):
            proven = None
        out.append(
            SourceEvidence(
                source=name,
                lines=inc.lines_by_source.get(name, 0),
                running=(track.down is None) if track.expect.liveness else None,
                proven_from=start,
                proven_to=proven,
                last_record=track.activity.newest(upto if upto is not None else float("inf")),
            )
        )
    return out
