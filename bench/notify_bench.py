"""Announcement delivery of the running daemon (`watcher run`) to a real webhook on loopback.

`python bench/notify_bench.py [--runs 20] [--count 1000] [--outage 600]`:

(a) latency: an incident with a 3 s window is opened and mitigated through the API
    while a healthy receiver listens; per run, the delay from the RESOLVED transition
    (its `recorded_at` on the timeline, and its event time `resolved_at`) to the
    receiver getting the announcement. p50/p99 over `--runs` incidents, each started on
    an idle channel (so the figure is the latency, not the 1/s pacing behind the
    opened/mitigated messages of the same incident).
(b) outage drain: the receiver answers 503 for `--outage` seconds; meanwhile `--count`
    incidents are opened (one "opened" announcement each). Then it answers 200; the
    receiver counts each incident's announcement: delivered, lost, duplicated, the
    drain rate and the total time from the receiver's return to the last message.

The daemon runs as a subprocess on a temporary config (one empty `file` source, a free
port, a fresh state_dir, [notify] incident_webhook pointing at the receiver, defaults
otherwise). Prints Markdown and writes bench/out/notify.json. Exit 1 when a message is
lost or duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.daemon.harness import AsyncClient
from tests.receiver import OK, Answer, Receiver
from tests.support import free_port, wait_until
from watcher import config
from watcher.errors import DaemonError
from watcher.times import parse_time

OUT = Path(__file__).parent / "out"


def write_config(tmp: Path, hook: str) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    log = tmp / "edge.log"
    log.touch()
    path = tmp / "watcher.toml"
    path.write_text(
        f'state_dir = "{tmp / "state"}"\n'
        f'[http]\nlisten = "127.0.0.1:{free_port()}"\n'
        f'[notify]\nincident_webhook = "{hook}"\n'
        # An error-only log: silence proves nothing otherwise (README, "Evidence").
        f'[[sources]]\nname = "edge"\nkind = "file"\npath = "{log}"\nquiet_ok = true\n'
        '[[rules]]\nname = "level"\nfield = "level"\nvalues = ["error"]\n'
    )
    return path


@asynccontextmanager
async def daemon(cfg: Path) -> AsyncIterator[AsyncClient]:
    exe = Path(sys.executable).with_name("watcher")
    proc = await asyncio.create_subprocess_exec(
        str(exe), "run", "--config", str(cfg), stderr=(cfg.parent / "daemon.log").open("wb")
    )
    try:
        async with AsyncClient(config.load(cfg)) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    await client.status()
                    break
                except DaemonError:
                    if time.monotonic() > deadline or proc.returncode is not None:
                        raise
                    await asyncio.sleep(0.1)
            yield client
    except BaseException:
        print((cfg.parent / "daemon.log").read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


def about(body: dict[str, Any]) -> tuple[str, str]:
    """(incident, first word) of a Slack message's fallback text: `*P1-x* RESOLVED at ...`."""
    m = re.match(r"^\*(\S+)\* (\w+)", str(body.get("text", "")))
    return (m.group(1), m.group(2).lower()) if m else ("", "")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def latency(tmp: Path, runs: int) -> dict[str, object]:
    async with Receiver() as rx, daemon(write_config(tmp, rx.url())) as client:
        from_recorded: list[float] = []
        from_event: list[float] = []
        for i in range(runs):
            incident = f"P1-latency-{i}"
            await client.open_incident(incident, "bench", [], "3s")
            await client.mitigate(incident, "bench")

            def arrived(incident: str = incident) -> bool:
                return (incident, "resolved") in map(about, rx.delivered())

            await wait_until(arrived, 30, f"{incident} resolved at the receiver")
            got = next(r.wall for r in rx.requests if about(r.body) == (incident, "resolved"))
            events = (await client.timeline(incident))["events"]
            resolved = next(e for e in events if e["kind"] == "resolved")
            from_recorded.append(got - parse_time(resolved["recorded_at"] or ""))
            from_event.append(got - parse_time(resolved["at"] or ""))
            await client.close(incident, "bench")

            # An idle channel for the next run: the latency, not the 1/s pacing behind older messages.
            def closed(incident: str = incident) -> bool:
                return (incident, "closed") in map(about, rx.delivered())

            await wait_until(closed, 30, "closed")
            await asyncio.sleep(1.0)
    return {
        "runs": runs,
        "from_transition_p50_s": round(statistics.median(from_recorded), 3),
        "from_transition_p99_s": round(percentile(from_recorded, 0.99), 3),
        "from_transition_max_s": round(max(from_recorded), 3),
        "from_event_time_p50_s": round(statistics.median(from_event), 3),
        "from_event_time_p99_s": round(percentile(from_event, 0.99), 3),
    }


