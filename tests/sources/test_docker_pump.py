"""Pump: a blocking read in a worker thread, a few reads ahead of the loop (real sockets)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from watcher.sources.docker.pump import Pump


def reader(sock: socket.socket) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            return sock.recv(4)
        except OSError:
            return b""

    return read


async def run(pump: Pump) -> asyncio.Future[None]:
    return asyncio.get_running_loop().run_in_executor(None, pump.work)


class TestPump:
    async def test_data_in_order_then_the_end(self) -> None:
        """What the worker reads comes out in order; b"" once the other end closes."""
        a, b = socket.socketpair()
        pump = Pump(reader(a))
        work = await run(pump)
        got = []
        b.sendall(b"one,")
        got.append(await pump.get())
        b.sendall(b"two,")
        b.close()
        while data := await pump.get():
            got.append(data)
        await work
        a.close()
        assert b"".join(got) == b"one,two,"

    async def test_error_raised_in_the_loop(self) -> None:
        """An exception of the read is raised by get()."""

        def fail() -> bytes:
            raise OSError("engine went away")

        pump = Pump(fail)
        work = await run(pump)
        with pytest.raises(OSError, match="engine went away"):
            await pump.get()
        await work

    async def test_worker_stops_reading_ahead(self) -> None:
        """The worker reads at most `limit` reads ahead, then waits; stop() ends it."""
        reads = 0

        def read() -> bytes:
            nonlocal reads
            reads += 1
            return b"x"

        pump = Pump(read, limit=3)
        work = await run(pump)
        assert await pump.get() == b"x"

        async def settled() -> None:
            while reads < 4:  # noqa: ASYNC110 - the worker is a thread: nothing to await
                await asyncio.sleep(0.01)

        await asyncio.wait_for(settled(), 10)
        assert reads == 4  # the one taken and three ahead
        pump.stop()
        await work
