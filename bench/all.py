"""`make bench-all`: every benchmark at a reduced size, in a few minutes, as one table.

Each figure of issue 18 is measured by its own benchmark script, run here as a subprocess
with smaller sizes, and read back from the JSON it writes; each peer (GNU grep, mtail,
`docker logs -t`) runs in the same run, so every ratio compares like with like on the
machine as it was. Prints one Markdown table (figure, ours, peer, ratio, goal, met?) and
writes bench/out/all.json; `--readme` writes that table into README.md between its
`bench-all` markers instead of running anything. A benchmark that fails, or whose counts
disagree with its ground truth, makes its rows say so and the exit status 1.

    .venv/bin/python bench/all.py [--quick] [--readme]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
README = ROOT / "README.md"
START, END = "<!-- bench-all: start -->", "<!-- bench-all: end -->"
PY = sys.executable


@dataclass
class Row:
    figure: str
    ours: str
    peer: str
    ratio: str
    goal: str
    met: str
    command: str


@dataclass
class Sizes:
    corpus_lines: int = 2_000_000
    daemon_lines: int = 1_000_000
    latency_samples: int = 100
    idle_samples: int = 60
    soak_seconds: float = 20.0
    gateways: int = 1000
    fleet_window: float = 20.0
    containers: int = 100
    docker_lines: int = 100_000


def run(
    argv: Sequence[str], out: Path | None = None, timeout: float = 900
) -> tuple[dict[str, Any] | None, str]:
    """Run one benchmark; its JSON (from `out`, else its stdout), or None and why not."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
    print("$", " ".join(argv), file=sys.stderr, flush=True)
    if out is not None:
        out.unlink(missing_ok=True)  # never a stale result
    try:
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:g} s"
    try:
        doc = json.loads(out.read_text() if out is not None else done.stdout)
    except (OSError, ValueError):
        lines = (done.stderr or done.stdout).strip().splitlines()
        return None, f"exit {done.returncode}: {lines[-1] if lines else 'no output'}"
    return doc, "" if done.returncode == 0 else f"exit {done.returncode}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else "yes" if ok else "**no**"


def failed(figure: str, why: str, goal: str, command: str) -> Row:
    return Row(figure, "failed", "", "", goal, f"**no** ({why})", command)


# ---- the benchmarks -------------------------------------------------------------------------


def classify(s: Sizes) -> list[Row]:
    corpus = OUT / ("corpus.log" if s.corpus_lines == 2_000_000 else f"corpus-{s.corpus_lines}.log")
    argv = [PY, "bench/classify_bench.py", "--lines", str(s.corpus_lines), "--corpus", str(corpus)]
    argv += ["--repeat", "5", "--no-mtail"]
    command = _cmd(argv)
    doc, why = run(argv, OUT / "classify.json")
    goal = "<= 2.0x grep's time"
    figure = f"`watcher classify`, {s.corpus_lines:,} lines, wall time"
    if doc is None:
        return [failed(figure, why, goal, command)]
    rows = {r["tool"]: r for r in doc["rows"]}
    w, g = rows.get("watcher classify"), rows.get("grep -c -E")
    if not w or not g or not w["available"]:
        return [failed(figure, "watcher classify did not run", goal, command)]
    ratio = w["wall_s"] / g["wall_s"]
    truth = w["matches_truth"] and g["matches_truth"]
    ours = f"{w['wall_s']:.2f} s ({w['lines_per_s'] / 1e6:.2f}M lines/s, peak RSS {w['peak_rss_mb']:.0f} MB)"
    met = verdict(ratio <= 2.0 and truth) + ("" if truth else " (counts differ)")
    out = [Row(figure, ours, f"grep {g['wall_s']:.2f} s", f"{ratio:.2f}x", goal, met, command)]
    rss = doc.get("rss_independence") or {}
    if rss.get("available"):
        flat = rss["full_peak_rss_mb"] <= 1.25 * rss["prefix_peak_rss_mb"]
        figure = (
            f"`watcher classify` peak RSS, {rss['full_bytes'] / 1e6:.0f} MB vs its first "
            f"{rss['prefix_bytes'] / 1e6:.0f} MB"
        )
        ours = f"{rss['full_peak_rss_mb']:.0f} MB vs {rss['prefix_peak_rss_mb']:.0f} MB"
        out.append(Row(figure, ours, "", "", "flat with input size", verdict(flat), command))
    return out


