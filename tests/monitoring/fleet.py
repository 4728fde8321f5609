"""A fleet on loopback for the monitoring tests: watchers (one per site, a file source each),
a Prometheus per site scraping its watcher, and a global Prometheus federating them.

All of it is real: `watcher run` as a user starts it, Debian's prometheus with the
shipped rules. Intervals are 1 s so a verdict travels watcher -> site -> global in a
few seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.prometheus import Prometheus, prometheus
from tests.support import ROOT, free_port, wait_for
from watcher.cli import app
from watcher.times import format_time

RULES = ROOT / "monitoring" / "rules"
WINDOW = 6
FEDERATE_MATCH = '{job="watcher",__name__=~"up|watcher_build_info|watcher_incident_.+|watcher:incident.+"}'
"""What the global Prometheus federates, as monitoring/examples/global.prometheus.yml does: what
the fleet rules and the fleet dashboard read, not every site's per-source series."""


@dataclass
class Watcher:
    """One site's watcher: `watcher run` in a subprocess, its log and config."""

    site: str
    root: Path
    webhook: str
    """Where its incident channel's announcements go (the dashboards show their deliveries)."""
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.root / "edge.log"

    @property
    def config(self) -> Path:
        return self.root / "watcher.toml"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        self.config.write_text(
            f"""state_dir = "{self.state_dir}"
site = "{self.site}"
[http]
listen = "127.0.0.1:{self.port}"
[resolution]
window = "{WINDOW}s"
blind_after = "2s"
[notify]
incident_webhook = "{self.webhook}"
[[sources]]
name = "edge"
kind = "file"
path = "{self.log}"
quiet_ok = true
[[rules]]
name = "level"
field = "level"
values = ["error"]
"""
        )

    def start(self) -> None:
        self.write_config()
        exe = Path(sys.executable).with_name("watcher")
        out = (self.root / "watcher.log").open("ab")
        self.proc = subprocess.Popen([str(exe), "run", "--config", str(self.config)], stderr=out)
        out.close()
        wait_for(f"the watcher of site {self.site}", self._healthy, 30, alive=self._alive)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def error(self, message: str = "stream dropped") -> float:
        """Append an error line stamped now; its time."""
        at = time.time()
        line = json.dumps({"ts": format_time(at), "level": "error", "msg": message})
        with self.log.open("a") as fh:
            fh.write(line + "\n")
        return at

    def incident(self, incident: str) -> dict[str, Any]:
        """The incident as this site's API reports it."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/status", timeout=5) as resp:
            doc = json.load(resp)
        return next(i for i in doc["incidents"] if i["id"] == incident)

    def _healthy(self) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as resp:
            return bool(resp.status == 200)

    def _alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"the watcher of {self.site} exited: {(self.root / 'watcher.log').read_text()}"
            )


@dataclass
class Fleet:
    watchers: dict[str, Watcher]
    sites: dict[str, Prometheus]
    global_: Prometheus
    config: Path
    """The CLI's config: the [[sites]] of the fleet."""

    def cli(self, *args: str) -> Any:
        """`watcher ARGS --config <fleet config>` in-process; the click Result."""
        return CliRunner().invoke(app, [*args, "--config", str(self.config)])


def site_prometheus_config(site: str, watcher_port: int) -> str:
    return f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
  external_labels: {{site: {site}}}
rule_files: ['{RULES / "watcher.rules.yml"}']
scrape_configs:
  - job_name: watcher
    static_configs: [{{targets: ['127.0.0.1:{watcher_port}']}}]
"""


def global_prometheus_config(site_ports: list[int], expected_sites: Path) -> str:
    targets = ", ".join(f"'127.0.0.1:{p}'" for p in site_ports)
    return f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ['{RULES / "watcher-fleet.rules.yml"}', '{expected_sites}']
scrape_configs:
  - job_name: federate
    honor_labels: true
    honor_timestamps: false
    metrics_path: /federate
    params: {{'match[]': ['{FEDERATE_MATCH}']}}
    static_configs: [{{targets: [{targets}]}}]
"""


class _Accept(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test's output is for its own failures."""


@contextmanager
def webhook() -> Iterator[str]:
    """A webhook on loopback that accepts every announcement; its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def fleet(tmp: Path, names: tuple[str, ...] = ("a", "b")) -> Iterator[Fleet]:
    """Watchers, site Prometheus servers and the global one, all up; everything stopped on exit."""
    with ExitStack() as stack:
        hook = stack.enter_context(webhook())
        watchers = {n: Watcher(n, tmp / n, hook) for n in names}
        for w in watchers.values():
            stack.callback(w.stop)
            w.start()
        config = tmp / "fleet.toml"
        config.write_text(
            "".join(
                f'[[sites]]\nname = "{n}"\napi_url = "http://127.0.0.1:{w.port}"\n'
                f'token_file = "{w.state_dir / "api-token"}"\n'
                for n, w in watchers.items()
            )
        )
        rules = CliRunner().invoke(app, ["sites", "rules", "--config", str(config)])
        assert rules.exit_code == 0, rules.output
        expected = tmp / "expected-sites.rules.yml"
        expected.write_text(rules.stdout)
        sites = {
            n: stack.enter_context(prometheus(tmp / f"prom-{n}", site_prometheus_config(n, w.port)))
            for n, w in watchers.items()
        }
        central = stack.enter_context(
            prometheus(
                tmp / "prom-global", global_prometheus_config([p.port for p in sites.values()], expected)
            )
        )
        yield Fleet(watchers, sites, central, config)
