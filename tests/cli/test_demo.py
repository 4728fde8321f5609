"""`watcher demo` runs to completion on a machine with no Docker and no SSH, with its verdicts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_resolves_then_regresses_and_prints_the_timeline() -> None:
    """The real daemon and commands on generated logs: RESOLVED, then REGRESSED; exit 0; cleaned up."""
    exe = Path(sys.executable).with_name("watcher")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home())}  # nothing of the caller's WATCHER_*
    done = subprocess.run(
        [str(exe), "demo", "--window", "3s"], capture_output=True, text=True, timeout=180, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = done.stdout
    for expected in (
        "source api: file ",
        "$ watcher incident open DEMO-checkout-502",
        "$ watcher snapshot --incident DEMO-checkout-502",
        "mitigation recorded on DEMO-checkout-502",
        "resolved: clean 3s of 3s",
        "regressed:",
        "| Regressions | 1 |",
        "Streak reset by an error in api [level]",
        "| RESOLVED: no errors for 3s in api, edge",
        "REGRESSION after resolution",
        "demo verdicts: RESOLVED, then REGRESSED: as expected",
    ):
        assert expected in text, expected
    root = re.search(r"generated logs in (\S+)", text)
    assert root is not None and not Path(root.group(1)).exists(), "the temporary directory is removed"
