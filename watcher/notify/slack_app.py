"""Slack app mode: one living status message per incident and channel, every event in its thread.

The transport of one outbox lane (one Slack channel), called by the sender in order:

- a status (`StatusNews`) edits the incident's message with `chat.update`, or posts it
  with `chat.postMessage` when there is none yet; its channel ID and `ts` are stored
  (`store.slack_messages`) as soon as Slack answers, so a retry or a restart edits the
  same message instead of posting another;
- an event (`TransitionNews`) is a reply in that message's thread (`thread_ts`);
  resolution and regression are also shown in the channel (`reply_broadcast`). An
  event that comes before any status posts the message itself (the status behind it
  then turns it into the status);
- anything else (the on-call update in `line` mode, a test message) is a message of
  its own;
- a message that is gone (`message_not_found`: deleted, or the channel cleaned up) is
  posted anew and threaded under from then on;
- messages to the channel are at least `interval` apart (Slack allows about one per
  second per channel), also the two an event may need (its status message, its reply).

Slack answers its errors with HTTP 200 and `{"ok": false, "error": ...}`, except rate
limiting: HTTP 429 with `Retry-After`, which the sender honours like any webhook's.
Errors a retry can cure (Slack's own trouble) are retried; the rest (a revoked token,
a channel the bot is not in) are dead-lettered with Slack's error code and a hint.
The bot token is sent only in the Authorization header and redacted from every error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp

from watcher.errors import StoreError
from watcher.events import Kind
from watcher.notify.messages import Renderer
from watcher.notify.news import News, StatusNews, TransitionNews
from watcher.notify.webhook import Delivery, Webhook
from watcher.store.threads import SlackMessage, SlackMessages

log = logging.getLogger(__name__)

BROADCAST = frozenset({Kind.RESOLVED, Kind.REGRESSED})
"""Events that are also shown in the channel, not only in the incident's thread."""
RETRYABLE = frozenset(
    {"ratelimited", "rate_limited", "service_unavailable", "fatal_error", "internal_error", "request_timeout"}
)
LOST = frozenset({"message_not_found", "thread_not_found"})
"""The status message is gone: post a new one."""
HINTS = {
    "not_in_channel": "invite the app to the channel (/invite @app)",
    "channel_not_found": "check the channel ID, and invite the app if the channel is private",
    "invalid_auth": "the bot token is wrong: check token_file",
    "not_authed": "no bot token was sent: check token_file",
    "token_revoked": "the bot token was revoked: reinstall the app and update token_file",
    "missing_scope": "the app needs the chat:write scope",
    "is_archived": "the channel is archived",
}


@dataclass(frozen=True, slots=True)
class Answer:
    delivery: Delivery
    error: str | None = None
    """Slack's error code when it answered `ok: false`."""
    message: SlackMessage | None = None
    """The channel ID and ts of the message posted or edited."""


class SlackApi:
    """chat.postMessage and chat.update with a bot token."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        auth = {"Authorization": f"Bearer {token}"}
        self._post, self._update = (
            Webhook(session, base_url + method, timeout=timeout, clock=clock, headers=auth, secrets=[token])
            for method in ("chat.postMessage", "chat.update")
        )

    async def post(
        self, channel: str, body: Mapping[str, object], thread_ts: str | None = None, broadcast: bool = False
    ) -> Answer:
        call: dict[str, object] = {**body, "channel": channel, "unfurl_links": False, "unfurl_media": False}
        if thread_ts is not None:
            call |= {"thread_ts": thread_ts, "reply_broadcast": broadcast}
        return await self._call(self._post, call)

    async def update(self, message: SlackMessage, body: Mapping[str, object]) -> Answer:
        return await self._call(self._update, {**body, "channel": message.channel, "ts": message.ts})

    @staticmethod
    async def _call(method: Webhook, call: Mapping[str, object]) -> Answer:
        delivery, text = await method.call(call)
        if delivery.outcome != "sent":
            return Answer(delivery)
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            return Answer(Delivery(None, "Slack answered with something that is not its JSON; retrying"))
        if doc.get("ok") is True:
            ts, channel = doc.get("ts"), doc.get("channel")
            found = SlackMessage(channel, ts) if isinstance(ts, str) and isinstance(channel, str) else None
            return Answer(delivery, message=found)
        error = str(doc.get("error", "unknown_error"))
        if error in RETRYABLE:
            return Answer(Delivery(None, f"Slack: {error}"), error)
        hint = HINTS.get(error)
        reason = f"Slack refused it: {error}" + (f" ({hint})" if hint else "")
        return Answer(Delivery(delivery.status, method.clean(reason)), error)


class SlackApp:
    """The transport of one Slack channel (one outbox lane)."""

    def __init__(
        self,
        api: SlackApi,
        *,
        lane: str,
        channel: str,
        messages: SlackMessages,
        renderer: Renderer,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api = api
        self._lane = lane
        self._channel = channel
        self._messages = messages
        self._renderer = renderer
        self._interval = interval
        self._clock = clock
        self._last_post = -math.inf

    async def deliver(self, news: News) -> Delivery:
        if isinstance(news, StatusNews):
            return await self._status(news)
        if isinstance(news, TransitionNews):
            return await self._reply(news)
        return (await self._post(self._channel, self._renderer.body(news))).delivery

    async def _post(
        self, channel: str, body: Mapping[str, object], thread_ts: str | None = None, broadcast: bool = False
    ) -> Answer:
        wait = self._last_post + self._interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_post = time.monotonic()
        return await self._api.post(channel, body, thread_ts, broadcast)

    async def _status(self, news: StatusNews) -> Delivery:
        body = self._renderer.body(news)
        known = self._known(news.incident)
        if known is not None:
            answer = await self._api.update(known, body)
            if answer.error not in LOST:
                return answer.delivery
        return (await self._new(news.incident, body)).delivery

    async def _reply(self, news: TransitionNews) -> Delivery:
        body = self._renderer.body(news)
        parent = self._known(news.incident)
        for _ in range(2):  # once more under a new message when the old one is gone
            if parent is None:
                made = await self._new(news.incident, body)
                if made.message is None:
                    return made.delivery
                parent = made.message
            answer = await self._post(parent.channel, body, parent.ts, news.kind in BROADCAST)
            if answer.error not in LOST:
                return answer.delivery
            parent = None
        return answer.delivery

    def _known(self, incident: str) -> SlackMessage | None:
        try:
            return self._messages.get(self._lane, incident)
        except StoreError as exc:
            log.error("%s: cannot read the status message of %s: %s", self._lane, incident, exc)
            return None

    async def _new(self, incident: str, body: Mapping[str, object]) -> Answer:
        """Post the incident's status message and remember it."""
        answer = await self._post(self._channel, body)
        if answer.message is not None:
            try:
                self._messages.put(self._lane, incident, answer.message, self._clock())
            except StoreError as exc:
                # The next status posts another message: at least once, never lost.
                log.error("%s: cannot remember the status message of %s: %s", self._lane, incident, exc)
        return answer
