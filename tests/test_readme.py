"""The README's incident workflow, verbatim, against a daemon started the way `make run` starts it.

A newcomer runs `make run`, opens a second terminal in the checkout and types the
workflow's commands with nothing exported. Here: the shipped config in a scratch
checkout directory (only its port changed, so the test cannot collide with anything on
9108), `make run CONFIG=… STATE=…` from the real checkout, then every `watcher ...` line of
the README's block as its own shell command in that directory, with the venv on PATH
(what `source .venv/bin/activate` does) and no WATCHER_* variable.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, SHIPPED_CONFIG, free_port, wait_for


def workflow() -> list[str]:
    """The `watcher ...` lines of the first code block under "The incident workflow"."""
    section = (ROOT / "README.md").read_text().split("\n## The incident workflow\n", 1)[1]
    block = section.split("```\n", 2)[1]
    lines = [line for line in block.splitlines() if line.startswith("watcher ")]
    assert len(lines) >= 5, lines
    return lines


@pytest.mark.slow
def test_the_readme_workflow_works_verbatim_after_make_run(tmp_path: Path) -> None:
    work = tmp_path / "checkout"
    (work / "config").mkdir(parents=True)
    port = free_port()
    shipped = SHIPPED_CONFIG.read_text()
    assert 'listen = "127.0.0.1:9108"' in shipped
    (work / "config" / "watcher.toml").write_text(shipped.replace("127.0.0.1:9108", f"127.0.0.1:{port}"))
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
    env |= {"XDG_RUNTIME_DIR": str(runtime), "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"}
    make = subprocess.Popen(
        [
            "make",
            "-C",
            str(ROOT),
            "run",
            f"CONFIG={work / 'config/watcher.toml'}",
            f"STATE={work / '.state'}",
        ],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for("the daemon's run file", lambda: any(runtime.glob("novavms-watcher/daemon-*.json")), 120)
        outputs = [_run(line, work, env) for line in workflow()]
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        _out, err = make.communicate(timeout=30)
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO .*source gw: journal of", err, re.M), err
    opened, mitigated, watched, timeline, closed = outputs
    assert "opened P1-20261127-liveview" in opened
    assert "mitigation recorded for P1-20261127-liveview" in mitigated
    assert "P1-20261127-liveview" in watched and "edge: DOWN: /var/log/novavms/edge/error.log" in watched
    assert timeline.startswith("## Timeline: P1-20261127-liveview — Live view black for Org A")
    assert "Mitigation: flag live_view_v2 reverted to alpha" in timeline
    assert "closed P1-20261127-liveview" in closed


def _run(line: str, cwd: Path, env: dict[str, str]) -> str:
    """One README line as a user types it; `status --watch` until Ctrl-C (SIGINT) after a few seconds."""
    if "--watch" in line:
        done = subprocess.run(
            ["timeout", "-s", "INT", "5", "bash", "-c", line],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode in (124, 130), done.stdout + done.stderr
        return done.stdout
    done = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{line}\n{done.stdout}{done.stderr}"
    return done.stdout
