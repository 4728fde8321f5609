"""One attached `GET /containers/{id}/logs` response, read in raw blocks.

The SDK's own log stream is not used for reading: for a multiplexed body it drops
the stream id of each frame (stdout and stderr could not be kept apart), and for a
TTY container it yields one byte per iteration. Instead the request goes through the
SDK's HTTP session (so unix, tcp, TLS and ssh hosts all work as configured) and the
body is read with `read1`: whatever the socket has, up to 64 KiB, in one call,
which gives both backlog throughput and low follow latency. stream.py decodes it.

`open` and `read` block: call them in a worker thread. `close` may be called from
any thread and unblocks a pending `read` (it shuts the socket down, as the SDK's
CancellableStream does). Over a plain socket (unix, tcp, an ssh:// host's forwarded
socket; not TLS) the body is read by the event loop itself instead (`in_loop`,
`read_async`): no thread hand-off per read, which with a hundred followed containers
was most of the source's CPU. The socket then stays registered with the loop while the
body is read (_LoopBody), rather than once per read as `loop.sock_recv` does: two
epoll_ctl calls, a failed recv and a future less per line of a followed container.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
from collections import deque
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import docker
import requests

from watcher.sources.docker.stream import LogDecoder

READ = 64 * 1024
HELD = 1 << 20
"""Bytes read ahead of the consumer before the loop stops reading the socket for a while."""
LINGER = 0.001
"""Seconds a read waits for more of a backlog before handing over what it has."""


class _Readable(Protocol):
    def read1(self, size: int = ..., /) -> bytes: ...


class LogStream:
    """The logs of one container since a time (None: from its first line), following or not."""

    def __init__(
        self,
        api: docker.APIClient,
        container: str,
        *,
        since: str | None,
        tty: bool,
        follow: bool = True,
        max_line_bytes: int = 1 << 20,
    ) -> None:
        self._api = api
        self.container = container
        self._params: dict[str, str] = {"stdout": "1", "stderr": "1", "timestamps": "1"}
        if follow:
            self._params["follow"] = "1"
        if since is not None:
            self._params["since"] = since
        self._tty = tty
        self._max = max_line_bytes
        self._response: requests.Response | None = None
        self._fp: _Readable | None = None
        self._sock: socket.socket | None = None
        self._closed = False
        self._held = b""
        self._body: _LoopBody | None = None
        self._chunked = True
        self._eof = False
        self.live_ns: int | None = None
        """Lines stamped from here on (the engine's clock) were written after the request was
        answered: reading one means the backlog has been read. None: unknown."""
        self.decoder = LogDecoder(tty=tty, max_line_bytes=max_line_bytes)

    @property
    def complete(self) -> bool:
        """Docker ended the body (the terminating chunk, or EOF of an unchunked body): all read."""
        return self.decoder.done or (self._eof and not self._chunked and not self._closed)

    def open(self) -> None:
        """Send the request (blocking); raises docker.errors.APIError for a 4xx/5xx answer."""
        url = f"{self._api.base_url}/v{self._api.api_version}/containers/{self.container}/logs"
        response = self._api.get(url, params=self._params, stream=True, timeout=(30, None))
        self._response = response
        if response.status_code >= 400:
            try:
                response.raise_for_status()
            except requests.HTTPError as exc:
                raise docker.errors.create_api_error_from_http_exception(exc) from None
        self._chunked = response.headers.get("Transfer-Encoding", "").lower() == "chunked"
        self.live_ns = _after_date(response.headers.get("Date"))
        self.decoder = LogDecoder(tty=self._tty, chunked=self._chunked, max_line_bytes=self._max)
        body: Any = response.raw
        fp: Any = body._fp.fp  # the http.client body reader: bytes as they arrive
        self._fp = fp
        raw = getattr(fp, "raw", None)
        sock = getattr(raw, "_sock", None) or getattr(raw, "sock", None)
        if isinstance(sock, socket.socket):
            sock.settimeout(None)  # a quiet container is not an error
            self._sock = sock
        if self._closed:  # closed while the request was in flight
            self.close()

    def in_loop(self) -> bool:
        """Switch to reading in the event loop (after `open`), where the socket allows it:
        a plain one, not TLS. The bytes the HTTP reader already holds come first."""
        sock, fp = self._sock, self._fp
        if type(sock) is not socket.socket or fp is None or not hasattr(fp, "peek") or self._closed:
            return False
        sock.setblocking(False)
        held: bytes = fp.peek()  # what http.client read past the headers (no wait: non-blocking)
        self._held = fp.read1(len(held)) if held else b""
        self._body = _LoopBody(sock, asyncio.get_running_loop())
        return True

    async def read_async(self) -> bytes:
        """`read`, by the event loop (after `in_loop`): what arrived since the last call."""
        if self._held:
            data, self._held = self._held, b""
            return data
        if self._closed or self._body is None:
            return b""
        try:
            data = await self._body.read()
        except OSError:
            if self._closed:
                return b""
            raise
        self._eof = not data
        return data

    def read(self) -> bytes:
        """The next block of the body (blocking); b"" at its end or once closed.

        Docker writes a backlog in pieces of about 1 KiB: whatever more arrives within
        LINGER is read in the same call (up to READ), so a backlog costs one thread
        hand-off per 64 KiB rather than one per kilobyte, and a live line waits at
        most LINGER longer.
        """
        if self._fp is None or self._closed:
            return b""
        try:
            data = self._fp.read1(READ)
            if not data:
                self._eof = True
                return data
            if self._sock is None:
                return data
            parts, size = [data], len(data)
            while size < READ and select.select([self._sock], [], [], LINGER)[0]:
                more = self._fp.read1(READ - size)
                if not more:
                    break
                parts.append(more)
                size += len(more)
            return parts[0] if len(parts) == 1 else b"".join(parts)
        except (OSError, ValueError, AttributeError):
            # Closed under us (ValueError/AttributeError from a closed http.client reader).
            if self._closed:
                return b""
            raise

    def close(self) -> None:
        """Any thread, except after `in_loop`: then the loop's."""
        self._closed = True
        if self._body is not None:
            self._body.stop()  # before the descriptor is closed, and maybe reused
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        if self._response is not None:
            self._response.close()


class _LoopBody:
    """A non-blocking socket the loop reads whenever it is readable, until its end or `stop`.

    What it reads waits here for `read`; past HELD bytes the socket is left unread until
    `read` takes them (Docker then waits to write, as it would for a slow client).
    """

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self._sock, self._loop = sock, loop
        self._fd = sock.fileno()
        self._parts: deque[bytes] = deque()
        self._size = 0
        self._end = False
        self._error: OSError | None = None
        self._arrived = asyncio.Event()
        """Set when data, the end or an error arrives."""
        self._watching = False
        self._watch()

    def _watch(self) -> None:
        if not self._watching and not self._end:
            self._loop.add_reader(self._fd, self._readable)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self._loop.remove_reader(self._fd)
            self._watching = False

    def _readable(self) -> None:
        try:
            data = self._sock.recv(READ)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._error, data = exc, b""
        if data:
            self._parts.append(data)
            self._size += len(data)
            if self._size >= HELD:
                self._unwatch()
        else:
            self._end = True
            self._unwatch()
        self._arrived.set()

    async def read(self) -> bytes:
        """What was read and not yet taken; b"" at the end. Raises the socket's error."""
        while not self._parts and not self._end:
            self._arrived.clear()
            await self._arrived.wait()
        if not self._parts:
            if self._error is not None:
                raise self._error
            return b""
        data = self._parts.popleft() if len(self._parts) == 1 else b"".join(self._parts)
        self._parts.clear()
        self._size = 0
        self._watch()
        return data

    def stop(self) -> None:
        """Read no more; a pending `read` returns what there is, then the end."""
        self._end = True
        self._unwatch()
        self._arrived.set()


def _after_date(date: str | None) -> int | None:
    """The end (ns) of the second an HTTP `Date` header names (it is truncated to seconds)."""
    try:
        return (int(parsedate_to_datetime(date or "").timestamp()) + 1) * 1_000_000_000
    except (TypeError, ValueError):
        return None
