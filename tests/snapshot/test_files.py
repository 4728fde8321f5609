"""File sources: the current file and its rotated siblings written within the range."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

from tests.snapshot.helpers import manifest, members
from tests.support import RULES
from watcher import config
from watcher.evidence import Request, take_configured


def settings(tmp_path: Path, log: Path) -> config.Settings:
    source = {"name": "edge", "kind": "file", "path": str(log)}
    return config.load(None, {"state_dir": tmp_path / "state", "sources": [source], "rules": RULES})


def test_current_and_rotated(tmp_path: Path) -> None:
    """Current, .1 and .2.gz are collected whole, the .gz as it is; the manifest lists oldest first."""
    log = tmp_path / "error.log"
    log.write_bytes(b"current\n")
    (tmp_path / "error.log.1").write_bytes(b"rotated\n")
    packed = gzip.compress(b"older\n")
    (tmp_path / "error.log.2.gz").write_bytes(packed)
    now = time.time()
    os.utime(tmp_path / "error.log.1", (now - 60, now - 60))
    os.utime(tmp_path / "error.log.2.gz", (now - 120, now - 120))
    result = take_configured(settings(tmp_path, log), Request("r", redact=True, since=now - 3600), by="t@h")
    got = members(result.path)
    assert got["edge/error.log"] == b"current\n" and got["edge/error.log.1"] == b"rotated\n"
    assert got["edge/error.log.2.gz"] == packed  # not "redacted" into garbage
    (source,) = manifest(result.path)["sources"]
    assert source["files"] == ["error.log.2.gz", "error.log.1", "error.log"]


def test_older_than_range_and_symlinks_are_left_out(tmp_path: Path) -> None:
    """A sibling last written before `since` holds nothing in range; a symlinked sibling is never followed."""
    log = tmp_path / "error.log"
    log.write_bytes(b"current\n")
    (tmp_path / "error.log.1").write_bytes(b"ancient\n")
    os.utime(tmp_path / "error.log.1", (1e9, 1e9))
    secret = tmp_path / "secret"
    secret.write_bytes(b"do not collect\n")
    (tmp_path / "error.log.2").symlink_to(secret)
    result = take_configured(settings(tmp_path, log), Request("r", since=time.time() - 3600), by="t@h")
    assert set(members(result.path)) == {"edge/error.log", "MANIFEST.json"}


def test_missing_file(tmp_path: Path) -> None:
    """A configured file that does not exist is missing, with its path."""
    log = tmp_path / "nope" / "error.log"
    result = take_configured(settings(tmp_path, log), Request("r"), by="t@h")
    assert result.missing == [f"edge: file: {log}: no such file"]
