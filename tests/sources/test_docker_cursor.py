"""Cursor and Boundary: resuming at a nanosecond delivers each line exactly once."""

from __future__ import annotations

import calendar

from hypothesis import given
from hypothesis import strategies as st

from watcher.sources.docker.cursor import Boundary, Cursor, since_param, stamp_ns
from watcher.sources.docker.stream import STDERR, STDOUT, Lines

BASE = calendar.timegm((2026, 11, 27, 21, 0, 0, 0, 0, 0)) * 1_000_000_000


def stamp(ns: int) -> bytes:
    secs, frac = divmod(ns, 1_000_000_000)
    text = f"2026-11-27T21:{(secs % 3600) // 60:02d}:{secs % 60:02d}.{frac:09d}".rstrip("0").rstrip(".")
    return text.encode() + b"Z"


class TestStamps:
    def test_nano(self) -> None:
        """Docker's RFC 3339 nano stamp, trailing zeros trimmed, is read to the nanosecond."""
        assert stamp_ns(b"2026-11-27T21:00:01.5Z") == BASE + 1_500_000_000
        assert stamp_ns(b"2026-11-27T21:00:01Z") == BASE + 1_000_000_000
        assert stamp_ns(b"2026-11-27T21:00:00.000000007Z") == BASE + 7

    def test_since_exact(self) -> None:
        """`since` is written with all nine digits: no float rounding."""
        assert since_param(BASE + 7) == f"{BASE // 1_000_000_000}.000000007"

    def test_round_trip(self) -> None:
        """A cursor survives the store as text; garbage reads as None."""
        cur = Cursor("abc", 5, ("h1", "h2"), True)
        assert Cursor.loads(cur.dumps()) == cur
        assert Cursor.loads("{") is None


@given(
    st.lists(st.tuples(st.integers(0, 3), st.sampled_from([STDOUT, STDERR]), st.sampled_from([b"a", b"b"]))),
    st.integers(0, 40),
)
def test_resume_exactly_once(steps: list[tuple[int, int, bytes]], cut: int) -> None:
    """Stop after any line; re-reading from `since` = cursor time drops exactly what was delivered.

    Many lines share a nanosecond, some with identical text on the same stream.
    """
    lines: list[tuple[int, int, bytes]] = []
    ns = BASE
    for i, (dt, stream, text) in enumerate(steps):
        ns += dt
        lines.append((ns, stream, stamp(ns) + b" " + text + (b"%d" % i if i % 3 else b"")))
    cut = min(cut, len(lines))
    cur = Cursor("c", 0)
    for _, stream, line in lines[:cut]:
        cur = cur.after(Lines(stream, line + b"\n"))
    # What Docker sends again for since=cur.ns: every line stamped at or after it.
    again = [(s, line) for t, s, line in lines if t >= cur.ns] if cut else [(s, ln) for _, s, ln in lines]
    boundary = Boundary(cur if cut else None)
    got = [
        (run.stream, ln)
        for run in boundary.filter([Lines(s, line + b"\n") for s, line in again])
        for ln in run.data.split(b"\n")[:-1]
    ]
    assert got == [(s, line) for _, s, line in lines[cut:]]
