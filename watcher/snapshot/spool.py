"""Snapshots taken while no daemon answered, queued for it to record.

`watcher snapshot` writes and verifies its archive without the daemon; the daemon
records it on the incident's timeline and counts it in `watcher_snapshots_total`.
When the daemon cannot be reached, the CLI leaves the same document it would have
posted (watcher.daemon.requests.SnapshotTaken) as one JSON file in
`<state_dir>/spool/`, written under a temporary name and renamed into place so a
reader never sees half of one; the daemon records each file at its next tick and
deletes it (one it cannot read is renamed `*.rejected` and logged).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

SPOOL = "spool"
REJECTED = ".rejected"


def spool_dir(state_dir: Path) -> Path:
    return state_dir / SPOOL


def queue(state_dir: Path, doc: Mapping[str, object]) -> Path:
    """Queue `doc` for the daemon; OSError when the state_dir cannot be written from here."""
    directory = spool_dir(state_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"snapshot-{time.time_ns()}-{os.getpid()}.json"
    tmp = directory / f".{name}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(dict(doc), fh)
        fh.flush()
        os.fsync(fh.fileno())
    path = directory / name
    tmp.rename(path)
    return path


def queued(state_dir: Path) -> list[Path]:
    """The queued documents, oldest first (their names start with the time they were queued)."""
    try:
        names = [e.name for e in os.scandir(spool_dir(state_dir)) if e.is_file()]
    except FileNotFoundError:
        return []
    return [spool_dir(state_dir) / n for n in sorted(names) if n.endswith(".json") and not n.startswith(".")]


def reject(path: Path) -> None:
    """Set a document aside that cannot be recorded, so it is not read again."""
    path.rename(path.with_name(path.name + REJECTED))
