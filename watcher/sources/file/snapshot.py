"""File collection: the current file and its rotated siblings that were written within the range.

Siblings are what logrotate and friends leave next to the file: `error.log.1`,
`error.log.2.gz`, `error.log-20261127`. A file last modified before `since`
holds nothing from the range and is left out; the others are copied whole
(lines are not cut at `since`, so a record is never split from its traceback),
oldest first. A compressed sibling is stored as it is. Siblings are opened with
O_NOFOLLOW: a symlink planted next to a log is not a way to read another file.
Each file is copied up to the size it had when opened, so a file still being
written gives a definite prefix whose hash means something.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from watcher.config import FileSourceConfig
from watcher.snapshot.archive import COPY_BUFFER
from watcher.snapshot.collect import Collection, Job

COMPRESSED = (".gz", ".bz2", ".xz", ".zst")


def file_job(cfg: FileSourceConfig, since: float | None) -> Job:
    return Job(cfg.name, "file", lambda col: _collect(cfg.path, since, col))


def _collect(path: Path, since: float | None, col: Collection) -> None:
    files = [(p, mtime) for p, mtime in _candidates(path) if since is None or mtime >= since]
    col.describe(path=str(path), files=[p.name for p, _ in sorted(files, key=lambda f: f[1])])
    if not path.exists():
        col.lack("file", f"{path}: no such file")
    for p, _ in sorted(files, key=lambda f: f[1]):
        try:
            _copy(p, col, follow=p == path)
        except OSError as exc:
            col.lack(p.name, f"cannot read {p}: {exc.strerror or exc}")


def _candidates(path: Path) -> list[tuple[Path, float]]:
    """The file itself (symlink or not: it is what the operator configured) and its rotated siblings."""
    found: list[tuple[Path, float]] = []
    with contextlib.suppress(FileNotFoundError):  # the caller reports a missing file
        found.append((path, path.stat().st_mtime))
    if not path.parent.is_dir():
        return found
    with os.scandir(path.parent) as entries:
        for entry in entries:
            if entry.name == path.name or not entry.name.startswith((f"{path.name}.", f"{path.name}-")):
                continue
            if entry.is_file(follow_symlinks=False):
                found.append((Path(entry.path), entry.stat(follow_symlinks=False).st_mtime))
    return found


def _copy(path: Path, col: Collection, *, follow: bool) -> None:
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb", buffering=0) as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file")
        left = st.st_size
        with col.member(path.name, transform=not path.name.endswith(COMPRESSED)) as spool:
            while left > 0 and (block := fh.read(min(COPY_BUFFER, left))):
                spool.write(block)
                left -= len(block)
