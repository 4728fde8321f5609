"""Which sources a `watcher snapshot` collects: configured sources whose names match the scope.

Scope globs match source names as everywhere else: a docker source's containers
are `cloud/<compose service>` (or `cloud/<container name>`), a journal source's
hosts `gw/<host>`, a file source its own name. Each source kind plans its own
collection jobs (watcher.sources.SourceKind.snapshot_jobs).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from watcher.config import Settings
from watcher.errors import SnapshotError
from watcher.snapshot.collect import Job
from watcher.sources.registry import kinds, source_names


@contextlib.contextmanager
def planned(
    settings: Settings, scope: Sequence[str], since: float | None, until: float | None
) -> Iterator[list[Job]]:
    """The jobs for every source in scope; clients they hold stay open until the block ends."""
    scope = list(scope) or ["*"]
    with contextlib.ExitStack() as stack:
        jobs = [job for kind in kinds(settings) for job in kind.snapshot_jobs(scope, since, until, stack)]
        if not jobs:
            known = ", ".join(source_names(settings)) or "none configured"
            raise SnapshotError(
                f"no source matches the scope {' '.join(scope)} (sources: {known}; "
                "docker sources are <name>/<service>, journal sources <name>/<host>)"
            )
        yield jobs
