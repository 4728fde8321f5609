"""The configured announcement lanes: one sender per lane, and `watcher notify test`.

A lane is one receiver: an incoming webhook (`incident`, `oncall`), a Slack app
channel (`slack-incident`, `slack-oncall`) or PagerDuty (`pagerduty`). Senders and
`notify test` build their requests from the same renderers and transports, so a
passing `notify test` means the daemon's messages reach the same place the same way.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from watcher.config import NotifyConfig
from watcher.config.integrations import PagerDutyConfig
from watcher.errors import NotifyError
from watcher.metrics import Metrics
from watcher.notify import pagerduty
from watcher.notify.announce import Lane
from watcher.notify.messages import Format, Renderer
from watcher.notify.news import CheckNews
from watcher.notify.sender import RetryPolicy, Sender
from watcher.notify.slack_app import SlackApi, SlackApp
from watcher.notify.transport import Transport, WebhookTransport
from watcher.notify.webhook import Delivery, Webhook
from watcher.store.outbox import Outbox
from watcher.store.threads import SlackMessages

PAGERDUTY = "pagerduty"


def renderer(cfg: NotifyConfig, fmt: Format | None = None) -> Renderer:
    return Renderer(fmt or cfg.format, dict(cfg.templates), cfg.secrets())


def slack_lane(channel: str) -> str:
    return f"slack-{channel}"


def lanes(cfg: NotifyConfig) -> list[Lane]:
    """The lanes beside the incoming webhooks (whose lanes are named after their channels)."""
    out: list[Lane] = []
    app = cfg.slack_app
    if app is not None:
        edits = app.heartbeat == "edit"
        out += [
            Lane(slack_lane(c), c, living=True, heartbeat_edits=edits, refresh=app.refresh)
            for c in app.channels()
        ]
    if cfg.pagerduty is not None:
        pd = cfg.pagerduty
        out.append(Lane(PAGERDUTY, kinds=pagerduty.kinds(_keys(pd), _changes(pd))))
    return out


def lane_names(cfg: NotifyConfig) -> list[str]:
    return [*cfg.webhooks(), *(lane.name for lane in lanes(cfg))]


def build_senders(
    cfg: NotifyConfig,
    session: aiohttp.ClientSession,
    *,
    outbox: Outbox,
    slack_messages: SlackMessages,
    metrics: Metrics,
    clock: Callable[[], float] = time.time,
) -> list[Sender]:
    policy = RetryPolicy(cfg.send_interval, cfg.retry_initial, cfg.retry_max, cfg.retry_after_max)
    transports: dict[str, tuple[Transport, RetryPolicy]] = {
        channel: (
            WebhookTransport(Webhook(session, url, timeout=cfg.timeout, clock=clock), renderer(cfg)),
            policy,
        )
        for channel, url in cfg.webhooks().items()
    }
    app = cfg.slack_app
    if app is not None:
        api = SlackApi(session, app.api_url, app.bot_token(), timeout=cfg.timeout, clock=clock)
        paced = RetryPolicy(app.send_interval, cfg.retry_initial, cfg.retry_max, cfg.retry_after_max)
        for channel, target in app.channels().items():
            name = slack_lane(channel)
            slack = SlackApp(
                api,
                lane=name,
                channel=target,
                messages=slack_messages,
                renderer=renderer(cfg, "slack"),
                clock=clock,
            )
            transports[name] = (slack, paced)
    if cfg.pagerduty is not None:
        transports[PAGERDUTY] = (_pagerduty(cfg, cfg.pagerduty, session, clock), policy)
    return [
        Sender(name, transport, outbox=outbox, metrics=metrics, policy=pace, clock=clock)
        for name, (transport, pace) in transports.items()
    ]


def _keys(pd: PagerDutyConfig) -> pagerduty.Keys:
    return pagerduty.Keys(*pd.routing_keys())


def _changes(pd: PagerDutyConfig) -> frozenset[str]:
    return frozenset(str(k) for k in pd.changes)


def _pagerduty(
    cfg: NotifyConfig, pd: PagerDutyConfig, session: aiohttp.ClientSession, clock: Callable[[], float]
) -> pagerduty.PagerDuty:
    return pagerduty.PagerDuty(
        session,
        pd.events_url,
        _keys(pd),
        severity=pd.severity,
        source=pd.source or socket.gethostname(),
        changes=_changes(pd),
        renderer=renderer(cfg, "json"),
        timeout=cfg.timeout,
        clock=clock,
    )


@dataclass(frozen=True, slots=True)
class TestResult:
    channel: str
    ok: bool
    status: int | None
    error: str | None

    def as_json(self) -> dict[str, object]:
        return {"channel": self.channel, "ok": self.ok, "status": self.status, "error": self.error}


async def send_test(cfg: NotifyConfig, host: str, clock: Callable[[], float] = time.time) -> list[TestResult]:
    """One test message to each configured lane, once (no retries); report each answer.

    PagerDuty gets a change event, which never pages anyone."""
    hooks = cfg.webhooks()
    if not hooks and cfg.slack_app is None and cfg.pagerduty is None:
        raise NotifyError(
            "no webhook configured and no integration: set [notify] incident_webhook or"
            " oncall_webhook (or *_file), [notify.slack_app] or [notify.pagerduty]"
        )
    results = []
    async with aiohttp.ClientSession() as session:
        tests: list[tuple[str, Callable[[CheckNews], Awaitable[Delivery]]]] = []
        for channel, url in hooks.items():
            hook = WebhookTransport(Webhook(session, url, timeout=cfg.timeout, clock=clock), renderer(cfg))
            tests.append((channel, hook.deliver))
        app = cfg.slack_app
        if app is not None:
            api = SlackApi(session, app.api_url, app.bot_token(), timeout=cfg.timeout, clock=clock)
            render = renderer(cfg, "slack")
            for channel, target in app.channels().items():
                tests.append((slack_lane(channel), _slack_test(api, target, render)))
        if cfg.pagerduty is not None:
            pd = _pagerduty(cfg, cfg.pagerduty, session, clock)
            tests.append((PAGERDUTY, pd.deliver))
        for name, send in tests:
            delivery = await send(CheckNews(clock(), name, host))
            ok = delivery.outcome == "sent"
            results.append(TestResult(name, ok, delivery.status, None if ok else delivery.describe()))
    return results


def _slack_test(api: SlackApi, target: str, render: Renderer) -> Callable[[CheckNews], Awaitable[Delivery]]:
    async def send(news: CheckNews) -> Delivery:
        return (await api.post(target, render.body(news))).delivery

    return send
