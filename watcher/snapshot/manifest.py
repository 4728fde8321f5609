"""MANIFEST.json: what a snapshot holds and how to check it; `verify()` re-checks every hash.

The manifest is the archive's last member, written after every file it
describes. Paths in it are relative to the archive's top directory.

`verify` also refuses what the writer never produces and `tar x` would act on: a
member that is not a regular file, one that appears twice (a forged copy beside the
real one), one with setuid/setgid bits or another mode than 0600 or 0644. Given the
sha256 published when the snapshot was taken, it checks the archive file against it.

    {"format": "novavms-watcher-snapshot/1",
     "tool": {"name": "novavms-watcher", "version": "0.1.0"},
     "created_at": RFC3339, "by": "alice@bastion", "trigger": "manual"|"container_stop"|"then",
     "incident": "P1-..."|null, "reason": "...", "scope": ["cloud/*"],
     "range": {"since": RFC3339|null, "until": RFC3339|null}, "redacted": false,
     "sources": [{"name": "cloud/api", "kind": "docker", ...what the collector learnt}],
     "files": [{"path": "cloud/api/3f2a9c1b7d0e/stdout.log", "source": "cloud/api",
                "sha256": hex, "bytes": N}],
     "missing": [{"source": "gw/gw-paris-07", "what": "journal", "reason": "..."}],
     "complete": true}
"""

from __future__ import annotations

import hashlib
import io
import json
import stat
import tarfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watcher import __version__
from watcher.events import Trigger
from watcher.snapshot.archive import COPY_BUFFER, MANIFEST, Spooled
from watcher.times import format_time

FORMAT = "novavms-watcher-snapshot/1"
MAX_MANIFEST = 64 << 20
MODES = (0o600, 0o644)
"""Member modes a snapshot may have: the writer's, and a plain readable copy's."""
_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE)


@dataclass(frozen=True, slots=True)
class Missing:
    """Something in scope that could not be collected, and why."""

    source: str
    what: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.what}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Meta:
    """Who took the snapshot, why, and over which range (epoch seconds; None: unbounded)."""

    created_at: float
    by: str
    trigger: Trigger
    incident: str | None
    reason: str
    scope: Sequence[str]
    since: float | None
    until: float | None
    redacted: bool = False


def build(
    meta: Meta,
    files: Sequence[Spooled],
    sources: Sequence[Mapping[str, object]],
    missing: Sequence[Missing],
) -> bytes:
    doc = {
        "format": FORMAT,
        "tool": {"name": "novavms-watcher", "version": __version__},
        "created_at": format_time(meta.created_at),
        "by": meta.by,
        "trigger": str(meta.trigger),
        "incident": meta.incident,
        "reason": meta.reason,
        "scope": list(meta.scope),
        "range": {"since": format_time(meta.since), "until": format_time(meta.until)},
        "redacted": meta.redacted,
        "sources": sorted((dict(s) for s in sources), key=lambda s: str(s["name"])),
        "files": [
            {"path": f.name, "source": f.source, "sha256": f.sha256, "bytes": f.size}
            for f in sorted(files, key=lambda f: f.name)
        ],
        "missing": [
            {"source": m.source, "what": m.what, "reason": m.reason}
            for m in sorted(missing, key=lambda m: (m.source, m.what))
        ],
        "complete": not missing,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False).encode() + b"\n"


