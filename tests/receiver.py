"""A real webhook receiver on loopback: records every POST and answers as a test tells it to.

Used by the notify tests and by bench/notify_bench.py. Answers are taken from a
plan, one per request, then `default`: 200, 429 with Retry-After, 500, 404, or a
hang that lasts until the receiver is closed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.loopback import LoopbackServer


@dataclass(frozen=True, slots=True)
class Answer:
    status: int = 200
    retry_after: str | None = None
    hang: bool = False


OK = Answer()
HANG = Answer(hang=True)


@dataclass(frozen=True, slots=True)
class Request:
    monotonic: float
    wall: float
    path: str
    body: dict[str, Any]
    status: int | None
    """What it was answered; None for a hang."""


@dataclass
class Receiver(LoopbackServer):
    default: Answer = OK
    requests: list[Request] = field(default_factory=list)
    plan: deque[Answer] = field(default_factory=deque)

    def __post_init__(self) -> None:
        super().__init__()
        self._closing = asyncio.Event()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, *answers: Answer) -> None:
        """Answer the next requests with these, in order, then with `default` again."""
        self.plan.extend(answers)

    def delivered(self, path: str | None = None) -> list[dict[str, Any]]:
        """Bodies answered 2xx, in arrival order (optionally for one path only)."""
        return [
            r.body
            for r in self.requests
            if r.status is not None and 200 <= r.status < 300 and (path is None or r.path == path)
        ]

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/{tail:.*}", self._handle)

    def closing(self) -> None:
        self._closing.set()

    async def _handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        answer = self.plan.popleft() if self.plan else self.default
        status = None if answer.hang else answer.status
        self.requests.append(Request(time.monotonic(), time.time(), request.path, body, status))
        if answer.hang:
            await self._closing.wait()
            raise web.HTTPServiceUnavailable()
        headers = {"Retry-After": answer.retry_after} if answer.retry_after is not None else {}
        return web.Response(status=answer.status, text="ok" if answer.status < 300 else "no", headers=headers)
