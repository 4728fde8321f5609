"""Taking a snapshot: run the collectors of every source in scope concurrently into one archive.

A `Job` collects one source (one container, one gateway's journal, one file
source) into a `Collection`: members it streams into spools, facts about the
source for the manifest, and what it could not collect and why. Jobs run in a
thread pool: the docker SDK blocks, file reads block, and a journal job runs its
own SSH event loop inside its thread. Whatever they collect goes through the one
`ArchiveWriter`, whoever triggered the snapshot (`watcher snapshot`, `--via-daemon`,
the daemon's container-stop trigger).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from watcher.details import SnapshotDetail
from watcher.errors import WatcherError
from watcher.events import Trigger
from watcher.schema import SnapshotDoc
from watcher.snapshot import manifest, names
from watcher.snapshot.archive import ArchiveWriter, Spool
from watcher.snapshot.manifest import Meta, Missing

log = logging.getLogger(__name__)

WORKERS = 8
"""Sources collected at once: enough to overlap network waits, few enough not to swamp a Docker engine."""


def snapshots_dir(state_dir: Path) -> Path:
    return state_dir / "snapshots"


class Progress(Protocol):
    """Told how many sources there are, then about collected bytes and finished sources (from threads)."""

    def start(self, sources: int) -> None: ...

    def advance(self, n: int) -> None: ...

    def source_done(self, source: str) -> None: ...


class Collection:
    """What one job hands the snapshot: members, facts about its source, and what is missing."""

    def __init__(
        self,
        writer: ArchiveWriter,
        source: str,
        kind: str,
        *,
        transform: Callable[[bytes], bytes] | None,
        progress: Progress | None,
    ) -> None:
        self._writer = writer
        self.source = source
        self.facts: dict[str, object] = {"name": source, "kind": kind}
        self.missing: list[Missing] = []
        self._transform = transform
        self._progress = progress

    @contextmanager
    def member(self, filename: str, *, transform: bool = True) -> Iterator[Spool]:
        """A spool for one file of this source; appended to the archive when the block ends cleanly.

        `transform=False` keeps bytes as they are (compressed rotated files, which redaction
        could only corrupt).
        """
        spool = self._writer.spool(
            self.source,
            filename,
            transform=self._transform if transform else None,
            on_bytes=self._progress.advance if self._progress else None,
        )
        try:
            yield spool
        except BaseException:
            spool.discard()
            raise
        self._writer.add(spool.close())

    def describe(self, **facts: object) -> None:
        self.facts.update(facts)

    def lack(self, what: str, reason: str) -> None:
        log.info("snapshot: %s: %s not collected: %s", self.source, what, reason)
        self.missing.append(Missing(self.source, what, reason))


@dataclass(frozen=True, slots=True)
class Job:
    source: str
    kind: str
    collect: Callable[[Collection], None]
    """Blocking. Records what it cannot collect with `lack()`; may also raise WatcherError/OSError."""


@dataclass(frozen=True)
class SnapshotResult:
    path: Path
    size: int
    sha256: str
    missing: list[str]

    @property
    def complete(self) -> bool:
        return not self.missing

    @classmethod
    def from_json(cls, doc: SnapshotDoc) -> SnapshotResult:
        """Read back `as_json()`, as the daemon's API answers it."""
        return cls(Path(doc["path"]), doc["size"], doc["sha256"], list(doc["missing"]))

    def as_json(self) -> SnapshotDoc:
        return {
            "path": str(self.path),
            "size": self.size,
            "sha256": self.sha256,
            "complete": self.complete,
            "missing": self.missing,
        }

    def note(self, *, reason: str, trigger: Trigger, by: str, source: str | None = None) -> SnapshotDetail:
        """The detail of the `snapshot` timeline entry that records this snapshot on an incident."""
        return SnapshotDetail(
            self.path.name,
            str(self.path),
            self.size,
            self.sha256,
            self.complete,
            tuple(self.missing),
            reason,
            str(trigger),
            source,
            by,
        )


def take(
    state_dir: Path,
    jobs: Sequence[Job],
    meta: Meta,
    *,
    redact: Callable[[bytes], bytes] | None = None,
    progress: Progress | None = None,
    workers: int = WORKERS,
) -> SnapshotResult:
    """Collect every job into `<state_dir>/snapshots/<stem>.tar.gz`; blocking."""
    stem = names.stem(meta.created_at, meta.incident, meta.reason)
    if progress is not None:
        progress.start(len(jobs))
    with ArchiveWriter(snapshots_dir(state_dir), stem, mtime=meta.created_at) as writer:
        collections = [
            Collection(writer, job.source, job.kind, transform=redact, progress=progress) for job in jobs
        ]
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs)))) as pool:
            futures = [
                pool.submit(_run, job, col, progress) for job, col in zip(jobs, collections, strict=True)
            ]
            try:
                for future in futures:
                    future.result()  # a bug in a collector aborts the snapshot rather than hiding in it
            except BaseException:
                # Ctrl-C or a bug: sources not started yet are not started; running ones finish.
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        missing = [m for col in collections for m in col.missing]
        body = manifest.build(meta, writer.files, [col.facts for col in collections], missing)
        written = writer.commit(body)
    log.info("snapshot %s: %d bytes, sha256 %s", written.path, written.size, written.sha256)
    return SnapshotResult(written.path, written.size, written.sha256, [str(m) for m in missing])


def _run(job: Job, col: Collection, progress: Progress | None) -> None:
    try:
        job.collect(col)
    except (WatcherError, OSError) as exc:
        col.lack(job.kind, str(exc))
    if progress is not None:
        progress.source_done(job.source)
