"""ssh:// Docker benchmark: a private engine (tests/dockerd.py) behind a real sshd (tests/sshd.py).

(a) Throughput: a container that printed N lines (default 500,000), read to its end by
    DockerSource through its SSH link, against `docker -H ssh://... logs -t CONTAINER >
    /dev/null` on the same container (the docker CLI's own ssh support: the system `ssh`
    running `docker system dial-stdio` on the host), alternately, best of `--runs`. The
    CLI's `ssh` gets a throwaway config (the test known_hosts and key; nothing from
    ~/.ssh, no agent) through a wrapper put first on its PATH, for this run only.
(b) Link loss: sshd in a network namespace, a container writing R lines/s (default 50),
    the source with the default keepalive_interval (10 s) and backoff; the far end falls
    silent (tests/sshd.py LinkCut: no FIN, no RST) for `--outage` seconds (default 20).
    Seconds from the cut to the source going down; seconds from the link's return to the
    sub-source's watermark passing that moment; lines delivered against `docker logs -t`
    (each once).

Run: `make bench-docker-ssh` (root; dockerd, sshd, iproute2). Prints a JSON report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.docker_bench import source, throughput
from tests.dockerd import IMAGE, Dockerd, Reach, private_dockerd
from tests.sshd import LinkCut, Sshd
from tests.support import wait_until
from watcher.events import Chunk, SourceDown, Watermark


@contextlib.contextmanager
def cli_ssh(server: Sshd) -> Iterator[dict[str, str]]:
    """The environment for `docker -H ssh://...`: an `ssh` first on PATH that trusts only the
    test server's key and logs in with the test key."""
    where = Path(tempfile.mkdtemp(prefix="wt-cli-ssh-"))
    try:
        key = where / "id_ed25519"
        shutil.copy(server.client_key_path, key)
        key.chmod(0o600)  # ssh refuses a key others may read
        config = where / "ssh_config"
        config.write_text(
            f"Host *\n  UserKnownHostsFile {server.known_hosts}\n  GlobalKnownHostsFile /dev/null\n"
            f"  IdentityFile {key}\n  IdentitiesOnly yes\n  IdentityAgent none\n"
            "  StrictHostKeyChecking yes\n  BatchMode yes\n"
        )
        wrapper = where / "ssh"
        wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("ssh")} -F {config} "$@"\n')
        wrapper.chmod(0o755)
        yield {**os.environ, "PATH": f"{where}:{os.environ['PATH']}"}
    finally:
        shutil.rmtree(where)


def ssh_throughput(engine: Dockerd, lines: int, runs: int) -> dict[str, object]:
    server = Sshd()
    server.start()
    try:
        with cli_ssh(server) as env:
            return throughput(engine, lines, runs, Reach(server).fields(engine), env)
    finally:
        server.stop()


def watermark(event: object, past: float) -> bool:
    """`event` is the sub-source's watermark at or past `past`."""
    return isinstance(event, Watermark) and event.source == "bench/bench-outage" and event.at >= past


def delivered(events: list[tuple[float, object]]) -> list[bytes]:
    data = b"".join(e.data for _, e in events if isinstance(e, Chunk) and e.stream == "stdout")
    return data.split(b"\n")[:-1]


async def outage(engine: Dockerd, rate: int, seconds: float) -> dict[str, object]:
    link = LinkCut()
    server = Sshd(address=link.remote, netns=link.netns)
    client = engine.client()
    script = (
        f"trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo \"n $i\"; usleep {int(1e6 / rate)}; done"
    )
    c = client.containers.run(IMAGE, ["sh", "-c", script], name="bench-outage", detach=True)
    events: list[tuple[float, object]] = []
    try:
        server.start()
        gen = source(Reach(server).fields(engine), ["bench-outage"]).read(None)

        async def consume() -> None:
            async for ev in gen:
                events.append((time.monotonic(), ev))

        reader = asyncio.create_task(consume())
        try:
            await wait_until(lambda: any(watermark(e, 0.0) for _, e in events), what="caught up")
            link.cut()
            cut = time.monotonic()
            await wait_until(lambda: any(isinstance(e, SourceDown) for _, e in events), 60, "down")
            down = next(t for t, e in events if isinstance(e, SourceDown))
            reason = next(e.reason for _, e in events if isinstance(e, SourceDown))
            await asyncio.sleep(max(0.0, cut + seconds - time.monotonic()))
            link.restore()
            back, back_at = time.monotonic(), time.time()

            await wait_until(lambda: any(watermark(e, back_at) for _, e in events), 60, "caught up again")
            caught = next(t for t, e in events if watermark(e, back_at))
            c.stop(timeout=1)
            truth = c.logs(stdout=True, stderr=False, timestamps=True).split(b"\n")[:-1]

            await wait_until(lambda: len(delivered(events)) >= len(truth), 30, "every line")
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await gen.aclose()
    finally:
        c.remove(force=True)
        client.close()
        server.stop()
        link.remove()
    got = delivered(events)
    return {
        "lines_per_s": rate,
        "outage_s": seconds,
        "keepalive_interval_s": 10.0,
        "down_after_s": round(down - cut, 2),
        "reason": reason,
        "watermark_past_return_after_s": round(caught - back, 2),
        "lines_written": len(truth),
        "lines_delivered": len(got),
        "each_once_in_order": got == truth,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=500_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate", type=int, default=50)
    ap.add_argument("--outage", type=float, default=20.0)
    args = ap.parse_args()
    load = os.getloadavg()
    with private_dockerd() as engine:
        report = {
            "throughput": ssh_throughput(engine, args.lines, args.runs),
            "outage": asyncio.run(outage(engine, args.rate, args.outage)),
            "loadavg_before": load,
            "loadavg_after": os.getloadavg(),
            "cpus": os.cpu_count(),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
