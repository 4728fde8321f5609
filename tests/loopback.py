"""A loopback HTTP server for a test's fakes (webhooks, Slack, PagerDuty, Teams): `async with`,
then `port`. Subclasses add their routes; what they record is theirs."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

from aiohttp import web


class LoopbackServer:
    def __init__(self) -> None:
        self.port = 0
        """0 until started: then the port it listens on (set before starting to reuse one)."""
        self._runner: web.AppRunner | None = None

    def routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    def closing(self) -> None:
        """Called before the server stops (to release handlers that hang on purpose)."""

    async def __aenter__(self) -> Self:
        app = web.Application()
        self.routes(app.router)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.closing()
        if self._runner is not None:
            await self._runner.cleanup()
