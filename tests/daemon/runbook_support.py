"""What the runbook's end-to-end tests share: a config with both webhooks and a short [runbook],
a log that keeps failing, and reading /metrics and the loopback receiver."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from tests.daemon.harness import config_file, edge_source, stamp
from tests.receiver import Receiver

INCIDENT, ONCALL = "/incident", "/oncall"


def runbook_config(
    tmp: Path,
    rx: Receiver,
    *,
    window: float = 1.0,
    runbook: str = "",
    source: str | None = None,
    notify: str = "",
) -> Path:
    """Both channels to `rx` (paced fast), the `[runbook]` keys given, one file source (`edge`
    at tmp/edge.log unless `source` is given)."""
    log = tmp / "edge.log"
    log.touch()
    body = f"""
[notify]
incident_webhook = "{rx.url(INCIDENT)}"
oncall_webhook = "{rx.url(ONCALL)}"
send_interval = "10ms"
retry_initial = "0.1s"
retry_max = "0.3s"
shutdown_grace = "0.5s"
{notify}
[runbook]
{runbook}
{source if source is not None else edge_source(log)}"""
    return config_file(tmp, body, window=window, blind_after=None)


def texts(rx: Receiver, path: str, containing: str = "") -> list[str]:
    """The text of each message delivered to `path` that contains `containing`, in order."""
    return [b.get("text", "") for b in rx.delivered(path) if containing in b.get("text", "")]


@contextlib.asynccontextmanager
async def failing(log: Path, every: float = 0.2) -> AsyncIterator[None]:
    """Append an error line to `log` every `every` seconds until the block ends: nothing resolves."""

    async def write() -> None:
        while True:
            with log.open("a") as fh:
                fh.write(f'{{"ts":"{stamp(time.time())}","level":"error","msg":"keyframe lost"}}\n')
            await asyncio.sleep(every)

    task = asyncio.create_task(write())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def metric(port: int, sample: str) -> float | None:
    """The value of one sample line (`name{labels}`) on the daemon's /metrics; None when absent."""
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        body = await resp.text()
    for line in body.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def metrics_text(port: int) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        return await resp.text()
