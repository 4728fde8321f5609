"""Where a Docker sub-source stopped reading, and the de-duplication at the resume boundary.

Docker's `since` keeps lines stamped at or after it (to the nanosecond), so resuming
from the last delivered timestamp re-delivers the lines that share it. The cursor
therefore records that timestamp together with a hash of each line delivered at it,
and `Boundary` drops exactly those again (a multiset: two identical lines at the same
nanosecond are two lines). Past the first later line it is inactive and costs nothing.

A cursor string is JSON: `{"c": container id, "t": ns, "h": [hashes], "d": done}`;
`done` says the container had stopped and was read to its end, so its removal later
loses nothing.
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import json
from collections import Counter
from dataclasses import dataclass

from watcher.sources.docker.stream import Lines


def stamp_ns(stamp: bytes) -> int:
    """`2026-11-27T21:06:42.460104480Z` (Docker's RFC 3339 nano, UTC) -> ns since the epoch."""
    secs = _day(stamp[0:10]) + int(stamp[11:13]) * 3600 + int(stamp[14:16]) * 60 + int(stamp[17:19])
    frac = stamp[20:-1] if stamp[19:20] == b"." else b""
    return secs * 1_000_000_000 + int(frac.ljust(9, b"0")[:9] or b"0")


@functools.lru_cache(maxsize=64)
def _day(date: bytes) -> int:
    """Seconds from the epoch to the start of a `YYYY-MM-DD` day (a few per run: cached)."""
    return calendar.timegm((int(date[0:4]), int(date[5:7]), int(date[8:10]), 0, 0, 0, 0, 0, 0))


def since_param(ns: int) -> str:
    """The `since` query value for a nanosecond time (exact: no float rounding)."""
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def line_hash(stream: int, line: bytes) -> str:
    return hashlib.blake2b(bytes((stream,)) + line, digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class Cursor:
    container: str
    ns: int
    hashes: tuple[str, ...] = ()
    done: bool = False

    def dumps(self) -> str:
        if not (self.container.isalnum() and all(h.isalnum() for h in self.hashes)):
            return json.dumps({"c": self.container, "t": self.ns, "h": list(self.hashes), "d": self.done})
        # One per chunk delivered: ids and hashes are hex, so formatted here as json.dumps would.
        hashes = ", ".join(f'"{h}"' for h in self.hashes)
        done = "true" if self.done else "false"
        return f'{{"c": "{self.container}", "t": {self.ns}, "h": [{hashes}], "d": {done}}}'

    @classmethod
    def loads(cls, text: str) -> Cursor | None:
        try:
            raw = json.loads(text)
            return cls(str(raw["c"]), int(raw["t"]), tuple(str(h) for h in raw["h"]), bool(raw["d"]))
        except (ValueError, KeyError, TypeError):
            return None

    def after(self, run: Lines) -> Cursor:
        """The cursor once `run` (not empty) is delivered: only its lines at the last stamp are looked at."""
        ns, hashes = self.ns, list(self.hashes)
        data = run.data
        end = len(data) - 1  # the final newline
        while end > 0:
            start = data.rfind(b"\n", 0, end) + 1
            line = data[start:end]
            t = stamp_ns(line[: line.find(b" ")])
            if t < ns:
                break
            if t > ns:
                ns, hashes = t, []
            hashes.append(line_hash(run.stream, line))
            end = start - 1
        return Cursor(self.container, ns, tuple(hashes), False)


class Boundary:
    """Drops the lines a cursor says were already delivered; inactive after the first new one."""

    __slots__ = ("_ns", "_seen", "active")

    def __init__(self, cursor: Cursor | None) -> None:
        self.active = cursor is not None
        self._ns = cursor.ns if cursor is not None else 0
        self._seen = Counter(cursor.hashes) if cursor is not None else Counter[str]()

    def filter(self, runs: list[Lines]) -> list[Lines]:
        if not self.active:
            return runs
        kept: list[Lines] = []
        for i, run in enumerate(runs):
            if not self.active:
                kept += runs[i:]
                break
            lines = run.data.split(b"\n")
            lines.pop()
            new: list[bytes] = []
            for j, line in enumerate(lines):
                t = stamp_ns(line[: line.find(b" ")])
                if t > self._ns:
                    self.active = False
                    new += lines[j:]
                    break
                h = line_hash(run.stream, line) if t == self._ns else ""
                if self._seen[h] > 0:
                    self._seen[h] -= 1
                elif t == self._ns:
                    new.append(line)  # a line at the boundary nanosecond not delivered before
            if new:
                kept.append(Lines(run.stream, b"\n".join(new) + b"\n"))
        return kept
