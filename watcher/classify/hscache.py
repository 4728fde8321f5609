"""Compiled hyperscan databases kept on disk between runs.

Compiling a source's prefilters and the continuation shapes takes 50-150 ms; loading
the serialized database takes well under a millisecond. A short `watcher classify` or
a daemon restart would otherwise spend most of its start-up compiling the same
patterns again. This is what hyperscan's serialization is for.

The cache is `$XDG_CACHE_HOME/novavms-watcher/hyperscan` (else `~/.cache/...`), a
directory of our own: created 0700, and used only while it is owned by us and writable
by nobody else, since hyperscan trusts what it loads. A file's name is a hash of what
it was compiled from (hyperscan's version, the machine, the patterns and their flags);
its first bytes are a hash of the rest, checked before anything is handed to hyperscan.
Anything amiss (no home, a read-only disk, a torn file) just means compiling, and the
caller compiles as well when hyperscan refuses a database (one from another CPU).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

_DIGEST = 32
KEEP = 32
"""Databases kept; the least recently stored go first (a config edited many times)."""


def directory() -> Path | None:
    """The cache directory, made if missing; None when there is no safe one."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):  # no home, or a relative setting: nowhere we can vouch for
        return None
    path = Path(base, "novavms-watcher", "hyperscan")
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.lstat()
    except OSError:
        return None
    own = st.st_uid == os.geteuid() and stat.S_ISDIR(st.st_mode)
    return path if own and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) else None


def key(*parts: bytes) -> str:
    """A file name for a database compiled from `parts`."""
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "little") + part)
    return h.hexdigest()


def load(name: str) -> bytes | None:
    """The database stored under `name`, if it is there whole."""
    where = directory()
    if where is None:
        return None
    try:
        data = (where / name).read_bytes()
    except OSError:
        return None
    blob = data[_DIGEST:]
    return blob if data[:_DIGEST] == hashlib.sha256(blob).digest() else None


def store(name: str, blob: bytes) -> None:
    """Keep `blob` under `name` (replaced atomically; a failure is only a missed saving)."""
    where = directory()
    if where is None:
        return
    try:
        fd, tmp = tempfile.mkstemp(dir=where, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(hashlib.sha256(blob).digest() + blob)
            os.replace(tmp, where / name)
        except BaseException:
            os.unlink(tmp)
            raise
        _prune(where)
    except OSError:
        return


def _prune(where: Path) -> None:
    entries = sorted(where.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP:]:
        old.unlink(missing_ok=True)
