"""What the daemon says about its sources: the start-up report and /readyz.

A first run must explain itself: which sources are watched, what each reads, and
which are down and why (a missing file's path, the Docker socket, the gateway).
`/healthz` says the process is alive; `/readyz` says whether every source is up,
and when not, which are down and why, one line each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from watcher.daemon.source_state import STARTING, SourceState
from watcher.sources import Source


def first_states_known(readers: Sequence[Source], sources: Mapping[str, SourceState]) -> bool:
    """Whether every configured source has said it is up or why it is down."""
    return all(sources[src.name].reason != STARTING for src in readers if src.name in sources)


def report(readers: Sequence[Source], sources: Mapping[str, SourceState]) -> list[str]:
    """One line per source known so far: what it reads (configured ones) and its state; a summary."""
    described = {src.name: src.describe() for src in readers}
    lines = []
    for name, st in sources.items():
        what = described.get(name, f"in {st.source.name}")
        lines.append(f"source {name}: {what}: {_state(st)}")
    up = sum(1 for st in sources.values() if st.up)
    if up == len(sources):
        lines.append(f"all {up} sources up")
    else:
        lines.append(f"{up} of {len(sources)} sources up; /readyz answers 503 until every source is up")
    return lines


def readiness(started: bool, sources: Mapping[str, SourceState]) -> tuple[bool, str]:
    """/readyz: ready when every source is up; otherwise one line per source that is not."""
    if not started:
        return False, STARTING
    down = [f"{name}: {_state(st)}" for name, st in sources.items() if not st.up]
    if down:
        return False, "\n".join(down)
    return True, f"ready: {len(sources)} sources up"


def _state(st: SourceState) -> str:
    if st.up:
        return "up"
    if st.reason == STARTING:
        return "no answer yet"
    return f"DOWN: {st.reason}"
