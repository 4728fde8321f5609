"""Docker source benchmark on a private engine (tests/dockerd.py).

(a) Throughput: a container that printed N lines (default 500,000), read to its end
    by DockerSource (decode, de-duplication, cursors, Chunks) against
    `docker logs -t CONTAINER > /dev/null` on the same container, alternately, best
    of `--runs`.
(b) Follow latency: C containers (default 20) each printing R lines/s (default 100)
    for S seconds; for every line, the time from Docker's own timestamp to the moment
    DockerSource yields it. p50/p99/max.

Run: `make bench-docker` (root, dockerd installed). Prints a JSON report and the load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.dockerd import IMAGE, Dockerd, private_dockerd
from watcher.config import DockerSourceConfig
from watcher.events import Chunk
from watcher.sources.docker.cursor import Cursor, stamp_ns
from watcher.sources.docker.source import DockerSource


def source(reach: dict[str, object], names: list[str]) -> DockerSource:
    """A source named `bench` selecting `names`, reaching the engine as `reach` (docker_host, ...) says."""
    cfg = DockerSourceConfig.model_validate({"name": "bench", "kind": "docker", **reach, "containers": names})
    return DockerSource(cfg, max_line_bytes=1 << 20)


async def read_all(reach: dict[str, object], name: str, cid: str, lines: int) -> float:
    """Seconds for DockerSource to deliver every line of a stopped container, from its first."""
    after = json.dumps({f"bench/{name}": Cursor(cid, 0).dumps()})
    seen = 0
    t0 = time.perf_counter()
    gen = source(reach, [name]).read(after)
    try:
        async for ev in gen:
            if isinstance(ev, Chunk) and ev.data:
                seen += ev.data.count(b"\n")
                if seen >= lines:
                    break
    finally:
        await gen.aclose()
    return time.perf_counter() - t0


def cli(host: str, name: str, env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as null:
        subprocess.run(["docker", "-H", host, "logs", "-t", name], stdout=null, check=True, env=env)
    return time.perf_counter() - t0


def throughput(
    engine: Dockerd,
    lines: int,
    runs: int,
    reach: dict[str, object] | None = None,
    cli_env: dict[str, str] | None = None,
) -> dict[str, object]:
    """Best of `runs`: DockerSource against `docker -H <same host> logs -t`, on one stopped container
    of `lines` lines; `reach` is how both get to the engine (default: its socket)."""
    reach = reach or {"docker_host": engine.host}
    client = engine.client()
    try:
        script = f'i=0; while [ $i -lt {lines} ]; do i=$((i+1)); echo "level=info msg=request n=$i"; done'
        c = client.containers.run(IMAGE, ["sh", "-c", script], name="bench-throughput", detach=True)
        c.wait()
        assert c.id is not None
        ours, theirs = [], []
        for _ in range(runs):
            theirs.append(cli(str(reach["docker_host"]), "bench-throughput", cli_env))
            ours.append(asyncio.run(read_all(reach, "bench-throughput", c.id, lines)))
        c.remove(force=True)
    finally:
        client.close()
    best_ours, best_cli = min(ours), min(theirs)
    return {
        "lines": lines,
        "watcher_s": round(best_ours, 3),
        "cli_s": round(best_cli, 3),
        "watcher_lines_per_s": round(lines / best_ours),
        "cli_lines_per_s": round(lines / best_cli),
        "watcher_vs_cli_time": round(best_ours / best_cli, 3),
    }


_RECORDER = (
    "import sys, time\n"
    "seen = [b'%d %s' % (time.time_ns(), line) for line in sys.stdin.buffer]\n"
    "sys.stdout.buffer.write(b''.join(seen))\n"
)
"""Notes each line's arrival: in a process of its own, so that neither its CPU nor its turns
at the interpreter lock are charged to the watcher measured beside it."""


class Peer:
    """`docker logs -t -f` of one container, each line's arrival noted (the peer's latency)."""

    def __init__(self, host: str, name: str) -> None:
        self.arrivals: list[tuple[int, bytes]] = []
        self.proc = subprocess.Popen(
            ["docker", "-H", host, "logs", "-t", "-f", "--tail", "0", name], stdout=subprocess.PIPE
        )
        assert self.proc.stdout is not None
        self.recorder = subprocess.Popen(
            [sys.executable, "-c", _RECORDER], stdin=self.proc.stdout, stdout=subprocess.PIPE
        )
        self.proc.stdout.close()  # the recorder's now: it sees the end when docker exits

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        out, _ = self.recorder.communicate(timeout=30)
        for line in out.splitlines(keepends=True):
            ns, _, data = line.partition(b" ")
            self.arrivals.append((int(ns), data))


def delays_ms(arrivals: list[tuple[int, bytes]], warm: int) -> list[float]:
    return sorted(
        (now - t) / 1e6
        for now, data in arrivals
        for line in data.split(b"\n")
        if line and (t := stamp_ns(line[: line.find(b" ")])) >= warm
    )


def dist_ms(delays: list[float]) -> dict[str, float | None]:
    return {
        "p50_ms": round(statistics.median(delays), 2) if delays else None,
        "p99_ms": round(delays[int(len(delays) * 0.99)], 2) if delays else None,
        "max_ms": round(delays[-1], 2) if delays else None,
    }


async def follow(
    engine: Dockerd, containers: int, rate: int, seconds: float, peers: int
) -> dict[str, object]:
    """Delays of the lines stamped after every writer has run for a second (warm), ours and
    `docker logs -t -f`'s on the first `peers` containers in the same run."""
    names = [f"bench-follow-{i}" for i in range(containers)]
    client = engine.client()
    received: list[tuple[int, bytes]] = []
    mine: list[tuple[int, bytes]] = []  # ours, on the containers the peers follow too
    followed_by_peers = {f"bench/{n}" for n in names[:peers]}
    gen = source({"docker_host": engine.host}, names).read(None)

    async def consume() -> None:
        async for ev in gen:
            if isinstance(ev, Chunk) and ev.data:
                received.append((time.time_ns(), ev.data))
                if ev.source in followed_by_peers:
                    mine.append(received[-1])

    reader = asyncio.create_task(consume())
    try:
        # No process per line: `read -t` on a FIFO nobody writes is the shell's own sleep (a
        # usleep per line would be 10,000 forks a second for 100 containers).
        script = (
            f"mkfifo /tmp/idle; exec 3<>/tmp/idle; "
            f"while true; do echo tick; read -t {1 / rate:.4f} -u 3 x; done"
        )
        for n in names:  # off the event loop: the source is reading meanwhile
            await asyncio.to_thread(client.containers.run, IMAGE, ["sh", "-c", script], name=n, detach=True)
        peer_readers = [Peer(engine.host, n) for n in names[:peers]]
        warm = time.time_ns() + 1_000_000_000
        await asyncio.sleep(1)
        cpu0, wait0, t0 = _cpu(), _runnable_waiting(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu = (_cpu() - cpu0) / (time.monotonic() - t0)
        waiting = (_runnable_waiting() - wait0) / (time.monotonic() - t0)
        for p in peer_readers:
            p.stop()
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await gen.aclose()
        for n in names:
            client.containers.get(n).remove(force=True)
        client.close()
    delays = delays_ms(received, warm)
    theirs = delays_ms([a for p in peer_readers for a in p.arrivals], warm)
    return {
        "containers": containers,
        "lines_per_s_each": rate,
        "seconds": seconds,
        "lines": len(delays),
        **dist_ms(delays),
        "cpu_cores": round(cpu, 3),
        "runnable_waiting": round(waiting, 3),
        "lines_per_s": round(len(delays) / seconds),
        "peer": {
            "command": "docker logs -t -f --tail 0 NAME",
            "containers": peers,
            "lines": len(theirs),
            **dist_ms(theirs),
            "watcher_on_the_same": dist_ms(delays_ms(mine, warm)),
        },
    }


def _runnable_waiting() -> float:
    """Seconds this process's threads have waited, runnable, for a CPU (/proc schedstat): on a
    machine the writers saturate, the part of a line's delay that is the scheduler's."""
    total = 0
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def _cpu() -> float:
    """CPU seconds of this process, every thread (the source reads each container in one)."""
    t = os.times()
    return t.user + t.system


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=500_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--containers", type=int, default=20)
    ap.add_argument("--rate", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--peers", type=int, default=10, help="containers also followed by `docker logs -t -f`")
    args = ap.parse_args()
    with private_dockerd() as engine:
        report = {
            "throughput": throughput(engine, args.lines, args.runs),
            "follow": asyncio.run(follow(engine, args.containers, args.rate, args.seconds, args.peers)),
            "loadavg": os.getloadavg(),
            "cpus": os.cpu_count(),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
