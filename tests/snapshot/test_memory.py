"""Memory stays flat with log size: a 100 MB log is streamed, never held (peak RSS of a real process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import RULE

MB = 1 << 20
ALLOWED_GROWTH = 16 * MB
"""How much peak RSS may differ between a 1 MB and a 100 MB log: allocator noise, not data."""


def write_log(path: Path, size: int) -> None:
    block = b"".join(
        b'2026-11-27T14:%02d:%02d.%06dZ {"level":"info","msg":"request served","id":%d}\n'
        % (i // 60 % 60, i % 60, i, i)
        for i in range(12000)
    )
    with path.open("wb") as fh:
        for _ in range(size // len(block) + 1):
            fh.write(block)


# The child reads its own high-water mark: ru_maxrss from wait4 would include this (much larger)
# pytest process, which Linux carries across fork+exec into the child's figure.
PROBE = """
import sys
from watcher.cli import app
try:
    app(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
open(sys.argv[1], "w").write(hwm.split()[1])
sys.exit(code)
"""


def snapshot_peak_rss(tmp_path: Path, size: int) -> tuple[int, dict[str, object]]:
    """Peak RSS in bytes of `watcher snapshot` over a log of `size` bytes, and its --json result."""
    log = tmp_path / "edge.log"
    write_log(log, size)
    cfg = tmp_path / "watcher.toml"
    cfg.write_text(
        f'state_dir = "{tmp_path / "state"}"\n[[sources]]\nname = "edge"\nkind = "file"\npath = "{log}"\n'
        + RULE
    )
    hwm = tmp_path / "hwm"
    cmd = ["snapshot", "-c", str(cfg), "--reason", "rss", "--json"]
    done = subprocess.run([sys.executable, "-c", PROBE, str(hwm), *cmd], stdout=subprocess.PIPE, check=True)
    return int(hwm.read_text()) * 1024, json.loads(done.stdout)


@pytest.mark.slow
def test_rss_does_not_grow_with_log_size(tmp_path: Path) -> None:
    """The same peak RSS for a 1 MB and a 100 MB log, and the 100 MB are all in the archive."""
    (tmp_path / "small").mkdir()
    (tmp_path / "big").mkdir()
    small, _ = snapshot_peak_rss(tmp_path / "small", MB)
    big, result = snapshot_peak_rss(tmp_path / "big", 100 * MB)
    assert result["complete"] is True
    assert big - small < ALLOWED_GROWTH, f"peak RSS {small / MB:.0f} MB -> {big / MB:.0f} MB"
