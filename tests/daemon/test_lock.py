"""One daemon per state directory: a second `watcher run` refuses to start, naming the first."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.daemon.harness import healthy, process, write_config
from tests.support import free_port, wait_until


def run_second(cfg: Path) -> subprocess.CompletedProcess[bytes]:
    exe = Path(sys.executable).with_name("watcher")
    return subprocess.run([str(exe), "run", "--config", str(cfg)], capture_output=True, timeout=60)


async def test_a_second_daemon_on_the_same_state_dir_exits_naming_the_first(tmp_path: Path) -> None:
    """The second exits 1 with one line naming the running PID; after a SIGKILL the lock is free."""
    port = free_port()
    cfg = write_config(tmp_path, tmp_path / "edge.log", port)
    with process(cfg) as first:
        await wait_until(lambda: healthy(port), what="the first daemon up")
        second = run_second(cfg)
        assert second.returncode == 1
        lines = second.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and f"another watcher (PID {first.pid}) is running on state_dir" in lines[0]
        assert "Traceback" not in second.stderr.decode()
        first.send_signal(signal.SIGKILL)
        first.wait()
    with process(cfg):  # the kernel dropped the lock with the killed process
        await wait_until(lambda: healthy(port), what="a new daemon up after the crash")
