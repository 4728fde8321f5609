"""A loopback fake of Slack's Web API (chat.postMessage, chat.update) that records every call.

It behaves as the real API is documented to: errors are HTTP 200 with `{"ok": false,
"error": ...}` (`not_authed`, `invalid_auth`, `channel_not_found`, `message_not_found`,
`no_text`), except rate limiting, which is HTTP 429 with `Retry-After` and
`{"ok": false, "error": "ratelimited"}`. Channels are known by ID and by name (a name
is answered with its ID, as Slack does); `ts` strings are unique per channel. A test
can rate-limit the next calls, enforce a minimum spacing of messages per channel,
delete a message, and read back each channel's conversation: the top-level messages
with every version of their text and their threads.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.loopback import LoopbackServer

TOKEN = "xoxb-1234-5678-fake-token"


@dataclass
class Message:
    channel: str
    ts: str
    versions: list[str]
    """Its text as posted, then after each chat.update."""
    thread_ts: str | None = None
    broadcast: bool = False
    blocks: list[Any] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Call:
    monotonic: float
    method: str
    body: dict[str, Any]
    answer: dict[str, Any]
    status: int


@dataclass
class SlackFake(LoopbackServer):
    channels: dict[str, str] = field(
        default_factory=lambda: {"C0INCIDENT": "incidents", "C0ONCALL": "oncall"}
    )
    """ID -> name."""
    min_interval: float = 0.0
    """When > 0, a second chat.postMessage to a channel sooner than this is answered 429."""
    calls: list[Call] = field(default_factory=list)
    messages: dict[tuple[str, str], Message] = field(default_factory=dict)
    ratelimit: deque[int] = field(default_factory=deque)
    """Retry-After seconds for the next calls, one per call."""

    def __post_init__(self) -> None:
        super().__init__()
        self._seq = 0
        self._last_post: dict[str, float] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def limit_next(self, *retry_after: int) -> None:
        self.ratelimit.extend(retry_after)

    def delete(self, channel: str, ts: str) -> None:
        del self.messages[(channel, ts)]

    def top_level(self, channel: str) -> list[Message]:
        return [m for m in self.messages.values() if m.channel == channel and m.thread_ts is None]

    def thread(self, channel: str, ts: str) -> list[Message]:
        return [m for m in self.messages.values() if m.channel == channel and m.thread_ts == ts]

    def answered(self, method: str, ok: bool = True) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.answer.get("ok") is ok]

    def transcript(self, channel: str) -> str:
        """The channel as a person scrolling it would read it, with each message's edits."""
        out = []
        for m in self.top_level(channel):
            out.append(f"[{m.ts}] {m.versions[0]}")
            out += [f"  (edited) {v}" for v in m.versions[1:]]
            for r in self.thread(channel, m.ts):
                flag = " (also sent to the channel)" if r.broadcast else ""
                out.append(f"  └ [{r.ts}]{flag} {r.versions[-1]}")
        return "\n".join(out)

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/api/{method}", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = json.loads(await request.read())
        status, answer, headers = self._answer(method, request.headers.get("Authorization"), body)
        self.calls.append(Call(time.monotonic(), method, body, answer, status))
        return web.json_response(answer, status=status, headers=headers)

    def _answer(
        self, method: str, auth: str | None, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if self.ratelimit:
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(self.ratelimit.popleft())}
        if auth is None:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if auth != f"Bearer {TOKEN}":
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        channel = self._channel_id(str(body.get("channel", "")))
        if channel is None:
            return 200, {"ok": False, "error": "channel_not_found"}, {}
        if not body.get("text") and not body.get("blocks"):
            return 200, {"ok": False, "error": "no_text"}, {}
        if method == "chat.postMessage":
            return self._post(channel, body)
        if method == "chat.update":
            return self._update(channel, body)
        return 200, {"ok": False, "error": "unknown_method"}, {}

    def _channel_id(self, given: str) -> str | None:
        if given in self.channels:
            return given
        by_name = {name: cid for cid, name in self.channels.items()}
        return by_name.get(given.lstrip("#"))

    def _post(self, channel: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        now = time.monotonic()
        if self.min_interval and now - self._last_post.get(channel, -1e9) < self.min_interval:
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}
        self._last_post[channel] = now
        parent = body.get("thread_ts")
        if parent is not None and (channel, parent) not in self.messages:
            return 200, {"ok": False, "error": "thread_not_found"}, {}
        self._seq += 1
        ts = f"{int(time.time())}.{self._seq:06d}"
        message = Message(channel, ts, [str(body.get("text", ""))], parent, bool(body.get("reply_broadcast")))
        message.blocks = list(body.get("blocks", []))
        self.messages[(channel, ts)] = message
        echo = {"type": "message", "text": message.versions[0], "ts": ts}
        if parent is not None:
            echo["thread_ts"] = parent
        return 200, {"ok": True, "channel": channel, "ts": ts, "message": echo}, {}

    def _update(self, channel: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        message = self.messages.get((channel, str(body.get("ts"))))
        if message is None:
            return 200, {"ok": False, "error": "message_not_found"}, {}
        message.versions.append(str(body.get("text", "")))
        if "blocks" in body:
            message.blocks = list(body["blocks"])
        text = message.versions[-1]
        return (
            200,
            {"ok": True, "channel": channel, "ts": message.ts, "text": text, "message": {"text": text}},
            {},
        )
