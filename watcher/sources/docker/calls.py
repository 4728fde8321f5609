"""Calls to one Docker engine from the event loop: the SDK blocks, so each runs in the
source's own thread pool.

Every attached container keeps one read pending, which would exhaust
asyncio.to_thread's default pool (min(32, cores + 4) threads) with a handful of
containers; the pool is sized for MAX_STREAMS.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import requests
from docker.errors import DockerException

from watcher.sources.docker.transport import Link

MAX_STREAMS = 512
"""Containers followed at once (each holds a connection and a worker thread)."""
LOST = (DockerException, OSError, requests.RequestException)
"""What a failed request raises: the engine may be gone, or one request failed."""
_T = TypeVar("_T")


class EngineCalls:
    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=MAX_STREAMS, thread_name_prefix=f"docker-{name}")
        self._link: Link | None = None

    def use(self, link: Link) -> None:
        """Requests from now on go over `link` (one per attempt to reach the engine)."""
        self._link = link

    async def call(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    async def api(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """An SDK request, once the link says the engine may be there: the SDK leaks the socket
        of a refused connect (a ResourceWarning per retry while the engine is away)."""
        if self._link is not None:
            self._link.ready()  # raises OSError, handled as "engine lost"
        return await self.call(fn, *args, **kwargs)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
