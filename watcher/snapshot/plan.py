"""Which sources a `watcher snapshot` collects: configured sources whose names match the scope.

Scope globs match source names as everywhere else (DESIGN.md §1): a docker
source's containers are `cloud/<compose service>` (or `cloud/<container name>`),
a journal source's hosts `gw/<host>`, a file source its own name. A Docker
engine that cannot be listed still yields a job, one that records why nothing
was collected from it, so the manifest says what is missing rather than the
scope silently shrinking.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from docker.errors import DockerException

from watcher.config import DockerSourceConfig, FileSourceConfig, JournalSourceConfig, Settings
from watcher.errors import SnapshotError
from watcher.names import in_scope
from watcher.snapshot.collect import Collection, Job
from watcher.sources.docker.host import describe, open_client
from watcher.sources.docker.names import list_filters
from watcher.sources.docker.snapshot import container_job, selected
from watcher.sources.file.snapshot import file_job
from watcher.sources.journal.snapshot import journal_jobs

DOCKER_TIMEOUT = 60


@contextlib.contextmanager
def planned(
    settings: Settings, scope: Sequence[str], since: float | None, until: float | None
) -> Iterator[list[Job]]:
    """The jobs for every source in scope; Docker clients stay open until the block ends."""
    scope = list(scope) or ["*"]
    jobs: list[Job] = []
    with contextlib.ExitStack() as stack:
        for cfg in settings.sources:
            if isinstance(cfg, FileSourceConfig):
                if in_scope(cfg.name, scope):
                    jobs.append(file_job(cfg, since))
            elif isinstance(cfg, JournalSourceConfig):
                names = {n for n in cfg.source_names() if in_scope(n, scope)}
                jobs += journal_jobs(cfg, names, since, until)
            elif isinstance(cfg, DockerSourceConfig):
                jobs += _docker_jobs(cfg, scope, since, until, stack)
        if not jobs:
            known = ", ".join(settings.source_names()) or "none configured"
            raise SnapshotError(
                f"no source matches the scope {' '.join(scope)} (sources: {known}; "
                "docker sources are <name>/<service>, journal sources <name>/<host>)"
            )
        yield jobs


def _docker_jobs(
    cfg: DockerSourceConfig,
    scope: Sequence[str],
    since: float | None,
    until: float | None,
    stack: contextlib.ExitStack,
) -> list[Job]:
    try:
        client = open_client(cfg.docker_host, timeout=DOCKER_TIMEOUT)
    except DockerException as exc:
        return _unreachable(cfg, scope, f"cannot reach the Docker engine {cfg.docker_host}: {describe(exc)}")
    stack.callback(client.close)
    try:
        listed = client.api.containers(all=True, filters=list_filters(cfg))
    except (DockerException, OSError) as exc:
        return _unreachable(cfg, scope, f"cannot list containers on {cfg.docker_host}: {describe(exc)}")
    return [
        container_job(client, source, cid, since, until)
        for source, cid in selected(cfg, listed)
        if in_scope(source, scope)
    ]


def _unreachable(cfg: DockerSourceConfig, scope: Sequence[str], reason: str) -> list[Job]:
    if not (in_scope(cfg.name, scope) or in_scope(f"{cfg.name}/x", scope)):
        return []

    def lack(col: Collection) -> None:
        col.lack("containers", reason)

    return [Job(f"{cfg.name}/*", "docker", lack)]
