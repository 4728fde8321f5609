"""The file kind: one `[[sources]] kind = "file"` entry is one FileSource."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

from watcher.config import FileSourceConfig
from watcher.names import in_scope
from watcher.snapshot.collect import Job
from watcher.sources import BuildContext, Findings, Source
from watcher.sources.file.snapshot import file_job
from watcher.sources.file.source import FileSource


class FileKind:
    def __init__(self, cfg: FileSourceConfig) -> None:
        self.cfg = cfg

    def names(self) -> list[str]:
        return [self.cfg.name]

    def build(self, ctx: BuildContext) -> list[Source]:
        return [FileSource(self.cfg, max_line_bytes=ctx.max_line_bytes, clock=ctx.clock)]

    async def check(self, key: str) -> Findings:
        path, found = self.cfg.path, Findings()
        if path.exists():
            if not os.access(path, os.R_OK):
                found.problems.append(f"{key}.path: {path} is not readable by this user")
        elif not path.parent.is_dir():
            found.problems.append(f"{key}.path: directory {path.parent} does not exist")
        else:
            found.warnings.append(
                f"{key}.path: {path} does not exist yet; the source stays down until it appears"
            )
        return found

    def snapshot_jobs(
        self, scope: Sequence[str], since: float | None, until: float | None, stack: contextlib.ExitStack
    ) -> list[Job]:
        return [file_job(self.cfg, since)] if in_scope(self.cfg.name, scope) else []
