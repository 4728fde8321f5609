"""The docker kind: one `[[sources]] kind = "docker"` entry is one DockerSource per engine,
whose containers read into sub-sources (`cloud/<service>`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from docker.errors import DockerException

from watcher.config import DockerSourceConfig
from watcher.errors import SourceError
from watcher.names import in_scope, subsource
from watcher.snapshot.collect import Collection, Job
from watcher.sources import BuildContext, Findings, Source, ssh
from watcher.sources.docker.host import describe, open_client
from watcher.sources.docker.names import list_filters, selected_containers
from watcher.sources.docker.snapshot import container_job
from watcher.sources.docker.source import DockerSource
from watcher.sources.docker.transport import served

SNAPSHOT_TIMEOUT = 60
"""Seconds a snapshot's Docker requests may take (a big log is read in one request)."""


class DockerKind:
    def __init__(self, cfg: DockerSourceConfig) -> None:
        self.cfg = cfg

    def names(self) -> list[str]:
        return [self.cfg.name]

    def build(self, ctx: BuildContext) -> list[Source]:
        cfg = self.cfg
        return [
            DockerSource(
                cfg,
                max_line_bytes=ctx.max_line_bytes,
                clock=ctx.clock,
                retry=cfg.reconnect_min,
                max_retry=cfg.reconnect_max,
            )
        ]

    async def check(self, key: str) -> Findings:
        """The engine answers, and (a warning) whether any container matches yet."""
        return await asyncio.to_thread(self._check, key)

    def _check(self, key: str) -> Findings:
        cfg, found = self.cfg, Findings()
        found.problems += ssh.trust_problems(cfg, key) if cfg.ssh_login() else []
        if found.problems:
            return found
        if cfg.docker_host.startswith("unix://"):
            sock = Path(cfg.docker_host.removeprefix("unix://"))
            if not sock.exists():
                found.problems.append(f"{key}.docker_host: {sock} does not exist (is dockerd running?)")
                return found
            if not os.access(sock, os.R_OK | os.W_OK):
                found.problems.append(f"{key}.docker_host: {sock} is not accessible (docker group?)")
                return found
        try:
            with served(cfg) as url, contextlib.closing(open_client(url, timeout=15)) as client:
                client.ping()
                listed = client.api.containers(all=True, filters=list_filters(cfg))
        except SourceError as exc:
            found.problems.append(f"{key}.docker_host: {exc}")
            return found
        except (DockerException, OSError) as exc:
            found.problems.append(
                f"{key}.docker_host: cannot reach the Docker engine at {cfg.docker_host}: {describe(exc)}"
            )
            return found
        if not selected_containers(cfg, listed):
            found.warnings.append(
                f"{key}: no container matches the selection yet; sub-sources appear when one does"
            )
        return found

    def snapshot_jobs(
        self, scope: Sequence[str], since: float | None, until: float | None, stack: contextlib.ExitStack
    ) -> list[Job]:
        """A job per selected container in scope; an engine that cannot be listed still yields one
        job, recording why nothing was collected, so the manifest says what is missing."""
        cfg = self.cfg
        try:
            url = stack.enter_context(served(cfg))
        except SourceError as exc:
            return self._unreachable(scope, f"cannot reach the Docker engine {cfg.docker_host}: {exc}")
        try:
            client = open_client(url, timeout=SNAPSHOT_TIMEOUT)
        except DockerException as exc:
            return self._unreachable(
                scope, f"cannot reach the Docker engine {cfg.docker_host}: {describe(exc)}"
            )
        stack.callback(client.close)
        try:
            listed = client.api.containers(all=True, filters=list_filters(cfg))
        except (DockerException, OSError) as exc:
            return self._unreachable(scope, f"cannot list containers on {cfg.docker_host}: {describe(exc)}")
        return [
            container_job(client, source, cid, since, until)
            for source, cid in selected_containers(cfg, listed)
            if in_scope(source, scope)
        ]

    def _unreachable(self, scope: Sequence[str], reason: str) -> list[Job]:
        name = self.cfg.name
        if not (in_scope(name, scope) or in_scope(subsource(name, "x"), scope)):
            return []

        def lack(col: Collection) -> None:
            col.lack("containers", reason)

        return [Job(subsource(name, "*"), "docker", lack)]
