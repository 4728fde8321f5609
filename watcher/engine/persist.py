"""The engine's per-source evidence in its saved state, and reading the state of version 1.

Version 1 saved watermarks only; version 2 adds each source's `Track` (liveness, last
record seen, activity) and an error's untrusted stamp in pending breaks. A version-1
state restores with no evidence yet: sources that report liveness start as not yet
known to run, as on a first start.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from watcher.engine.evidence import Activity, Down, Track
from watcher.engine.incident import Incident, TrackState

STATE_VERSION = 2
"""The shape of `Engine.snapshot()`; a snapshot of an unknown version is refused, never misread."""


def restore_incidents(snap: Mapping[str, object]) -> list[Incident]:
    """The open incidents of a saved state (this version or the one before); ValueError otherwise.

    Closed ones are history: the store keeps them and their timelines."""
    version = snap.get("version")
    if version not in (1, STATE_VERSION):
        raise ValueError(
            f"the saved engine state has version {version!r}; this watcher reads "
            f"versions 1 to {STATE_VERSION}"
        )
    listed = snap.get("incidents")
    incidents = [Incident.from_state(item) for item in (listed if isinstance(listed, list) else [])]
    return [inc for inc in incidents if inc.closed_at is None]


def save_tracks(tracks: Mapping[str, Track]) -> dict[str, TrackState]:
    return {
        name: {
            "down": None if t.down is None else [_finite(t.down.since), t.down.reason],
            "alive_since": t.alive_since,
            "last_seen": t.last_seen,
            "activity": t.activity.runs(),
        }
        for name, t in tracks.items()
    }


def restore_tracks(
    snap: Mapping[str, object], tracks: dict[str, Track], add_source: Callable[[str], None]
) -> None:
    """Fill `tracks` from a snapshot's watermarks and (version 2) tracks."""
    marks = snap.get("watermarks")
    saved = snap.get("tracks")
    saved = saved if isinstance(saved, Mapping) else {}
    for name, mark in marks.items() if isinstance(marks, Mapping) else ():
        add_source(str(name))
        track = tracks[str(name)]
        track.watermark = float(mark) if isinstance(mark, int | float) else None
        state = saved.get(name)
        if isinstance(state, Mapping):
            _restore(track, state)


def _restore(track: Track, state: Mapping[str, object]) -> None:
    down = state.get("down")
    if isinstance(down, list) and len(down) == 2:
        since = down[0]
        track.down = Down(float(since) if isinstance(since, int | float) else float("-inf"), str(down[1]))
    elif down is None:
        track.down = None
    track.alive_since = _num(state.get("alive_since"))
    track.last_seen = _num(state.get("last_seen"))
    runs = state.get("activity")
    pairs = (
        [(float(r[0]), float(r[1])) for r in runs if isinstance(r, list) and len(r) == 2]
        if isinstance(runs, list)
        else []
    )
    track.activity = Activity(pairs)


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _finite(value: float) -> float | None:
    """-inf (never known to run) is saved as null."""
    return None if value == float("-inf") else value
