"""Wall time and peak RSS of a command or a shell-free pipeline, on a warm page cache."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

TIME = "/usr/bin/time"  # GNU time, Debian package `time`


@dataclass(slots=True)
class Measured:
    """One run's cost: wall time, the largest peak RSS of its processes, its output."""

    wall_s: float
    peak_rss_bytes: int
    returncodes: list[int]
    stdout: str
    stderr: str


def measure(stages: Sequence[Sequence[str]], env: Mapping[str, str] | None = None) -> Measured:
    """Run `stages` as a pipeline (stdout of one into the next); RSS is the max over them.

    Each stage runs under GNU time (`%M`), not os.wait4 from here: Linux carries the
    parent's high-water RSS across fork+exec into the child's ru_maxrss, so every tool
    would report at least this Python process's size. time(1) itself is ~1 MB.
    """
    with (
        tempfile.TemporaryDirectory() as tmp,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        rss_files = [Path(tmp, f"rss{i}") for i in range(len(stages))]
        timed = [[TIME, "-f", "%M", "-o", str(f), *argv] for f, argv in zip(rss_files, stages, strict=True)]
        start = time.perf_counter()
        codes = [p.wait() for p in _spawn(timed, out, err, env)]
        wall = time.perf_counter() - start
        rss = max(_peak_kib(f) for f in rss_files) * 1024
        return Measured(wall, rss, codes, _read(out), _read(err))


Run = tuple[Sequence[Sequence[str]], Mapping[str, str] | None]
"""A command (its pipeline stages) and its environment."""


def best_of(repeat: int, runs: Sequence[Run]) -> list[Measured]:
    """Each run's fastest of `repeat` (least disturbed by the VM), with the highest peak RSS seen.

    The runs take turns, round after round: a slow spell of the machine then falls on every
    tool alike instead of on the one that happened to be running, so their ratio holds.
    """
    rounds = [[measure(stages, env) for stages, env in runs] for _ in range(max(repeat, 1))]
    out = []
    for each in zip(*rounds, strict=True):
        best = min(each, key=lambda m: m.wall_s)
        best.peak_rss_bytes = max(m.peak_rss_bytes for m in each)
        out.append(best)
    return out


def warm_cache(path: Path) -> int:
    """Read the whole file once so no tool pays for the disk; return its size."""
    size = 0
    with path.open("rb", buffering=0) as f:
        while chunk := f.read(8 << 20):
            size += len(chunk)
    return size


def last_line(text: str) -> str:
    """The last non-blank line, cut short: what a failing tool said last."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a running process, all its threads (/proc/<pid>/stat)."""
    # Fields after the parenthesised command name, which may itself hold spaces: state is
    # field 3 of the whole line, utime 14 and stime 15.
    rest = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_bytes(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS so far) of a running process: VmRSS and VmHWM of /proc/<pid>/status."""
    kib = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            kib[key] = int(value.split()[0])
    return kib.get("VmRSS", 0) * 1024, kib.get("VmHWM", 0) * 1024


def _spawn(
    stages: Sequence[Sequence[str]],
    out: IO[bytes],
    err: IO[bytes],
    env: Mapping[str, str] | None,
) -> list[subprocess.Popen[bytes]]:
    procs: list[subprocess.Popen[bytes]] = []
    for i, argv in enumerate(stages):
        stdin = procs[-1].stdout if procs else subprocess.DEVNULL
        last = i == len(stages) - 1
        proc = subprocess.Popen(
            list(argv), stdin=stdin, stdout=out if last else subprocess.PIPE, stderr=err, env=env
        )
        if procs and procs[-1].stdout is not None:
            procs[-1].stdout.close()  # so the writer gets SIGPIPE if the reader dies
        procs.append(proc)
    return procs


def _peak_kib(path: Path) -> int:
    """time(1)'s %M; on failure it writes "Command exited with non-zero status N" above it."""
    words = path.read_text().split()
    return int(words[-1]) if words and words[-1].isdigit() else 0


def _read(f: IO[bytes]) -> str:
    f.seek(0)
    return f.read().decode("utf-8", "replace")
