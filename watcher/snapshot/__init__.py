"""Evidence snapshots (DESIGN.md §7): one archive writer, several collectors.

`take` writes any set of collection jobs; `snapshot_containers` is the blocking
entry point the daemon's container-stop trigger calls (in a worker thread);
`plan` turns configured sources and scope globs into jobs for `watcher snapshot`;
`verify` re-checks every hash of a written snapshot.
"""

from watcher.snapshot.collect import Job, SnapshotResult, snapshots_dir, take
from watcher.snapshot.containers import snapshot_containers
from watcher.snapshot.manifest import Meta, Missing, Verification, verify

__all__ = [
    "Job",
    "Meta",
    "Missing",
    "SnapshotResult",
    "Verification",
    "snapshot_containers",
    "snapshots_dir",
    "take",
    "verify",
]