def daemon(s: Sizes) -> list[Row]:
    corpus = str(OUT / f"corpus-{s.daemon_lines}.log")
    base = [PY, "bench/daemon_bench.py", "--lines", str(s.daemon_lines), "--corpus", corpus, "--soak", "0"]
    rows: list[Row] = []
    busy = [*base, "--latency-samples", str(s.latency_samples), "--out", str(OUT / "daemon-busy.json")]
    doc, why = run(busy, OUT / "daemon-busy.json")
    rows += _latency(doc, why, "at 1,000 lines/s", "p99 < 100 ms", 100.0, busy)
    rows += _follow(doc, why, busy)
    idle = [*base, "--latency-samples", str(s.idle_samples), "--info-rate", "0", "--no-throughput"]
    idle += ["--out", str(OUT / "daemon-idle.json")]
    doc, why = run(idle, OUT / "daemon-idle.json")
    rows += _latency(doc, why, "idle", "p99 < 50 ms", 50.0, idle)
    for info in (True, False):
        out = OUT / ("daemon-soak-info.json" if info else "daemon-soak.json")
        soak = [*base[:-2], "--soak", str(s.soak_seconds), "--soak-rate", "10000", "--latency-samples", "0"]
        soak += [*(["--soak-info"] if info else []), "--no-throughput", "--out", str(out)]
        doc, why = run(soak, out)
        what = (
            "info lines stamped now"
            if info
            else "the corpus's mix: 40 error records/s, each resetting the streak"
        )
        figure = f"daemon CPU following a file at 10,000 lines/s ({what})"
        goal = "< 15 % of one core" if info else "(the same goal, in the middle of an error storm)"
        if doc is None or "soak" not in doc:
            rows.append(failed(figure, why or "no soak result", goal, _cmd(soak)))
            continue
        share = doc["soak"]["daemon_cpu_share"]
        rows.append(Row(figure, f"{share:.1%}", "", "", goal, verdict(share < 0.15), _cmd(soak)))
    return rows


def _latency(
    doc: dict[str, Any] | None, why: str, what: str, goal: str, limit: float, argv: list[str]
) -> list[Row]:
    figure = f"error line appended -> in `/api/v1/status`, {what}"
    if doc is None or "latency" not in doc:
        return [failed(figure, why or "no latency result", goal, _cmd(argv))]
    d = doc["latency"]["latency_ms"]
    ours = f"p99 {d['p99']:.0f} ms (p50 {d['p50']:.0f}, max {d['max']:.0f}; {d['n']} samples)"
    return [Row(figure, ours, "", "", goal, verdict(d["p99"] < limit), _cmd(argv))]


def _follow(doc: dict[str, Any] | None, why: str, argv: list[str]) -> list[Row]:
    figure, goal = "`watcher run` following one growing file, lines/s", ">= 4x mtail"
    w, m = (doc or {}).get("watcher"), (doc or {}).get("mtail")
    if not isinstance(w, dict) or not isinstance(m, dict):
        return [failed(figure, why or "a throughput phase failed", goal, _cmd(argv))]
    ratio = w["lines_per_s"] / m["lines_per_s"]
    truth = not w["mismatches"] and not m["mismatches"]
    ours = f"{w['lines_per_s']:,.0f} ({w['cpu_s']:.1f} CPU s, peak RSS {w['peak_rss_mb']:.0f} MB)"
    met = verdict(ratio >= 4.0 and truth) + ("" if truth else " (counts differ)")
    return [Row(figure, ours, f"mtail {m['lines_per_s']:,.0f}", f"{ratio:.2f}x", goal, met, _cmd(argv))]


def journal(s: Sizes) -> list[Row]:
    fleet = f"{min(200, s.gateways // 2)},{s.gateways}"  # two sizes: the memory a gateway adds
    argv = [PY, "-m", "bench.journal_bench", "--fleet", fleet, "--outage", "0"]
    argv += ["--warmup", "5", "--window", str(s.fleet_window)]
    doc, why = run(argv, OUT / "journal.json", timeout=1200)
    figure = f"journal fleet, {s.gateways:,} gateways x 10 entries/s"
    goal = "< 1 core, < 500 MB"
    if doc is None or not doc.get("fleet"):
        return [failed(figure, why, goal, _cmd(argv))]
    big = max(doc["fleet"], key=lambda r: r["gateways"])
    delivered = big["lines_per_s"] / big["expected_lines_per_s"]
    per_gw_s = big["cpu_cores"] / big["lines_per_s"] * 10 * 1000  # ms of CPU per gateway-second
    ok = big["cpu_cores"] < 1.0 and big["peak_rss_mb"] < 500 and delivered > 0.95
    note = "" if delivered > 0.95 else f"; the simulated fleet delivered only {delivered:.0%} of its entries"
    ours = (
        f"{big['cpu_cores']:.2f} core, {big['peak_rss_mb']:.0f} MB; {per_gw_s:.2f} ms CPU per "
        f"gateway-second; at most {big['max_handshakes']} handshakes at once (limit "
        f"{big['max_handshakes_allowed']}); {big['rss_per_gateway_kb']:.0f} KB per gateway{note}"
    )
    return [Row(figure, ours, "", "", goal, verdict(ok), _cmd(argv))]


