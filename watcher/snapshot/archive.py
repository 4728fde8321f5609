"""The one snapshot writer: spooled members into a .tar.gz, MANIFEST.json last, then an atomic rename.

Collectors write each member to a spool file in the snapshots directory; its size
and sha256 are counted on the way in, because a tar header needs the size before
the data. A finished spool is appended to the archive (under a lock: collectors
run in several threads, the archive is one stream) and deleted at once, so memory
stays flat whatever the size of the logs, and disk use is the archive plus the
spools still being collected.

The archive is written to a temporary name created with O_EXCL (mkstemp), fsynced,
linked to its final name (a link never replaces a file another snapshot wrote in
the same second) and the directory fsynced: after `commit()` returns, a crash
leaves either the whole verified-to-be-written snapshot or nothing under its name.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from watcher.errors import SnapshotError
from watcher.snapshot.names import member_path

COMPRESSLEVEL = 6
"""gzip's own default: level 9 costs about twice the CPU for a few per cent less size."""
COPY_BUFFER = 1 << 20
MANIFEST = "MANIFEST.json"
MAX_LINE = 1 << 20
STALE_AFTER = 86400.0
MEMBER_MODE = 0o600


@dataclass(frozen=True, slots=True)
class Spooled:
    """A collected member, ready to append: `name` is its path below the archive's top directory."""

    name: str
    source: str
    path: Path
    size: int
    sha256: str


class Spool:
    """One member being collected: bytes go to a private temp file, hashed and counted as written.

    `transform`, when given, rewrites each complete line (redaction); a last line
    without a newline is passed through it at close.
    """

    def __init__(
        self,
        directory: Path,
        name: str,
        source: str,
        *,
        transform: Callable[[bytes], bytes] | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".spool-")
        self._file = os.fdopen(fd, "wb")
        self._path = Path(tmp)
        self._hash = hashlib.sha256()
        self._size = 0
        self._name = name
        self._source = source
        self._transform = transform
        self._partial = b""
        self._on_bytes = on_bytes

    def write(self, data: bytes) -> None:
        if self._on_bytes is not None:
            self._on_bytes(len(data))
        if self._transform is not None:
            data = self._partial + data
            # A "line" longer than MAX_LINE is transformed in pieces rather than held whole.
            cut = data.rfind(b"\n") + 1 or (len(data) if len(data) > MAX_LINE else 0)
            data, self._partial = b"".join(map(self._transform, data[:cut].splitlines(True))), data[cut:]
        self._put(data)

    def _put(self, data: bytes) -> None:
        self._hash.update(data)
        self._size += len(data)
        self._file.write(data)

    def close(self) -> Spooled:
        if self._partial and self._transform is not None:
            self._put(self._transform(self._partial))
            self._partial = b""
        self._file.close()
        return Spooled(self._name, self._source, self._path, self._size, self._hash.hexdigest())

    def discard(self) -> None:
        self._file.close()
        self._path.unlink(missing_ok=True)


class _Hashing:
    """The archive file as gzip sees it: every byte is hashed on its way to disk."""

    def __init__(self, raw: io.BufferedWriter) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


@dataclass(frozen=True, slots=True)
class Written:
    path: Path
    size: int
    sha256: str


class ArchiveWriter:
    """Builds `<directory>/<stem>.tar.gz` with every member under the top directory `<stem>/`."""

    def __init__(self, directory: Path, stem: str, *, mtime: float) -> None:
        self.directory = directory
        self.stem = stem
        self._mtime = int(mtime)
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            _sweep(directory)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{stem}.", suffix=".part")
        except OSError as exc:
            raise SnapshotError(
                f"cannot write a snapshot in {directory}: {exc.strerror}; check state_dir and its "
                "permissions, or let the daemon write it (watcher snapshot --via-daemon)"
            ) from None
        self._tmp = Path(tmp)
        self._raw = os.fdopen(fd, "wb")
        self._hashing = _Hashing(self._raw)
        # Closed by commit() or abort(): the archive outlives this method by design.
        self._gzip = gzip.GzipFile(
            fileobj=self._hashing, mode="wb", compresslevel=COMPRESSLEVEL, mtime=self._mtime
        )
        self._tar = tarfile.open(fileobj=self._gzip, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self._lock = threading.Lock()
        self._names: set[str] = {MANIFEST}
        self.files: list[Spooled] = []

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()

    def spool(
        self,
        source: str,
        filename: str,
        *,
        transform: Callable[[bytes], bytes] | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> Spool:
        """A spool for the member `<source path>/<filename>`, its name made safe and unique."""
        with self._lock:
            name = self._unique(member_path(source, filename))
        return Spool(self.directory, name, source, transform=transform, on_bytes=on_bytes)

    def _unique(self, name: str) -> str:
        stem, dot, ext = name.rpartition(".")
        if not dot or "/" in ext:
            stem, dot, ext = name, "", ""
        candidate, n = name, 1
        while candidate in self._names:
            n += 1
            candidate = f"{stem}-{n}{dot}{ext}"
        self._names.add(candidate)
        return candidate

    def add(self, spooled: Spooled) -> None:
        """Append a closed spool to the archive and delete it."""
        try:
            with self._lock, spooled.path.open("rb") as fh:
                self._tar.addfile(self._info(spooled.name, spooled.size), fh)
                self.files.append(spooled)
        finally:
            spooled.path.unlink(missing_ok=True)

    def commit(self, manifest: bytes) -> Written:
        """Write MANIFEST.json, close, fsync and move into place; returns the final path."""
        with self._lock:
            self._tar.addfile(self._info(MANIFEST, len(manifest)), io.BytesIO(manifest))
            self._tar.close()
            self._gzip.close()
            self._raw.flush()
            os.fsync(self._raw.fileno())
            self._raw.close()
            final = self._link()
            self._tmp.unlink()
            _fsync_dir(self.directory)
        return Written(final, self._hashing.size, self._hashing.sha256.hexdigest())

    def _link(self) -> Path:
        n = 1
        while True:
            final = self.directory / (f"{self.stem}.tar.gz" if n == 1 else f"{self.stem}-{n}.tar.gz")
            try:
                os.link(self._tmp, final)
                return final
            except FileExistsError:
                n += 1

    def abort(self) -> None:
        """Leave nothing behind: the partial archive is deleted."""
        with self._lock:
            # The archive is being thrown away: a failure to write its trailer does not matter.
            with contextlib.suppress(OSError):
                self._tar.close()
                self._gzip.close()
            self._raw.close()
            self._tmp.unlink(missing_ok=True)

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(f"{self.stem}/{name}")
        info.size = size
        info.mtime = self._mtime
        info.mode = MEMBER_MODE
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info


def _sweep(directory: Path) -> None:
    """Delete what a killed snapshot left (its spools and partial archive) once it is a day old.

    Younger ones may belong to a snapshot running right now (the daemon's and a user's).
    """
    cutoff = time.time() - STALE_AFTER
    for leftover in [*directory.glob(".spool-*"), *directory.glob(".*.part")]:
        with contextlib.suppress(FileNotFoundError):  # another sweep got there first
            if leftover.lstat().st_mtime < cutoff:
                leftover.unlink()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
