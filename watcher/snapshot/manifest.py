"""MANIFEST.json: what a snapshot holds and how to check it; `verify()` re-checks every hash.

The manifest is the archive's last member, written after every file it
describes. Paths in it are relative to the archive's top directory.

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
import json
import tarfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from watcher import __version__
from watcher.events import Trigger
from watcher.snapshot.archive import COPY_BUFFER, MANIFEST, Spooled
from watcher.times import format_time

FORMAT = "novavms-watcher-snapshot/1"
MAX_MANIFEST = 64 << 20


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
            "complete": manifest.get("complete"),
            "incident": manifest.get("incident"),
            "reason": manifest.get("reason"),
            "missing": self.missing,
        }


def verify(path: Path) -> Verification:
    """Read the archive once, hashing every member, and compare with its manifest."""
    result = Verification(path)
    seen: dict[str, tuple[int, str]] = {}
    raw_manifest: bytes | None = None
    tops: set[str] = set()
    try:
        with tarfile.open(path, mode="r|gz") as tar:
            for info in tar:
                top, _, name = info.name.partition("/")
                tops.add(top)
                if not info.isfile():
                    result.problems.append(f"{info.name}: not a regular file (a snapshot holds only files)")
                    continue
                if not name or ".." in name.split("/") or info.name.startswith("/"):
                    result.problems.append(f"{info.name}: not below the archive's top directory")
                    continue
                fh = tar.extractfile(info)
                if fh is None:  # isfile() above makes this unreachable; mypy cannot know
                    continue
                if name == MANIFEST:
                    raw_manifest = fh.read(MAX_MANIFEST)
                    continue
                digest = hashlib.sha256()
                while block := fh.read(COPY_BUFFER):
                    digest.update(block)
                seen[name] = (info.size, digest.hexdigest())
    except FileNotFoundError:
        result.problems.append(f"{path}: no such file")
        return result
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        result.problems.append(f"{path}: the archive is damaged or not a snapshot: {exc}")
        return result
    if len(tops) > 1:
        result.problems.append(f"{path}: members under several top directories: {', '.join(sorted(tops))}")
    if raw_manifest is None:
        result.problems.append(f"{path}: no {MANIFEST}: not a watcher snapshot")
        return result
    try:
        manifest = json.loads(raw_manifest)
        listed = {str(f["path"]): (int(f["bytes"]), str(f["sha256"])) for f in manifest["files"]}
    except (ValueError, KeyError, TypeError):
        result.problems.append(f"{MANIFEST} is not a valid manifest")
        return result
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
    return result
