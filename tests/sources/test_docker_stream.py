"""LogDecoder: HTTP chunking, frame demux, long lines in pieces, TTY bodies; any read boundaries."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.sources.docker.stream import PIECE, STDERR, STDOUT, Dechunker, Lines, LogDecoder

STAMP = b"2026-11-27T21:06:42.460104480Z"


def chunked(body: bytes, size: int = 1000) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    parts = [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces]
    return b"".join(parts) + b"0\r\n\r\n"


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def docker_pieces(stream: int, stamp: bytes, text: bytes) -> bytes:
    """How Docker's log driver frames one line: 16 KiB pieces with the same stamp, the last with \\n."""
    line = text + b"\n"
    return b"".join(frame(stream, stamp + b" " + line[i : i + PIECE]) for i in range(0, len(line), PIECE))


def decode(body: bytes, cuts: list[int], *, tty: bool = False) -> list[Lines]:
    dec = LogDecoder(tty=tty)
    out: list[Lines] = []
    prev = 0
    for cut in [*sorted(cuts), len(body)]:
        out += dec.feed(body[prev:cut])
        prev = cut
    out += dec.flush()
    assert dec.done
    return out


def per_stream(runs: list[Lines]) -> dict[int, list[bytes]]:
    lines: dict[int, list[bytes]] = {}
    for run in runs:
        assert run.data.endswith(b"\n")
        lines.setdefault(run.stream, []).extend(run.data.split(b"\n")[:-1])
    return lines


class TestDechunker:
    @given(st.binary(max_size=3000), st.lists(st.integers(0, 4000), max_size=8), st.integers(1, 700))
    def test_any_split(self, body: bytes, cuts: list[int], size: int) -> None:
        """The body comes out whole whatever the chunk sizes and read boundaries."""
        wire = chunked(body, size)
        d, out, prev = Dechunker(), [], 0
        for cut in [*sorted(c % (len(wire) + 1) for c in cuts), len(wire)]:
            out.append(d.feed(wire[prev:cut]))
            prev = cut
        assert b"".join(out) == body and d.done

    def test_chunk_extension(self) -> None:
        """A chunk-size line may carry an extension after `;`."""
        assert Dechunker().feed(b"3;x=y\r\nabc\r\n0\r\n\r\n") == b"abc"


class TestFrames:
    def test_streams_kept_apart(self) -> None:
        """stdout and stderr lines come out tagged with their stream, in order."""
        body = frame(1, STAMP + b" a\n") + frame(1, STAMP + b" b\n") + frame(2, STAMP + b" e\n")
        runs = decode(chunked(body), [])
        assert runs == [Lines(STDOUT, STAMP + b" a\n" + STAMP + b" b\n"), Lines(STDERR, STAMP + b" e\n")]

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(
            st.tuples(st.sampled_from([STDOUT, STDERR]), st.integers(0, 3 * PIECE + 5)),
            min_size=1,
            max_size=6,
        ),
        st.lists(st.integers(0, 10**6), max_size=6),
    )
    def test_long_lines_reassembled(self, lines: list[tuple[int, int]], cuts: list[int]) -> None:
        """A line Docker split into 16 KiB pieces is one line again, with its stamp once."""
        body = b""
        expect: dict[int, list[bytes]] = {}
        for n, (stream, size) in enumerate(lines):
            text = (b"%d:" % n + b"x" * size)[: max(size, 1)]
            body += docker_pieces(stream, STAMP, text)
            expect.setdefault(stream, []).append(STAMP + b" " + text)
        wire = chunked(body, 4096)
        got = per_stream(decode(wire, [c % (len(wire) + 1) for c in cuts]))
        assert got == expect

    def test_unfinished_piece_closed_by_next_stamp(self) -> None:
        """A piece never finished (the container stopped mid-line) ends where another stamp begins."""
        other = b"2026-11-27T21:06:43Z"
        body = frame(1, STAMP + b" half") + frame(1, other + b" next\n")
        assert per_stream(decode(chunked(body), [])) == {STDOUT: [STAMP + b" half", other + b" next"]}

    def test_bounded(self) -> None:
        """A line longer than max_line_bytes is cut, not held whole."""
        dec = LogDecoder(tty=False, chunked=False, max_line_bytes=100)
        (run,) = dec.feed(docker_pieces(1, STAMP, b"y" * (3 * PIECE)))
        assert len(run.data) <= 101 and run.data.endswith(b"\n")


class TestTty:
    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.integers(0, 2 * PIECE + 3), min_size=1, max_size=5), st.lists(st.integers(0, 10**6)))
    def test_raw_lines(self, sizes: list[int], cuts: list[int]) -> None:
        """A TTY body (no frame headers, CRLF) gives the same lines, long ones joined."""
        body, expect = b"", []
        for n, size in enumerate(sizes):
            text = (b"%d:" % n + b"t" * size)[: max(size, 1)] + b"\r"
            line = text + b"\n"
            body += b"".join(STAMP + b" " + line[i : i + PIECE] for i in range(0, len(line), PIECE))
            expect.append(STAMP + b" " + text)
        wire = chunked(body, 3000)
        assert per_stream(decode(wire, [c % (len(wire) + 1) for c in cuts], tty=True)) == {STDOUT: expect}
