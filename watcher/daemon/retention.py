"""What the daemon forgets, and when: snapshots, delivered announcements and closed incidents.

`[retention]` says how long each is kept (0 keeps it forever); the daemon prunes at
start-up and then every PRUNE_EVERY seconds, and logs what it removed. Evidence
archives go by their age on disk; outbox rows by when they were delivered (dead-lettered
ones stay: they are the record of what never arrived); incidents by when they were
closed, with their mitigations and timeline. A closed incident's metric series are the
pipeline's to retire, `closed_metrics` after the close (watcher.daemon.pipeline).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from watcher.config import RetentionConfig
from watcher.snapshot.collect import snapshots_dir
from watcher.store import Store

PRUNE_EVERY = 3600.0
log = logging.getLogger(__name__)


def prune(cfg: RetentionConfig, store: Store, state_dir: Path, now: float) -> list[str]:
    """Remove what is past its retention; one sentence per kind that lost something."""
    done = []
    if cfg.snapshots and (n := _old_archives(snapshots_dir(state_dir), now - cfg.snapshots)):
        done.append(f"{n} snapshot(s) older than the retention")
    if cfg.sent_announcements and (n := store.outbox.prune_sent(now - cfg.sent_announcements)):
        done.append(f"{n} delivered announcement(s)")
    if cfg.closed_incidents and (n := store.prune_closed(now - cfg.closed_incidents)):
        done.append(f"{n} closed incident(s) with their timelines")
    for what in done:
        log.info("retention: removed %s", what)
    return done


def _old_archives(directory: Path, before: float) -> int:
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if not entry.name.endswith(".tar.gz") or entry.name.startswith("."):
            continue  # a `.part` being written, or not ours
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISREG(st.st_mode) and st.st_mtime < before:
            Path(entry.path).unlink(missing_ok=True)
            removed += 1
    return removed
