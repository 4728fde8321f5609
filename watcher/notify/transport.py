"""How one outbox lane reaches its receiver: the one thing that differs between lanes.

The sender (sender.py) owns order, pacing, retries and the outbox; a transport only
turns one announcement into the calls its receiver understands and says what came of
them, as a `Delivery`. An incoming webhook is one POST of a rendered body
(`WebhookTransport`); the Slack app (slack_app.py) and PagerDuty (pagerduty.py) are
transports too.
"""

from __future__ import annotations

from typing import Protocol

from watcher.notify.messages import Renderer
from watcher.notify.news import News
from watcher.notify.webhook import Delivery, Webhook


class Transport(Protocol):
    async def deliver(self, news: News) -> Delivery:
        """Deliver `news` once; repeating a delivery after a failure must be harmless."""
        ...


class WebhookTransport:
    """An incoming webhook (Slack, Mattermost, Teams Workflows, any JSON receiver)."""

    def __init__(self, webhook: Webhook, renderer: Renderer) -> None:
        self._webhook = webhook
        self._renderer = renderer

    async def deliver(self, news: News) -> Delivery:
        return await self._webhook.post(self._renderer.body(news))
