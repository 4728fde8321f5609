"""Journal sources at fleet scale, and how fast a gateway is caught up after an outage.

Fleet: `watcher run` follows N gateways (N = 10, 50, 100, 200 by default), each
an address 127.0.i.j of one in-process asyncssh server (tests/fake_gateway.py)
running in its own process: one SSH connection and one channel per gateway,
each streaming 10 journal entries per second. Once every source is up and
after a warm-up, the watcher's CPU (utime + stime over wall time, in cores) and
RSS are sampled from /proc over the measuring window, and the lines it counted
are checked against the rate.

Outage: a real sshd and journald (tests/sshd.py); systemd-cat writes 10
entries/s throughout; sshd and its sessions are SIGKILLed for `--outage`
seconds, then started again. The figure is the time from sshd accepting again
to the source's watermark reaching that moment, with every entry read once.

    .venv/bin/python -m bench.journal_bench [--fleet 10,50,100,200] [--outage 60]

Needs root (the test user, sshd, journald). Prints a Markdown table and writes
bench/out/journal.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.sshd import TEST_USER, Journald, Sshd, unique_ident
from tests.support import free_port, wait_for
from watcher.config import JournalSourceConfig

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
RATE = 10.0


def exited(proc: subprocess.Popen[bytes]) -> Callable[[], None]:
    """For wait_for: stop waiting, loudly, once the watcher process has exited."""

    def check() -> None:
        if proc.poll() is not None:
            raise SystemExit(f"watcher exited with {proc.returncode}")

    return check


def watcher_exe() -> list[str]:
    exe = Path(sys.executable).with_name("watcher")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "watcher"]


def write_config(tmp: Path, http: int, source: dict[str, Any]) -> Path:
    lines = [f'state_dir = "{tmp / "state"}"', "[http]", f'listen = "127.0.0.1:{http}"', "[[sources]]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in source.items()]
    lines += ["[[rules]]", 'name = "priority"', 'field = "PRIORITY"', "max = 3"]
    path = tmp / "watcher.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def status(http: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/api/v1/status", timeout=5) as resp:
        doc: dict[str, Any] = json.load(resp)
        return doc


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int, key: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def lines_total(doc: dict[str, Any]) -> int:
    return sum(int(s["lines"]) for s in doc["sources"])


def run_fleet(n: int, warmup: float, window: float, py_spy: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wt-jbench-") as tmp_name:
        tmp = Path(tmp_name)
        gw = subprocess.Popen(
            [sys.executable, "-m", "tests.fake_gateway", "--addresses", str(n), "--rate", str(RATE)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert gw.stdout is not None
        info = json.loads(gw.stdout.readline())
        http = free_port()
        cfg = write_config(
            tmp,
            http,
            {
                "name": "gw",
                "kind": "journal",
                "hosts": info["hosts"],
                "user": "watcher",
                "port": info["port"],
                "known_hosts": info["known_hosts"],
                "client_keys": [info["client_key"]],
            },
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
        with (tmp / "watcher.log").open("wb") as log:
            proc = subprocess.Popen(
                [*watcher_exe(), "run", "--config", str(cfg)], stdout=log, stderr=log, env=env, cwd=tmp
            )
        try:
            up = wait_for(
                f"{n} sources up",
                lambda: sum(s["up"] for s in status(http)["sources"]) == n,
                120 + 0.3 * n,  # handshakes, max_handshakes at a time, while the others stream
                alive=exited(proc),
            )
            time.sleep(warmup)
            spy = None
            if py_spy is not None:  # raw collapsed stacks of the measuring window
                spy = subprocess.Popen(
                    [
                        str(Path(sys.executable).with_name("py-spy")),
                        "record",
                        "--nonblocking",
                        "-r",
                        "100",
                        "-f",
                        "raw",
                        "-o",
                        str(py_spy),
                        "-p",
                        str(proc.pid),
                        "-d",
                        str(int(window)),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            cpu0, lines0, t0 = cpu_seconds(proc.pid), lines_total(status(http)), time.monotonic()
            time.sleep(window)
            cpu1, doc, t1 = cpu_seconds(proc.pid), status(http), time.monotonic()
            if spy is not None:
                spy.wait(30)
            lags = [s["lag"] for s in doc["sources"] if s["lag"] is not None]
            gw.terminate()
            out, _ = gw.communicate(timeout=30)
            handshakes = json.loads(out.splitlines()[-1])["max_handshaking"] if out.strip() else None
            return {
                "gateways": n,
                "all_up_after_s": round(up, 2),
                "cpu_cores": round((cpu1 - cpu0) / (t1 - t0), 3),
                "rss_mb": round(rss_bytes(proc.pid) / 2**20, 1),
                "peak_rss_mb": round(rss_bytes(proc.pid, "VmHWM") / 2**20, 1),
                "lines_per_s": round((lines_total(doc) - lines0) / (t1 - t0), 1),
                "expected_lines_per_s": n * RATE,
                "max_watermark_lag_s": max(lags) if lags else None,
                "max_handshakes": handshakes,
                "max_handshakes_allowed": JournalSourceConfig.model_fields["max_handshakes"].default,
            }
        finally:
            proc.terminate()
            proc.wait(30)
            if gw.poll() is None:
                gw.terminate()
                gw.wait(10)


def run_outage(outage: float) -> dict[str, Any]:
    journald = Journald()
    journald.start()
    sshd = Sshd()
    sshd.start()
    ident = unique_ident()
    writer = subprocess.Popen(["systemd-cat", "-t", ident, "-p", "info"], stdin=subprocess.PIPE)
    assert writer.stdin is not None
    written = 0

    def write_for(seconds: float) -> None:
        nonlocal written
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            assert writer.stdin is not None
            writer.stdin.write(f"level=info msg=tick n={written}\n".encode())
            writer.stdin.flush()
            written += 1
            time.sleep(1 / RATE)

    with tempfile.TemporaryDirectory(prefix="wt-jbench-") as tmp_name:
        tmp = Path(tmp_name)
        http = free_port()
        cfg = write_config(
            tmp,
            http,
            {
                "name": "gw",
                "kind": "journal",
                "hosts": [sshd.address],
                "user": TEST_USER,
                "port": sshd.port,
                "known_hosts": str(sshd.known_hosts),
                "client_keys": [str(sshd.client_key_path)],
                "identifier": ident,
            },
        )
        with (tmp / "watcher.log").open("wb") as log:
            proc = subprocess.Popen([*watcher_exe(), "run", "--config", str(cfg)], stdout=log, stderr=log)
        name = f"gw/{sshd.address}"

        def source() -> dict[str, Any]:
            return next(s for s in status(http)["sources"] if s["name"] == name)

        try:
            wait_for("the source up", lambda: bool(source()["up"]), 60, alive=exited(proc))
            write_for(5)
            sshd.kill()
            write_for(outage)
            sshd.start()
            back = time.time()
            back_mono = time.monotonic()

            def caught_up() -> bool:
                wm = source()["watermark"]
                return wm is not None and _epoch(wm) >= back

            wait_for("the watermark past the link's return", caught_up, 120, alive=exited(proc))
            caught = time.monotonic() - back_mono
            writer.stdin.close()
            writer.wait(10)
            wait_for("every entry", lambda: source()["lines"] >= written, 30, alive=exited(proc))
            return {
                "outage_s": outage,
                "entries_written": written,
                "entries_read": source()["lines"],
                "caught_up_after_return_s": round(caught, 2),
            }
        finally:
            proc.terminate()
            proc.wait(30)
            sshd.stop()
            journald.stop()


def _epoch(rfc3339: str) -> float:
    from watcher.times import parse_time

    return parse_time(rfc3339)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fleet", default="10,50,100,200", help="gateway counts, comma-separated")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--window", type=float, default=30.0, help="seconds CPU is measured over")
    parser.add_argument("--outage", type=float, default=60.0, help="0 skips the outage run")
    parser.add_argument("--py-spy", type=Path, help="profile the largest fleet's window (pip install py-spy)")
    args = parser.parse_args()
    load = os.getloadavg()
    sizes = [int(n) for n in args.fleet.split(",") if n]
    fleet = [run_fleet(n, args.warmup, args.window, args.py_spy if n == max(sizes) else None) for n in sizes]
    if len(fleet) > 1:  # memory a gateway adds: the slope from the smallest fleet to each other
        small = fleet[0]
        for r in fleet[1:]:
            r["rss_per_gateway_kb"] = (
                (r["rss_mb"] - small["rss_mb"]) * 1024 / (r["gateways"] - small["gateways"])
            )
    outage = run_outage(args.outage) if args.outage > 0 else None
    after = os.getloadavg()
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_before": load},
        "loadavg_after": after,
        "fleet": fleet,
        "outage": outage,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "journal.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"load average before {load[0]:.2f}, after {after[0]:.2f}; {os.cpu_count()} CPUs\n")
    print(
        "| gateways | CPU (cores) | RSS (MB) | peak RSS (MB) | lines/s (expected) | max watermark lag (s) "
        "| handshakes at once (limit) | RSS per gateway (KB) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in fleet:
        per = r.get("rss_per_gateway_kb")
        print(
            f"| {r['gateways']} | {r['cpu_cores']:.3f} | {r['rss_mb']} | {r['peak_rss_mb']} | "
            f"{r['lines_per_s']} ({r['expected_lines_per_s']:.0f}) | {r['max_watermark_lag_s']} | "
            f"{r['max_handshakes']} ({r['max_handshakes_allowed']}) | {'' if per is None else f'{per:.0f}'} |"
        )
    if outage is not None:
        print(
            f"\noutage {outage['outage_s']:g}s: caught up {outage['caught_up_after_return_s']}s after sshd "
            f"returned; entries read {outage['entries_read']} of {outage['entries_written']} written"
        )


if __name__ == "__main__":
    main()
