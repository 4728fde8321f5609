"""Bytes into lines: bounded memory, truncation, partial lines."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.classify.framing import TRUNCATION_MARKER, Line, LineSplitter, decode


def reference(data: bytes, limit: int) -> tuple[list[Line], bytes]:
    """What splitting the whole input at once must give."""
    *lines, tail = data.split(b"\n")
    out = []
    for raw in lines:
        if len(raw) > limit:
            out.append(Line(raw[:limit], len(raw) - limit))
        else:
            out.append(Line(raw[:-1] if raw.endswith(b"\r") else raw))
    return out, tail


class TestLineSplitter:
    @settings(max_examples=300, deadline=None)
    @given(
        st.binary(max_size=400).map(lambda b: b.replace(b"x", b"\n")),
        st.integers(1, 40),
        st.lists(st.integers(1, 50), min_size=1, max_size=20),
    )
    def test_any_chunking_gives_the_same_lines(self, data: bytes, limit: int, sizes: list[int]) -> None:
        """Lines do not depend on where the reader's chunks happen to end."""
        splitter = LineSplitter(limit)
        got: list[Line] = []
        pos, i = 0, 0
        while pos < len(data):
            size = sizes[i % len(sizes)]
            got += splitter.feed(data[pos : pos + size])
            pos, i = pos + size, i + 1
        want, tail = reference(data, limit)
        assert got == want
        assert splitter.pending == len(tail)

    def test_partial_line_is_held_until_its_newline(self) -> None:
        """A writer in the middle of a line: nothing is delivered until the newline."""
        s = LineSplitter(100)
        assert s.feed(b"half a li") == []
        assert s.pending == 9
        assert s.feed(b"ne\nnext") == [Line(b"half a line")]

    def test_long_line_streams_through_bounded(self) -> None:
        """A 10 MB line keeps max_line_bytes bytes and counts the rest."""
        s = LineSplitter(1024)
        for _ in range(10):
            assert s.feed(b"a" * 1_000_000) == []
        assert s.pending == 10_000_000
        (line,) = s.feed(b"\n")
        assert len(line.data) == 1024 and line.cut == 10_000_000 - 1024

    def test_flush_returns_the_unfinished_line_once(self) -> None:
        """At the end of stdin the last line without newline is still a line."""
        s = LineSplitter(100)
        s.feed(b"a\nlast")
        assert s.flush() == Line(b"last")
        assert s.flush() is None

    def test_reset_forgets_a_partial_line(self) -> None:
        """After copytruncate the partial line of the old content must not leak into the new."""
        s = LineSplitter(100)
        s.feed(b"old partial")
        s.reset()
        assert s.feed(b"new\n") == [Line(b"new")]


class TestDecode:
    def test_non_utf8_is_replaced_and_reported(self) -> None:
        """Bad bytes never raise; the caller learns to count them."""
        assert decode(Line(b"ok \xff\xfe")) == ("ok \ufffd\ufffd", True)

    def test_truncated_line_carries_the_marker(self) -> None:
        """A cut line says how much was dropped."""
        text, bad = decode(Line(b"abc", 7))
        assert text == "abc" + TRUNCATION_MARKER.format(7) and not bad
