"""Evidence snapshot benchmark: N containers x L lines plus G gateways x E journal entries.

Everything is real and local: a private dockerd (tests/dockerd.py) runs busybox
containers that print L JSON lines each; G sshd instances on 127.0.0.2.. (one
per "gateway", tests/sshd.py) serve the machine's journald, into which E entries
per gateway were written under the gateway's own identifier. `watcher snapshot`
then runs as a user would (a subprocess under GNU time): wall time, peak RSS,
archive size. The same run is repeated at 1/10th of the log volume (`--small`)
to show RSS does not grow with log size.

    .venv/bin/python bench/snapshot_bench.py            # 10 x 100,000 + 20 x 10,000, and 1/10th
    make bench-snapshot
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import measure
from tests.dockerd import IMAGE, Dockerd, private_dockerd
from tests.sshd import TEST_USER, Journald, Sshd


@dataclass
class Row:
    containers: int
    lines: int
    gateways: int
    entries: int
    wall_s: float
    peak_rss_mb: float
    archive_mb: float
    collected_mb: float
    files: int
    complete: bool


def start_containers(engine: Dockerd, project: str, n: int, lines: int) -> None:
    """n finished containers of one compose project, each having printed `lines` JSON lines."""
    awk = (
        f"BEGIN {{ for (i = 0; i < {lines}; i++) "
        f'printf "{{\\"level\\":\\"info\\",\\"msg\\":\\"request %d served\\",\\"status\\":200}}\\n", i }}'
    )
    with contextlib.closing(engine.client(timeout=600)) as client:
        started = []
        for i in range(n):
            labels = {"com.docker.compose.project": project, "com.docker.compose.service": f"svc{i:02d}"}
            started.append(client.containers.run(IMAGE, ["awk", awk], labels=labels, detach=True))
        for c in started:
            c.wait(timeout=600)


def write_journal(journald: Journald, idents: list[str], entries: int) -> None:
    for ident in idents:
        journald.write(
            ident, [f"gateway {ident} entry {i} errors=0 cameras=12" for i in range(entries)], "info"
        )
    for ident in idents:  # journald may still be writing; every entry must be there before timing
        deadline = time.monotonic() + 60
        while journald.count(ident) < entries:
            if time.monotonic() > deadline:
                raise SystemExit(f"journald stored {journald.count(ident)} of {entries} entries for {ident}")
            time.sleep(0.2)


def config(tmp: Path, engine: Dockerd, project: str, gateways: list[tuple[Sshd, str]]) -> Path:
    parts = [
        f'state_dir = "{tmp / "state"}"',
        "[[sources]]",
        'name = "cloud"\nkind = "docker"',
        f'docker_host = "{engine.host}"\ncompose_project = "{project}"',
    ]
    for i, (server, ident) in enumerate(gateways):
        parts += [
            "[[sources]]",
            f'name = "gw{i:02d}"\nkind = "journal"\nhosts = ["{server.address}"]\nidentifier = "{ident}"',
            f'user = "{TEST_USER}"\nport = {server.port}\nknown_hosts = "{server.known_hosts}"',
            f'client_keys = ["{server.client_key_path}"]',
        ]
    path = tmp / "watcher.toml"
    path.write_text("\n".join(parts) + "\n")
    return path


def run(
    engine: Dockerd, journald: Journald, servers: list[Sshd], args: argparse.Namespace, scale: int
) -> Row:
    lines, entries = args.lines // scale, args.entries // scale
    project = f"bench{uuid.uuid4().hex[:6]}"
    idents = [f"wbench-{uuid.uuid4().hex[:8]}" for _ in servers]
    print(
        f"preparing 1/{scale}: {args.containers} x {lines} lines, {len(servers)} x {entries} entries",
        file=sys.stderr,
    )
    start_containers(engine, project, args.containers, lines)
    write_journal(journald, idents, entries)
    with tempfile.TemporaryDirectory(prefix="wsnap-bench-") as tmp:
        cfg = config(Path(tmp), engine, project, list(zip(servers, idents, strict=True)))
        cmd = [
            sys.executable,
            "-m",
            "watcher",
            "snapshot",
            "-c",
            str(cfg),
            "--since",
            "1h",
            "--reason",
            "bench",
            "--json",
        ]
        m = measure([cmd])
        if m.returncodes != [0]:
            raise SystemExit(f"watcher snapshot failed ({m.returncodes}): {m.stderr[-2000:]}")
        result = json.loads(m.stdout)
        manifest = json.loads(
            subprocess.run(
                ["tar", "-xzOf", result["path"], "--wildcards", "*/MANIFEST.json"],
                capture_output=True,
                check=True,
            ).stdout
        )
        return Row(
            args.containers,
            lines,
            len(servers),
            entries,
            m.wall_s,
            m.peak_rss_bytes / 2**20,
            result["size"] / 2**20,
            sum(f["bytes"] for f in manifest["files"]) / 2**20,
            len(manifest["files"]),
            result["complete"],
        )


@contextlib.contextmanager
def gateways(n: int) -> Iterator[list[Sshd]]:
    servers = [Sshd(address=f"127.0.0.{i + 2}") for i in range(n)]
    try:
        for s in servers:
            s.start()
        yield servers
    finally:
        for s in servers:
            s.stop()


def markdown(rows: list[Row], load: str) -> str:
    out = [
        f"machine load before the run: {load}",
        "",
        "| containers x lines | gateways x entries | collected | archive | files | wall | peak RSS "
        "| complete |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        out.append(
            f"| {r.containers} x {r.lines:,} | {r.gateways} x {r.entries:,} | {r.collected_mb:.1f} MiB "
            f"| {r.archive_mb:.1f} MiB | {r.files} | {r.wall_s:.1f} s | {r.peak_rss_mb:.0f} MiB "
            f"| {r.complete} |"
        )
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--containers", type=int, default=10)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--gateways", type=int, default=20)
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--out", type=Path, default=Path("bench/out/snapshot.json"))
    args = ap.parse_args()
    load = Path("/proc/loadavg").read_text().strip()
    journald = Journald()
    journald.start()
    try:
        with private_dockerd() as engine, gateways(args.gateways) as servers:
            rows = [run(engine, journald, servers, args, scale) for scale in (10, 1)]
    finally:
        journald.stop()
    print(markdown(rows, load))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"load": load, "rows": [r.__dict__ for r in rows]}, indent=2) + "\n")
    return 0 if all(r.complete for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
