"""`watcher check-config`: what a valid config still cannot do on this machine.

Each finding names the key it is about, like the config's own validation, so a user
sees one actionable line per problem. Warnings are things the daemon copes with (a
log file that does not exist yet) but the user should know. Every source kind
probes itself (watcher.sources.SourceKind.check); all of them run at once.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from watcher.config import Settings
from watcher.sources import Findings
from watcher.sources.registry import kinds


def run(settings: Settings) -> Findings:
    found = _check_state_dir(settings.state_dir)
    for each in asyncio.run(_probe(settings)):
        found += each
    return found


async def _probe(settings: Settings) -> list[Findings]:
    return await asyncio.gather(*(kind.check(f"sources[{i}]") for i, kind in enumerate(kinds(settings))))


def _check_state_dir(path: Path) -> Findings:
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or not os.access(existing, os.W_OK):
        return Findings(problems=[f"state_dir: {path} cannot be created or written by this user"])
    return Findings()
