"""A real daemon's timeline as the postmortem needs it, and snapshots taken by the CLI on it."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.daemon.harness import append, config_file, edge_source, endpoint_of, process, stamp
from tests.support import wait_for
from watcher import config
from watcher.cli.client import Client
from watcher.names import default_user
from watcher.schema import TimelineDoc

WINDOW = 2.0
WATCHER = str(Path(sys.executable).with_name("watcher"))


def cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WATCHER, *args, "--config", str(cfg)], capture_output=True, text=True, timeout=60)


def manual_snapshots(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        body = resp.read().decode()
    line = next(ln for ln in body.splitlines() if ln.startswith('watcher_snapshots_total{trigger="manual"}'))
    return float(line.rsplit(" ", 1)[1])


def kinds(doc: TimelineDoc) -> list[str]:
    return [e["kind"] for e in doc["events"]]


def up(client: Client) -> bool:
    try:
        return bool(client.status())
    except Exception:
        return False


def test_timeline_for_the_postmortem_and_cli_snapshots_on_it(tmp_path: Path) -> None:
    """Snapshot (recorded and counted), mitigation by whom, RESOLVED, a late error's REGRESSION
    after it with its recording time, a summary; a snapshot taken while the daemon is down is
    queued and recorded when it is back."""
    log = tmp_path / "edge.log"
    append(log, f'{{"ts":"{stamp(time.time())}","level":"info","msg":"up"}}')
    cfg = config_file(tmp_path, edge_source(log, quiet_ok=True), window=WINDOW)
    settings = config.load(cfg)
    client = Client(endpoint_of(settings))
    with process(cfg) as daemon:
        wait_for("the daemon", lambda: up(client), 30)
        client.open_incident("P1-tl", "checkout 5xx", [], None)
        taken = cli(cfg, "snapshot", "--incident", "P1-tl", "--reason", "before rollback")
        assert taken.returncode == 0, taken.stderr
        assert manual_snapshots(settings.http.port) == 1
        cli(cfg, "incident", "mitigate", "P1-tl", "--action", "rolled back api")
        wait_for("resolved", lambda: client.status()["incidents"][0]["state"] == "resolved", 30)
        resolved_at = client.status()["incidents"][0]["resolved_at"] or ""
        # Read late: stamped 1.5 s before it is written, after the resolution.
        wait_for("time past the resolution", lambda: time.time() - 1.5 > _epoch(resolved_at) + 0.1, 10)
        append(log, f'{{"ts":"{stamp(time.time() - 1.5)}","level":"error","msg":"db timeout"}}')
        wait_for("regressed", lambda: "regressed" in kinds(client.timeline("P1-tl")), 30)
        daemon.kill()
        daemon.wait()
    queued = cli(cfg, "snapshot", "--incident", "P1-tl", "--reason", "while the daemon was down")
    assert queued.returncode == 0 and "queued for it in" in queued.stderr, queued.stderr
    with process(cfg):
        wait_for("the daemon again", lambda: up(client), 30)
        wait_for(
            "the queued snapshot recorded", lambda: kinds(client.timeline("P1-tl")).count("snapshot") == 2, 30
        )
        assert manual_snapshots(settings.http.port) == 1
        assert not list((tmp_path / "state" / "spool").iterdir())
        cli(cfg, "incident", "close", "P1-tl", "--reason", "verified")
        md = cli(cfg, "timeline", "P1-tl").stdout
        doc = client.timeline("P1-tl")
    order = [k for k in kinds(doc) if k != "source_down"]
    # After the regression the streak starts again, and resolves again WINDOW later.
    assert order[:5] == ["opened", "snapshot", "mitigated", "resolved", "regressed"], order
    assert order[-1] == "closed" and order.count("snapshot") == 2, order
    rows = md.splitlines()
    me = default_user()
    assert f"| Opened | {_day(rows)}" in md and f"by {me} |" in md
    assert any(r.startswith("| Mitigated |") and "time to mitigate" in r for r in rows)
    assert "| Regressions | 1 |" in rows
    assert any(r.startswith("| Resolved |") and "time to resolve" in r for r in rows)
    mitigation = next(r for r in rows if "Mitigation: rolled back api" in r)
    assert mitigation.endswith(f"| {me} |")
    regression = next(r for r in rows if "REGRESSION" in r)
    assert "(recorded " in regression and "db timeout" in regression
    assert rows.index(next(r for r in rows if "| RESOLVED" in r)) < rows.index(regression)
    snapshots = [r for r in rows if "Evidence snapshot taken by hand" in r]
    assert len(snapshots) == 2 and all("sha256:" in r and r.endswith(f"| {me} |") for r in snapshots)


def _epoch(rfc3339: str) -> float:
    from watcher.times import parse_time

    return parse_time(rfc3339)


def _day(rows: list[str]) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())