async def drain(tmp: Path, count: int, outage: float) -> dict[str, object]:
    async with Receiver(default=Answer(503)) as rx, daemon(write_config(tmp, rx.url())) as client:
        down_at = time.monotonic()
        for i in range(count):
            await client.open_incident(f"P1-drain-{i:04d}", "bench", [], None)
        queued_s = time.monotonic() - down_at
        await asyncio.sleep(max(0.0, outage - queued_s))
        rx.default = OK
        back = time.monotonic()
        failed_during_outage = len(rx.requests)

        def opened() -> list[str]:
            return [i for i, kind in map(about, rx.delivered()) if kind == "opened"]

        await wait_until(lambda: len(set(opened())) >= count, count * 2 + 180, "every announcement")
        await asyncio.sleep(5)  # anything sent twice would arrive within this
        got = [r for r in rx.requests if r.status == 200 and about(r.body)[1] == "opened"]
    ids = Counter(about(r.body)[0] for r in got)
    want = {f"P1-drain-{i:04d}" for i in range(count)}
    in_order = [about(r.body)[0] for r in got] == sorted(ids)
    first, last = got[0].monotonic, got[-1].monotonic
    return {
        "count": count,
        "outage_s": outage,
        "queued_in_s": round(queued_s, 1),
        "attempts_during_outage": failed_during_outage,
        "delivered": len(set(ids) & want),
        "lost": len(want - set(ids)),
        "duplicated": sum(n - 1 for n in ids.values() if n > 1),
        "in_order": in_order,
        "first_after_return_s": round(first - back, 1),
        "drain_rate_per_s": round((len(got) - 1) / (last - first), 3) if last > first else None,
        "total_after_return_s": round(last - back, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20, help="incidents for the latency figure")
    parser.add_argument("--count", type=int, default=1000, help="announcements queued during the outage")
    parser.add_argument("--outage", type=float, default=600, help="receiver outage in seconds (issue: 600)")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-drain", action="store_true")
    args = parser.parse_args()
    doc: dict[str, object] = {"load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="notify-bench-") as tmp:
        if not args.skip_latency:
            doc["latency"] = asyncio.run(latency(Path(tmp) / "a", args.runs))
            print(json.dumps(doc["latency"]), flush=True)
        if not args.skip_drain:
            doc["drain"] = asyncio.run(drain(Path(tmp) / "b", args.count, args.outage))
            print(json.dumps(doc["drain"]), flush=True)
    doc["load_after"] = os.getloadavg()
    OUT.mkdir(exist_ok=True)
    (OUT / "notify.json").write_text(json.dumps(doc, indent=2))
    print(report(doc))
    drained: dict[str, Any] = doc.get("drain", {})  # type: ignore[assignment]
    return 1 if drained.get("lost") or drained.get("duplicated") else 0


def report(doc: dict[str, Any]) -> str:
    lines = ["| figure | value |", "| --- | --- |"]
    for section in ("latency", "drain"):
        for key, value in (doc.get(section) or {}).items():
            lines.append(f"| {section}.{key} | {value} |")
    load = ", ".join(f"{x:.2f}" for x in doc["load_before"])
    return "\n".join([*lines, f"\nload average before: {load}"])


if __name__ == "__main__":
    sys.exit(main())
