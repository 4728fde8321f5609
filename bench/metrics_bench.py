"""Scrape cost of `/metrics`: body size, series and render time for a large watcher.

`python bench/metrics_bench.py [--sources 1000] [--incidents 50] [--repeat 50]`:

The daemon's `Metrics` for `--sources` sources (90% gateways `gw/gw-NNNN`, 10% docker
services `cloud/svc-NNN`: one series per configured source or compose service, never
per container id), the seven rules of config/watcher.toml, and `--incidents` open
incidents, every value set as a running daemon sets it. It times

- `exposition()`: the body `/metrics` serves (median and p95 of `--repeat` renders);
- a whole scrape: GET /metrics from the daemon's real API server over loopback;
- for comparison, prometheus_client's own `generate_latest` over the same registry
  (the same text, from the families' `collect()`).

Checks that no label value looks like a container id (64 hex digits) or an org, and runs
`promtool check metrics` on the body when promtool is installed. Prints Markdown and
writes bench/out/metrics.json; exits 1 when the target (50 ms) or a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.daemon.fake_api import FakeControl, running
from watcher.events import State
from watcher.metrics import Handling, Metrics

OUT = Path(__file__).parent / "out"
RULES = ("level", "http-5xx", "priority", "panic", "java-exception", "text-level", "oom")
TARGET_MS = 50.0
CONTAINER_ID = re.compile(r"[0-9a-f]{64}")


def build(n_sources: int, n_incidents: int) -> tuple[CollectorRegistry, Metrics]:
    gateways = n_sources * 9 // 10
    sources = [f"gw/gw-{i:04d}" for i in range(gateways)]
    sources += [f"cloud/svc-{i:03d}" for i in range(n_sources - gateways)]
    registry = CollectorRegistry()
    metrics = Metrics(registry, sources=sources, rules=RULES, site="eu1")
    now = time.time()
    for i, source in enumerate(sources):
        metrics.source_up(source, True)
        metrics.watermark(source, now - 1.5)
        metrics.running(source, True)
        metrics.clock_skew(source, 0.2)
        metrics.lines(source, 10_000 + i)
        metrics.error(source, RULES[i % len(RULES)])
    states = [s.value for s in State]
    for i in range(n_incidents):
        incident = f"P1-20261127-{i:03d}"
        metrics.add_incident(incident, 900.0)
        metrics.incident(
            incident,
            state=states[i % len(states)],
            clean_streak=300.0,
            resolved_at=None,
            streak_start=now - 300,
            verified_to=now - 1.5,
        )
        # The runbook's series, as the daemon exports them for a mitigated incident.
        metrics.handled(incident, now - 900, now - 600, Handling(2, 1, {"no_hypothesis": 1}))
        metrics.impact(incident, orgs=120, affected=3, untracked=0)
    for i in range(n_incidents):
        metrics.resolved_in(600.0 + 60 * i)
    metrics.outbox_pending(3)
    return registry, metrics


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


async def scrape_ms(metrics: Metrics, repeat: int) -> list[float]:
    """GET /metrics from the daemon's API server, as Prometheus does, each in ms."""
    async with running(FakeControl(), metrics=metrics) as server, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{server.port}/metrics"
        out = []
        for i in range(repeat + 1):
            start = time.perf_counter()
            async with http.get(url) as resp:
                await resp.read()
            if i:  # the first is a warm-up
                out.append((time.perf_counter() - start) * 1000)
        return out


def summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {"median_ms": statistics.median(ordered), "p95_ms": ordered[int(0.95 * (len(ordered) - 1))]}


def checks(body: bytes) -> list[str]:
    problems = []
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                problems.append(f"{sample.name}: a *_created series")
            for name, value in sample.labels.items():
                if CONTAINER_ID.search(value) or name in ("org", "org_id", "container_id"):
                    problems.append(f"{sample.name}: label {name}={value!r}")
    promtool = shutil.which("promtool")
    if promtool is not None:
        proc = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=120)
        if proc.returncode != 0 or proc.stdout or proc.stderr:
            problems.append(f"promtool check metrics: {(proc.stdout + proc.stderr).decode()[:500]}")
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", type=int, default=1000)
    ap.add_argument("--incidents", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()
    registry, metrics = build(args.sources, args.incidents)
    body, _ = metrics.exposition()
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    render = summary(timed(metrics.exposition, args.repeat))
    scrape = summary(asyncio.run(scrape_ms(metrics, args.repeat)))
    client = summary(timed(lambda: generate_latest(registry), max(5, args.repeat // 10)))
    problems = checks(body)
    result: dict[str, Any] = {
        "sources": args.sources,
        "incidents": args.incidents,
        "rules": len(RULES),
        "series": series,
        "body_bytes": len(body),
        "render": render,
        "scrape": scrape,
        "prometheus_client_render": client,
        "problems": problems,
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "metrics.json").write_text(json.dumps(result, indent=2))
    print(
        f"{args.sources:,} sources, {len(RULES)} rules, {args.incidents} incidents: {series:,} series, "
        f"{len(body) / 1e6:.2f} MB\n"
    )
    print("| what | median | p95 |\n| --- | ---: | ---: |")
    for name, figures in (
        ("`exposition()` (the /metrics body)", render),
        ("GET /metrics over loopback", scrape),
        ("prometheus_client `generate_latest`, same series", client),
    ):
        print(f"| {name} | {figures['median_ms']:.1f} ms | {figures['p95_ms']:.1f} ms |")
    for problem in problems:
        print(f"problem: {problem}")
    if problems or render["median_ms"] > TARGET_MS or scrape["median_ms"] > TARGET_MS:
        sys.exit(1)


if __name__ == "__main__":
    main()
