"""`watcher check-config`: what a valid config still cannot do on this machine.

Each finding names the key it is about, like the config's own validation, so a user
sees one actionable line per problem. Warnings are things the daemon copes with (a
log file that does not exist yet) but the user should know. Every source kind
probes itself (watcher.sources.SourceKind.check); all of them run at once.

One run says everything it can: when the config has problems, the sources that are
valid on their own are still probed, so a typo in one key and an unreachable
gateway show up together.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from watcher.config import Settings, SourceConfig
from watcher.sources import Findings
from watcher.sources.registry import kind_of


def run(settings: Settings) -> Findings:
    found = _check_state_dir(settings.state_dir)
    found += probe(list(enumerate(settings.sources)))
    return found


def probe(sources: Sequence[tuple[int, SourceConfig]]) -> Findings:
    """Reach each source (its position in the config names it), all at once."""
    found = Findings()
    for each in asyncio.run(_probe(sources)):
        found += each
    return found


async def _probe(sources: Sequence[tuple[int, SourceConfig]]) -> list[Findings]:
    return await asyncio.gather(*(kind_of(cfg).check(f"sources[{i}]") for i, cfg in sources))


def _check_state_dir(path: Path) -> Findings:
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or not os.access(existing, os.W_OK):
        return Findings(problems=[f"state_dir: {path} cannot be created or written by this user"])
    return Findings()
