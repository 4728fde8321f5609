"""_LoopBody: a followed container's log body, read by the event loop (real sockets)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from watcher.sources.docker import follow
from watcher.sources.docker.follow import _LoopBody


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    yield ours, theirs
    ours.close()
    theirs.close()


async def settle() -> None:
    """Let the loop run its ready callbacks (a readable socket's among them)."""
    for _ in range(5):
        await asyncio.sleep(0)


class TestLoopBody:
    async def test_what_arrived_between_two_reads_is_one_block(self, pair: tuple[socket.socket, ...]) -> None:
        ours, theirs = pair
        body = _LoopBody(ours, asyncio.get_running_loop())
        theirs.sendall(b"a\n")
        await asyncio.sleep(0.01)
        theirs.sendall(b"b\n")
        await asyncio.sleep(0.01)
        assert await body.read() == b"a\nb\n"
        body.stop()

    async def test_a_slow_reader_holds_the_socket_back_and_loses_nothing(
        self, pair: tuple[socket.socket, ...], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Past HELD bytes read ahead, the socket is left unread (the writer blocks), then
        read on once the reader takes what is held: every byte, in order."""
        monkeypatch.setattr(follow, "HELD", 4096)
        ours, theirs = pair
        theirs.setblocking(False)
        body = _LoopBody(ours, asyncio.get_running_loop())
        sent = bytearray()
        for i in range(10_000):  # until the socket buffers are full: the reader stopped reading
            try:
                theirs.send(b"%08d\n" % i)
            except BlockingIOError:
                break
            sent += b"%08d\n" % i
            await settle()
        else:
            pytest.fail("the writer never blocked: the reader kept reading past HELD")
        theirs.shutdown(socket.SHUT_WR)
        got = bytearray()
        while block := await body.read():
            got += block
        assert got == sent

    async def test_stop_ends_a_pending_read(self, pair: tuple[socket.socket, ...]) -> None:
        ours, _ = pair
        body = _LoopBody(ours, asyncio.get_running_loop())
        pending = asyncio.ensure_future(body.read())
        await settle()
        body.stop()
        assert await asyncio.wait_for(pending, 5) == b""

    async def test_the_end_comes_after_the_last_data(self, pair: tuple[socket.socket, ...]) -> None:
        ours, theirs = pair
        body = _LoopBody(ours, asyncio.get_running_loop())
        theirs.sendall(b"last\n")
        theirs.close()
        await asyncio.sleep(0.01)
        assert await body.read() == b"last\n"
        assert await body.read() == b""
