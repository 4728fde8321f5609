"""Bytes the daemon writes while it holds a long error line: the cost of committing its state.

`watcher run` on one file source with INCIDENTS open incidents; after one error line
of LINE bytes, a live info line every 100 ms for SECONDS. The figure is what the
daemon process handed to write(2) in that span (`wchar` of /proc/PID/io: the WAL,
checkpoints into the database, its log), with the WAL and database sizes at the end.

    python -m bench.state_bench                     # this tree (make bench-state)
    python -m bench.state_bench --code /tmp/main    # another checkout, e.g. before a change
    python -m bench.state_bench --mitigated         # verifying: each line read changes the state
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.daemon.harness import AsyncClient
from tests.support import free_port
from watcher import config
from watcher.errors import DaemonNotRunning
from watcher.store.schema import DB_NAME
from watcher.times import format_time


def write_config(tmp: Path, log: Path) -> Path:
    path = tmp / "watcher.toml"
    path.write_text(
        f"""state_dir = "{tmp / "state"}"
[http]
listen = "127.0.0.1:{free_port()}"
[resolution]
window = "10m"
[[sources]]
name = "edge"
kind = "file"
path = "{log}"
[[rules]]
name = "level"
field = "level"
values = ["error"]
"""
    )
    return path


def line(level: str, msg: str) -> str:
    return f'{{"ts":"{format_time(time.time())}","level":"{level}","msg":"{msg}"}}\n'


def wchar(pid: int) -> int:
    for row in Path(f"/proc/{pid}/io").read_text().splitlines():
        if row.startswith("wchar:"):
            return int(row.split()[1])
    raise RuntimeError("no wchar in /proc/PID/io")


async def measure(
    code: Path | None, incidents: int, line_bytes: int, seconds: float, mitigated: bool
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        log = tmp / "edge.log"
        log.write_text(line("info", "up"))
        cfg = write_config(tmp, log)
        env = dict(os.environ)
        if code is not None:
            env["PYTHONPATH"] = str(code)
        cmd = [sys.executable, "-m", "watcher", "run", "--config", str(cfg)]
        # cwd: `-m` puts the working directory first on sys.path, before PYTHONPATH.
        proc = subprocess.Popen(cmd, env=env, cwd=tmp, stderr=subprocess.DEVNULL)  # noqa: ASYNC220
        try:
            client = AsyncClient(config.load(cfg))
            for _ in range(200):
                try:
                    await client.status()
                    break
                except DaemonNotRunning:
                    await asyncio.sleep(0.05)
            for i in range(incidents):
                await client.open_incident(f"P1-{i}", "bench", ["edge"], None)
                if mitigated:  # then every line read counts as evidence: the state changes each second
                    await client.mitigate(f"P1-{i}", "bench")
            with log.open("a") as fh:
                fh.write(line("error", "x" * line_bytes))
            for _ in range(600):
                doc = await client.status()
                if all(inc["errors"] == 1 for inc in doc["incidents"]):
                    break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError(f"the error line was not seen: {doc}")
            start = wchar(proc.pid)
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                with log.open("a") as fh:
                    fh.write(line("info", "tick"))
                await asyncio.sleep(0.1)
            written = wchar(proc.pid) - start
            state = tmp / "state"
            wal = state / f"{DB_NAME}-wal"
            return {
                "written_bytes": written,
                "db_bytes": (state / DB_NAME).stat().st_size,
                "wal_bytes": wal.stat().st_size if wal.exists() else 0,
            }
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--code", type=Path, help="run the daemon from this checkout (PYTHONPATH)")
    ap.add_argument("--incidents", type=int, default=10)
    ap.add_argument("--line-bytes", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--mitigated", action="store_true", help="mitigate each incident (verifying)")
    args = ap.parse_args()
    got = asyncio.run(measure(args.code, args.incidents, args.line_bytes, args.seconds, args.mitigated))
    mib = 1 << 20
    what = "mitigated incidents" if args.mitigated else "incidents"
    print(
        f"{args.incidents} {what}, one {args.line_bytes:,}-byte error line, {args.seconds:g} s live: "
        f"wrote {got['written_bytes'] / mib:.2f} MiB; database {got['db_bytes'] / mib:.2f} MiB, "
        f"WAL {got['wal_bytes'] / mib:.2f} MiB"
    )


if __name__ == "__main__":
    main()
