"""The configured announcement channels: one sender per webhook, and `watcher notify test`.

Both build their requests from the same Renderer and Webhook, so a passing
`notify test` means the daemon's messages reach the same place the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from watcher.config import NotifyConfig
from watcher.errors import NotifyError
from watcher.metrics import Metrics
from watcher.notify.messages import Renderer
from watcher.notify.news import CheckNews
from watcher.notify.sender import RetryPolicy, Sender
from watcher.notify.webhook import Webhook
from watcher.store.outbox import Outbox


def renderer(cfg: NotifyConfig) -> Renderer:
    return Renderer(cfg.format, dict(cfg.templates), tuple(cfg.webhooks().values()))


def build_senders(
    cfg: NotifyConfig,
    session: aiohttp.ClientSession,
    *,
    outbox: Outbox,
    metrics: Metrics,
    clock: Callable[[], float] = time.time,
) -> list[Sender]:
    policy = RetryPolicy(cfg.send_interval, cfg.retry_initial, cfg.retry_max, cfg.retry_after_max)
    render = renderer(cfg)
    return [
        Sender(
            channel,
            Webhook(session, url, timeout=cfg.timeout, clock=clock),
            outbox=outbox,
            metrics=metrics,
            renderer=render,
            policy=policy,
            clock=clock,
        )
        for channel, url in cfg.webhooks().items()
    ]


@dataclass(frozen=True, slots=True)
class TestResult:
    channel: str
    ok: bool
    status: int | None
    error: str | None

    def as_json(self) -> dict[str, object]:
        return {"channel": self.channel, "ok": self.ok, "status": self.status, "error": self.error}


async def send_test(cfg: NotifyConfig, host: str, clock: Callable[[], float] = time.time) -> list[TestResult]:
    """POST one test message to each configured channel, once (no retries); report each answer."""
    hooks = cfg.webhooks()
    if not hooks:
        raise NotifyError(
            "no webhook configured: set [notify] incident_webhook or oncall_webhook (or *_file)"
        )
    render = renderer(cfg)
    results = []
    async with aiohttp.ClientSession() as session:
        for channel, url in hooks.items():
            body = render.body(CheckNews(clock(), channel, host))
            delivery = await Webhook(session, url, timeout=cfg.timeout, clock=clock).post(body)
            ok = delivery.outcome == "sent"
            results.append(TestResult(channel, ok, delivery.status, None if ok else delivery.describe()))
    return results
