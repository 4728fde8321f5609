"""Bytes into lines, with bounded memory: the one place that splits and truncates.

A line longer than `max_line_bytes` keeps its first `max_line_bytes` bytes and
the rest is dropped as it streams by, so a 10 MB line never sits in memory;
`Line.cut` says how many bytes were dropped. A final line without its newline
is held back until the newline arrives (`pending`), because a writer may still
be in the middle of it.
"""

from __future__ import annotations

from dataclasses import dataclass

TRUNCATION_MARKER = "…[truncated {} bytes]"


@dataclass(frozen=True, slots=True)
class Line:
    data: bytes
    """The line without its newline (and without a trailing CR), at most max_line_bytes."""
    cut: int = 0
    """Bytes dropped from the end because the line was too long."""


def decode(line: Line) -> tuple[str, bool]:
    """Text of a line and whether it had bytes that are not UTF-8 (replaced by U+FFFD)."""
    try:
        text = line.data.decode("utf-8")
        bad = False
    except UnicodeDecodeError:
        text = line.data.decode("utf-8", errors="replace")
        bad = True
    if line.cut:
        text += TRUNCATION_MARKER.format(line.cut)
    return text, bad


class LineSplitter:
    """Incremental splitter: `feed()` chunks, get complete lines back."""

    def __init__(self, max_line_bytes: int) -> None:
        self.max_line_bytes = max_line_bytes
        self._buf = bytearray()
        self._cut = 0  # bytes dropped so far from the line being assembled

    @property
    def pending(self) -> int:
        """Bytes of an unfinished last line held back (including any dropped)."""
        return len(self._buf) + self._cut

    def feed(self, chunk: bytes) -> list[Line]:
        out: list[Line] = []
        if self._buf or self._cut:
            nl = chunk.find(b"\n")
            if nl < 0:
                self._take(chunk, 0, len(chunk))
                return out
            self._take(chunk, 0, nl)
            out.append(self._finish())
            chunk = chunk[nl + 1 :]
        # The common case, whole lines inside one chunk, goes through C-level split.
        parts = chunk.split(b"\n")
        tail = parts.pop()
        limit = self.max_line_bytes
        for part in parts:
            if len(part) > limit:
                out.append(Line(part[:limit], len(part) - limit))
            elif part.endswith(b"\r"):
                out.append(Line(part[:-1]))
            else:
                out.append(Line(part))
        self._take(tail, 0, len(tail))
        return out

    def flush(self) -> Line | None:
        """The unfinished last line, for a stream that has ended for good (EOF of stdin)."""
        if not self._buf and not self._cut:
            return None
        return self._finish()

    def reset(self) -> None:
        """Forget a partial line (the file it came from was truncated or replaced)."""
        self._buf.clear()
        self._cut = 0

    def _take(self, chunk: bytes, start: int, end: int) -> None:
        room = self.max_line_bytes - len(self._buf)
        n = end - start
        if n <= room:
            self._buf += chunk[start:end]
        else:
            self._buf += chunk[start : start + room]
            self._cut += n - room

    def _finish(self) -> Line:
        data = bytes(self._buf)
        cut = self._cut
        if data.endswith(b"\r") and not cut:
            data = data[:-1]
        self._buf.clear()
        self._cut = 0
        return Line(data, cut)