def docker(s: Sizes) -> list[Row]:
    argv = [PY, "bench/docker_bench.py", "--lines", str(s.docker_lines), "--runs", "2"]
    argv += ["--containers", str(s.containers), "--rate", "100", "--seconds", "10"]
    doc, why = run(argv, timeout=1200)
    figure = f"docker follow, {s.containers} containers x 100 lines/s"
    goal = "p99 < 50 ms, < 0.5 core"
    if doc is None:
        return [failed(figure, why, goal, _cmd(argv)), failed("docker read", why, "", _cmd(argv))]
    f, t, peer = doc["follow"], doc["throughput"], doc["follow"]["peer"]
    same = peer["watcher_on_the_same"]
    ours = f"p99 {f['p99_ms']:.0f} ms, {f['cpu_cores']:.2f} core"
    ours += f" ({f['lines_per_s']:,} lines/s; p50 {f['p50_ms']:.0f} ms;"
    ours += f" waited {f['runnable_waiting']:.2f} s/s for a CPU)"
    theirs = f"`docker logs -t -f` on {peer['containers']} of them: p99 {peer['p99_ms']:.0f} ms"
    ratio = (
        f"{same['p99_ms'] / peer['p99_ms']:.2f}x (ours there: {same['p99_ms']:.0f} ms)"
        if peer["p99_ms"]
        else ""
    )
    met = verdict(f["p99_ms"] < 50 and f["cpu_cores"] < 0.5)
    read = f"docker source reading a stopped container's {t['lines']:,} lines"
    cli = f"`docker logs -t` {t['cli_s']:.2f} s"
    return [
        Row(figure, ours, theirs, ratio, goal, met, _cmd(argv)),
        Row(read, f"{t['watcher_s']:.2f} s", cli, f"{t['watcher_vs_cli_time']:.2f}x", "", "", _cmd(argv)),
    ]


def _cmd(argv: Sequence[str]) -> str:
    return " ".join(a.replace(str(ROOT) + "/", "") for a in argv[1:])


# ---- the table ------------------------------------------------------------------------------


def table(doc: dict[str, Any]) -> str:
    head = (
        f"Measured {doc['when']} on {doc['machine']['cpus']} CPUs (load average "
        f"{doc['machine']['loadavg_before']:.1f} before, {doc['machine']['loadavg_after']:.1f} after), "
        f"code {doc['code']}, `make bench-all` ({doc['minutes']:.0f} min)."
    )
    lines = [
        head,
        "",
        "| figure | ours | peer | ratio | goal | met? |",
        "| --- | --- | --- | ---: | --- | --- |",
    ]
    lines += [
        f"| {r['figure']} | {r['ours']} | {r['peer']} | {r['ratio']} | {r['goal']} | {r['met']} |"
        for r in doc["rows"]
    ]
    lines += ["", "Each row's command (from the repository root, `.venv/bin/python`):", ""]
    lines += sorted({f"- `{r['command']}`" for r in doc["rows"]})
    return "\n".join(lines)


def write_readme(text: str) -> None:
    readme = README.read_text()
    start, end = readme.index(START) + len(START), readme.index(END)
    README.write_text(readme[:start] + "\n" + text + "\n" + readme[end:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--readme", action="store_true", help="write bench/out/all.json's table into README.md")
    ap.add_argument("--quick", action="store_true", help="smaller still (a smoke test of the scripts)")
    args = ap.parse_args(argv)
    if args.readme:
        write_readme(table(json.loads((OUT / "all.json").read_text())))
        return 0
    sizes = Sizes()
    if args.quick:
        sizes = Sizes(200_000, 200_000, 30, 20, 5.0, 200, 10.0, 20, 20_000)
    OUT.mkdir(parents=True, exist_ok=True)
    t0, load = time.monotonic(), os.getloadavg()[0]
    steps: list[Callable[[Sizes], list[Row]]] = [classify, daemon, journal, docker]
    rows = [row for step in steps for row in step(sizes)]
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_before": load}
    doc = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine | {"loadavg_after": os.getloadavg()[0]},
        "code": git.stdout.strip(),
        "minutes": (time.monotonic() - t0) / 60,
        "sizes": asdict(sizes),
        "rows": [asdict(r) for r in rows],
    }
    (OUT / "all.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(table(doc))
    return 1 if any("failed" in r.ours or "counts differ" in r.met for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
