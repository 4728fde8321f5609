"""Decode the body of `GET /containers/{id}/logs?timestamps=1` into whole lines per stream.

Pure and incremental: `LogDecoder.feed(bytes)` takes whatever the socket returned
(HTTP/1.1 chunked encoding included) and gives back, in order, runs of complete
lines in `docker logs -t` shape (`<RFC 3339 nano> <text>\\n`), tagged with their
stream. Bytes of an unfinished line or frame wait for the next feed.

Without a TTY the body is multiplexed: 8-byte headers (stream, length) before each
message. With a TTY it is the raw bytes, stdout only. Either way Docker's log
driver splits a line longer than 16 KiB into pieces of 16,384 bytes that all carry
the first piece's timestamp; only the last ends with a newline. The decoder joins
the pieces back into one line, keeping that timestamp once. A piece that never gets
its end (the container stopped mid-line) is closed with a newline when a piece with
another timestamp follows, or by `flush()`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

STDOUT, STDERR = 1, 2
STREAMS = {STDOUT: "stdout", STDERR: "stderr"}
PIECE = 16 * 1024
"""Bytes of text per piece of a long line (Docker's log copier buffer)."""
_HEADER = struct.Struct(">BxxxL")


@dataclass(frozen=True, slots=True)
class Lines:
    """Complete lines of one stream, in `docker logs -t` shape, ending with a newline."""

    stream: int
    data: bytes


class Dechunker:
    """HTTP/1.1 chunked transfer decoding, incremental."""

    __slots__ = ("_buf", "_crlf", "_left", "done")

    def __init__(self) -> None:
        self._buf = b""  # an unfinished chunk-size line
        self._left = 0  # bytes of the current chunk still to come
        self._crlf = 0  # bytes of the CRLF after the chunk still to skip
        self.done = False

    def feed(self, data: bytes) -> bytes:
        buf = self._buf + data if self._buf else data
        self._buf = b""
        out: list[bytes] = []
        pos, end = 0, len(buf)
        while pos < end and not self.done:
            if self._left:
                take = min(self._left, end - pos)
                out.append(buf[pos : pos + take] if take < end or pos else buf)
                pos += take
                self._left -= take
                if not self._left:
                    self._crlf = 2
            elif self._crlf:
                skip = min(self._crlf, end - pos)
                pos += skip
                self._crlf -= skip
            else:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    self._buf = buf[pos:]
                    break
                size = int(buf[pos:eol].split(b";", 1)[0], 16)
                pos = eol + 2
                if size == 0:
                    self.done = True
                self._left = size
        return out[0] if len(out) == 1 else b"".join(out)


class _Pieces:
    """One stream's unfinished long line: its pieces so far and their shared timestamp."""

    __slots__ = ("parts", "size", "stamp")

    def __init__(self, stamp: bytes, first: bytes) -> None:
        self.stamp, self.parts, self.size = stamp, [first], len(first)


class LogDecoder:
    """Chunked, multiplexed (or TTY) log body -> runs of whole lines per stream."""

    def __init__(self, *, tty: bool, chunked: bool = True, max_line_bytes: int = 1 << 20) -> None:
        self.tty = tty
        self._dechunk = Dechunker() if chunked else None
        self._max = max_line_bytes
        self._buf = b""
        self._long: dict[int, _Pieces] = {}

    @property
    def done(self) -> bool:
        """The server ended the body (the container stopped, or `follow` was off)."""
        return self._dechunk is not None and self._dechunk.done

    def feed(self, data: bytes) -> list[Lines]:
        if self._dechunk is not None:
            data = self._dechunk.feed(data)
        buf = self._buf + data if self._buf else data
        out: list[Lines] = []
        self._buf = self._tty(buf, out) if self.tty else self._frames(buf, out)
        return out

    def flush(self) -> list[Lines]:
        """Close unfinished lines (the stream ended): each gets its newline."""
        out: list[Lines] = []
        if self.tty and self._buf:
            self._piece(STDOUT, self._buf + b"\n", out)
        self._buf = b""
        for stream in list(self._long):
            self._close(stream, out)
        return out

    def _frames(self, buf: bytes, out: list[Lines]) -> bytes:
        pos, end = 0, len(buf)
        run: list[bytes] = []
        run_stream = 0
        while end - pos >= 8:
            stream, size = _HEADER.unpack_from(buf, pos)
            stop = pos + 8 + size
            if stop > end:
                break
            payload = buf[pos + 8 : stop]
            pos = stop
            if payload.endswith(b"\n") and stream not in self._long:
                if stream != run_stream and run:
                    out.append(Lines(run_stream, b"".join(run)))
                    run = []
                run_stream = stream
                run.append(payload)
                continue
            if run:
                out.append(Lines(run_stream, b"".join(run)))
                run = []
            self._piece(stream, payload, out)
        if run:
            out.append(Lines(run_stream, b"".join(run)))
        return buf[pos:]

    def _tty(self, buf: bytes, out: list[Lines]) -> bytes:
        """Raw bytes: a line is `stamp text\\n`, unless 16 KiB of text came without a newline."""
        pos = start = 0  # buf[start:pos] is a run of ordinary whole lines not yet passed on
        end = len(buf)
        while pos < end:
            space = buf.find(b" ", pos, pos + 64)
            if space < 0:
                break
            text = space + 1
            nl = buf.find(b"\n", text, text + PIECE)
            if nl < 0 and end - text < PIECE:
                break  # the rest of this line, or of its piece, is still to come
            if nl >= 0 and STDOUT not in self._long:
                pos = nl + 1
                continue
            if start < pos:
                out.append(Lines(STDOUT, buf[start:pos]))
            stop = nl + 1 if nl >= 0 else text + PIECE
            self._piece(STDOUT, buf[pos:stop], out)
            pos = start = stop
        if start < pos:
            out.append(Lines(STDOUT, buf[start:pos]))
        return buf[pos:]

    def _piece(self, stream: int, payload: bytes, out: list[Lines]) -> None:
        """A payload that is not simply a whole line: a piece of a long one, or its end."""
        space = payload.find(b" ")
        stamp = payload[:space] if space > 0 else b""
        cur = self._long.get(stream)
        if cur is not None and stamp != cur.stamp:
            self._close(stream, out)
            cur = None
        if cur is None:
            if payload.endswith(b"\n"):
                out.append(Lines(stream, payload))
                return
            self._long[stream] = _Pieces(stamp, payload[: self._max])
            return
        text = payload[space + 1 :]
        if cur.size < self._max:
            part = text[: self._max - cur.size]
            cur.parts.append(part)
            cur.size += len(part)
        if payload.endswith(b"\n"):
            if not cur.parts[-1].endswith(b"\n"):
                cur.parts.append(b"\n")
            del self._long[stream]
            out.append(Lines(stream, b"".join(cur.parts)))

    def _close(self, stream: int, out: list[Lines]) -> None:
        cur = self._long.pop(stream)
        out.append(Lines(stream, b"".join(cur.parts) + b"\n"))