@dataclass
class Verification:
    """The outcome of `verify`: ok when every listed file is present with its size and hash."""

    path: Path
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, object] | None = None
    files: int = 0
    bytes: int = 0
    sha256: str = ""
    """Of the archive file itself, as `watcher snapshot` printed it."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def missing(self) -> list[object]:
        """What the snapshot itself says it could not collect."""
        listed = (self.manifest or {}).get("missing")
        return listed if isinstance(listed, list) else []

    def as_json(self) -> dict[str, object]:
        manifest = self.manifest or {}
        return {
            "path": str(self.path),
            "ok": self.ok,
            "problems": self.problems,
            "files": self.files,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "complete": manifest.get("complete"),
            "incident": manifest.get("incident"),
            "reason": manifest.get("reason"),
            "missing": self.missing,
        }


class _Hashing(io.RawIOBase):
    """A file read through, hashed on the way: the archive is checked in the same single pass."""

    def __init__(self, fh: io.BufferedReader) -> None:
        self._fh = fh
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._fh.readinto(buffer)
        self.digest.update(memoryview(buffer)[:n])
        return n


def verify(path: Path, sha256: str | None = None) -> Verification:
    """Read the archive once, hashing every member, and compare with its manifest (and `sha256`)."""
    result = Verification(path)
    try:
        with path.open("rb") as raw:
            hashing = _Hashing(raw)
            seen, raw_manifest, tops = _read_members(hashing, result)
            while hashing.read(COPY_BUFFER):  # what follows the tar end counts for the file's hash too
                pass
    except FileNotFoundError:
        result.problems.append(f"{path}: no such file")
        return result
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        result.problems.append(f"{path}: the archive is damaged or not a snapshot: {exc}")
        return result
    result.sha256 = hashing.digest.hexdigest()
    if sha256 is not None and sha256.lower() != result.sha256:
        result.problems.append(f"{path}: sha256 {result.sha256} is not the published {sha256.lower()}")
    _compare(path, result, seen, raw_manifest, tops)
    return result


def _read_members(
    fh: io.RawIOBase, result: Verification
) -> tuple[dict[str, tuple[int, str]], bytes | None, set[str]]:
    """Every member's size and sha256 by its path below the top directory, the raw manifest, the tops."""
    seen: dict[str, tuple[int, str]] = {}
    raw_manifest: bytes | None = None
    tops: set[str] = set()
    names: set[str] = set()
    with tarfile.open(fileobj=fh, mode="r|gz") as tar:
        for info in tar:
            top, _, name = info.name.partition("/")
            tops.add(top)
            problem = _member_problem(info, name, names)
            names.add(info.name)
            if problem is not None:
                result.problems.append(f"{info.name}: {problem}")
                continue
            fh_member = tar.extractfile(info)
            if fh_member is None:  # _member_problem refused what is not a file; mypy cannot know
                continue
            if name == MANIFEST:
                raw_manifest = fh_member.read(MAX_MANIFEST)
                continue
            digest = hashlib.sha256()
            while block := fh_member.read(COPY_BUFFER):
                digest.update(block)
            seen[name] = (info.size, digest.hexdigest())
    return seen, raw_manifest, tops


def _member_problem(info: tarfile.TarInfo, name: str, names: set[str]) -> str | None:
    """Why a member cannot be in a snapshot, or None."""
    if info.type not in _REGULAR:
        return "not a regular file (a snapshot holds only files)"
    if not name or ".." in name.split("/") or info.name.startswith("/"):
        return "not below the archive's top directory"
    if info.name in names:
        return "in the archive twice: `tar x` would write both copies; a snapshot holds each file once"
    if info.mode & (stat.S_ISUID | stat.S_ISGID):
        return f"setuid/setgid mode {info.mode & 0o7777:04o}: a snapshot's files are never executable"
    if info.mode & 0o7777 not in MODES:
        return f"mode {info.mode & 0o7777:04o}: a snapshot's files are 0600 (or 0644)"
    return None


def _compare(
    path: Path,
    result: Verification,
    seen: dict[str, tuple[int, str]],
    raw_manifest: bytes | None,
    tops: set[str],
) -> None:
    """The members read against the manifest."""
    if len(tops) > 1:
        result.problems.append(f"{path}: members under several top directories: {', '.join(sorted(tops))}")
    if raw_manifest is None:
        result.problems.append(f"{path}: no {MANIFEST}: not a watcher snapshot")
        return
    try:
        manifest = json.loads(raw_manifest)
        listed = {str(f["path"]): (int(f["bytes"]), str(f["sha256"])) for f in manifest["files"]}
    except (ValueError, KeyError, TypeError):
        result.problems.append(f"{MANIFEST} is not a valid manifest")
        return
    result.manifest = manifest
    for name, (size, sha) in sorted(listed.items()):
        if name not in seen:
            result.problems.append(f"{name}: listed in the manifest but missing from the archive")
        elif seen[name][0] != size:
            result.problems.append(f"{name}: {seen[name][0]} bytes, the manifest says {size}")
        elif seen[name][1] != sha:
            result.problems.append(f"{name}: sha256 {seen[name][1]} does not match the manifest's {sha}")
    for name in sorted(set(seen) - set(listed)):
        result.problems.append(f"{name}: in the archive but not in the manifest")
    result.files = len(seen)
    result.bytes = sum(size for size, _ in seen.values())
