"""Prometheus and Alertmanager as plain processes on loopback, for the alerting tests.

Each test gets its own ports and directories: a fresh `--storage.path` matters, since
Alertmanager's notification log would otherwise swallow the first notification of a
group it already notified. Both are Debian's (prometheus 2.42, prometheus-alertmanager
0.25); `tests/services.d/prometheus.sh` installs them.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

from tests.conftest import require_binary
from tests.support import free_port, wait_until


class Exporter:
    """A scrape target serving `novavms_recorder_up <up>`; the test flips `up`."""

    def __init__(self) -> None:
        self.up = 0
        self.port = free_port()

    async def _metrics(self, request: web.Request) -> web.Response:
        text = f"# TYPE novavms_recorder_up gauge\nnovavms_recorder_up {self.up}\n"
        return web.Response(text=text, content_type="text/plain")

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[Exporter]:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        try:
            yield self
        finally:
            await runner.cleanup()


RULES = """groups:
  - name: novavms-test
    interval: 1s
    rules:
      - alert: NovaVmsRecorderDown
        expr: novavms_recorder_up == 0
        for: 0s
        labels: {severity: P1, service: recorder}
        annotations:
          summary: "Recorder {{ $labels.instance }} is down"
          runbook_url: "https://runbooks.example/recorder"
"""


def alertmanager_yml(webhook: str, token_file: Path, repeat: str) -> str:
    return f"""route:
  receiver: novavms-watcher
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: {repeat}
receivers:
  - name: novavms-watcher
    webhook_configs:
      - url: {webhook}
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: {token_file}
"""


@asynccontextmanager
async def process(*argv: str) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)


async def ready(port: int) -> bool:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/-/ready") as resp:
        return resp.status == 200


@asynccontextmanager
async def alerting(
    tmp: Path, webhook: str, token_file: Path, exporter: Exporter, repeat: str = "1h"
) -> AsyncIterator[int]:
    """Alertmanager posting to `webhook` and Prometheus evaluating RULES against `exporter`;
    yields Alertmanager's port."""
    am_bin = require_binary("prometheus-alertmanager")
    prom_bin = require_binary("prometheus")
    am_port, prom_port = free_port(), free_port()
    (tmp / "am.yml").write_text(alertmanager_yml(webhook, token_file, repeat))
    (tmp / "rules.yml").write_text(RULES)
    (tmp / "prom.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [rules.yml]\n"
        "alerting:\n  alertmanagers:\n    - api_version: v2\n"
        f"      static_configs: [{{targets: ['127.0.0.1:{am_port}']}}]\n"
        "scrape_configs:\n  - job_name: fake-exporter\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{exporter.port}']}}]\n"
    )
    am = (
        am_bin,
        f"--config.file={tmp / 'am.yml'}",
        f"--storage.path={tmp / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{am_port}",
        f"--web.external-url=http://127.0.0.1:{am_port}",
        "--cluster.listen-address=",
    )
    prom = (
        prom_bin,
        f"--config.file={tmp / 'prom.yml'}",
        f"--storage.tsdb.path={tmp / 'prom-data'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
        "--rules.alert.resend-delay=1s",
    )
    async with process(*am), process(*prom):
        await wait_until(lambda: ready(am_port), within=30, what="alertmanager ready")
        await wait_until(lambda: ready(prom_port), within=30, what="prometheus ready")
        yield am_port


async def notifications(am_port: int) -> float:
    """Webhook notifications Alertmanager has sent (attempts that the receiver accepted)."""
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{am_port}/metrics") as resp:
        text = await resp.text()
    total = failed = 0.0
    for line in text.splitlines():
        if line.startswith('alertmanager_notifications_total{integration="webhook"}'):
            total = float(line.split()[-1])
        elif line.startswith('alertmanager_notifications_failed_total{integration="webhook"'):
            failed += float(line.split()[-1])
    return total - failed
