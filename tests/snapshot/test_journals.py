"""Journal collection over SSH against a real sshd and journald (tests/sshd.py)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.snapshot.helpers import manifest, members
from tests.sshd import TEST_USER, Journald, Sshd, journald_fixture, sshd_fixture, unique_ident
from tests.support import RULES, wait_for
from watcher import config
from watcher.evidence import Request, take_configured
from watcher.snapshot.manifest import verify

pytestmark = pytest.mark.journal
__all__ = ["journald_fixture", "sshd_fixture"]  # the `journald` and `sshd` fixtures


def settings(tmp_path: Path, server: Sshd, unit: str, known_hosts: Path | None = None) -> config.Settings:
    source = {
        "name": "gw",
        "kind": "journal",
        "hosts": [server.address],
        "identifier": unit,
        "user": TEST_USER,
        "port": server.port,
        "known_hosts": str(known_hosts or server.known_hosts),
        "client_keys": [str(server.client_key_path)],
        "connect_timeout": "10s",
    }
    return config.load(None, {"state_dir": tmp_path, "sources": [source], "rules": RULES})


def test_journal_as_json_lines(tmp_path: Path, sshd: Sshd, journald: Journald) -> None:
    """The unit's entries over the range, one journalctl JSON object per line, verified."""
    ident = unique_ident()
    journald.write(ident, [f"gateway line {i}" for i in range(50)])
    result = take_configured(settings(tmp_path, sshd, ident), Request("r", since=time.time() - 600), by="t@h")
    assert result.missing == [] and verify(result.path).ok
    data = members(result.path)[f"gw/{sshd.address}/journal.json"]
    entries = [json.loads(line) for line in data.splitlines()]
    assert [e["MESSAGE"] for e in entries] == [f"gateway line {i}" for i in range(50)]
    assert all(e["SYSLOG_IDENTIFIER"] == ident and "__REALTIME_TIMESTAMP" in e for e in entries)
    (source,) = manifest(result.path)["sources"]
    assert source == {
        "name": f"gw/{sshd.address}",
        "kind": "journal",
        "host": sshd.address,
        "identifier": ident,
    }


def test_range_excludes_older_entries(tmp_path: Path, sshd: Sshd, journald: Journald) -> None:
    """Entries before `since` are not collected."""
    ident = unique_ident()
    journald.write(ident, ["old"])
    # systemd-cat returns once journald has the line, not once a reader can see it.
    wait_for("journald to store the line", lambda: journald.count(ident) == 1, 20)
    shown = subprocess.run(["journalctl", "-t", ident, "-o", "json"], capture_output=True, check=True)
    cut = (int(json.loads(shown.stdout)["__REALTIME_TIMESTAMP"]) + 1) / 1e6  # just after "old"
    journald.write(ident, ["new"])
    result = take_configured(settings(tmp_path, sshd, ident), Request("r", since=cut), by="t@h")
    data = members(result.path)[f"gw/{sshd.address}/journal.json"]
    assert [json.loads(line)["MESSAGE"] for line in data.splitlines()] == ["new"]


def test_changed_host_key_is_missing(tmp_path: Path, sshd: Sshd, journald: Journald) -> None:
    """Host keys are checked as for the journal source: a mismatch is missing, with the reason."""
    cfg = settings(tmp_path, sshd, unique_ident(), known_hosts=sshd.wrong_known_hosts())
    result = take_configured(cfg, Request("r"), by="t@h")
    assert len(result.missing) == 1
    assert "HOST KEY MISMATCH" in result.missing[0]
    assert manifest(result.path)["complete"] is False


def test_local_journal(tmp_path: Path, journald: Journald) -> None:
    """A journal source without hosts reads this machine's journal with a local journalctl."""
    ident = unique_ident()
    journald.write(ident, ["local one", "local two"])
    source = {"name": "local", "kind": "journal", "identifier": ident}
    cfg = config.load(None, {"state_dir": tmp_path, "sources": [source], "rules": RULES})
    result = take_configured(cfg, Request("r", since=time.time() - 600), by="t@h")
    data = members(result.path)["local/journal.json"]
    assert [json.loads(line)["MESSAGE"] for line in data.splitlines()] == ["local one", "local two"]
