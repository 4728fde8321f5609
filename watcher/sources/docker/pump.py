"""A blocking `read()` run in one worker thread, a few reads ahead of the event loop.

A followed container sends a line or two at a time. Handing each read to a thread pool
and back (a Future per read, the pool's queue, the result chained to the loop) cost
more than decoding the line; with a hundred containers it was most of the source's CPU.
Here the worker reads on by itself and the loop is woken only when it waits for data,
so a burst of reads across many containers wakes it once. The worker stops LIMIT reads
ahead (memory stays bounded by LIMIT x 64 KiB per stream) until the loop catches up.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable

LIMIT = 4
"""Reads the worker may be ahead of the loop."""


class Pump:
    def __init__(self, read: Callable[[], bytes], limit: int = LIMIT) -> None:
        """`read()` blocks; b"" is the end (it also returns b"" once its stream is closed)."""
        self._read = read
        self._limit = limit
        self._items: deque[bytes | BaseException] = deque()
        self._room = threading.Condition()
        self._waiter: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._stopped = False

    def work(self) -> None:
        """The worker thread's part: read until the end, an error, or stop()."""
        while True:
            try:
                data = self._read()
            except BaseException as exc:  # raised again in the loop, by get()
                self._put(exc)
                return
            self._put(data)
            if not data:
                return
            with self._room:
                while len(self._items) >= self._limit and not self._stopped:
                    self._room.wait()
                if self._stopped:
                    return

    async def get(self) -> bytes:
        """The next read's data (b"": the end); raises what the read raised."""
        while True:
            with self._room:
                if self._items:
                    item = self._items.popleft()
                    self._room.notify()
                    break
                waiter = self._waiter = self._loop.create_future()
            await waiter
        if isinstance(item, BaseException):
            raise item
        return item

    def stop(self) -> None:
        """Let a worker waiting for room end (close the stream too, to end a pending read)."""
        with self._room:
            self._stopped = True
            self._room.notify_all()

    def _put(self, item: bytes | BaseException) -> None:
        with self._room:
            self._items.append(item)
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._loop.call_soon_threadsafe(_wake, waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
