"""Reading snapshots back in tests: members by path below the top directory, and the manifest."""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watcher.snapshot.collect import Collection, Job
from watcher.snapshot.manifest import Meta


def meta(reason: str = "before rollback", incident: str | None = "P1-test", **kw: Any) -> Meta:
    fields: dict[str, Any] = {
        "created_at": time.time(),
        "by": "tester@host",
        "trigger": "manual",
        "incident": incident,
        "reason": reason,
        "scope": ["*"],
        "since": None,
        "until": None,
    }
    fields.update(kw)
    return Meta(**fields)


def writes(source: str, files: dict[str, bytes], kind: str = "file") -> Job:
    """A job that collects `files` (name -> content) for `source`, in 1000-byte writes."""

    def collect(col: Collection) -> None:
        for name, data in files.items():
            with col.member(name) as spool:
                for i in range(0, len(data), 1000):
                    spool.write(data[i : i + 1000])

    return Job(source, kind, collect)


def lacking(source: str, what: str, reason: str) -> Job:
    def collect(col: Collection) -> None:
        col.lack(what, reason)

    return Job(source, "journal", collect)


def members(path: Path) -> dict[str, bytes]:
    """Every member's content by its path below the archive's top directory."""
    out = {}
    with tarfile.open(path) as tar:
        for info in tar:
            fh = tar.extractfile(info)
            assert fh is not None
            out[info.name.partition("/")[2]] = fh.read()
    return out


def manifest(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(members(path)["MANIFEST.json"])
    return doc


def rewrite(path: Path, change: Callable[[str, bytes], bytes | None]) -> None:
    """Rebuild the archive with each member's content passed through `change` (None drops it)."""
    with tarfile.open(path) as tar:
        items = []
        for info in tar:
            fh = tar.extractfile(info)
            assert fh is not None
            items.append((info, fh.read()))
    with tarfile.open(path, "w:gz") as tar:
        for info, data in items:
            new = change(info.name.partition("/")[2], data)
            if new is not None:
                info.size = len(new)
                tar.addfile(info, io.BytesIO(new))
