"""A followed file's identity and resume point.

The cursor is `dev:ino:fplen:fp:offset`: the file's identity, a blake2b fingerprint
of its first `fplen` (at most 1024) bytes, and the offset just after the line's
newline. Identity plus fingerprint tell "the same file, grown" from "a new file that
reused the inode"; the offset never covers a held partial line, so a restart
re-reads it and delivers it once it is complete.
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import NamedTuple

FP_SIZE = 1024


class Cursor(NamedTuple):
    dev: int
    ino: int
    fplen: int
    fp: str
    offset: int

    @classmethod
    def parse(cls, text: str) -> Cursor | None:
        try:
            dev, ino, fplen, fp, offset = text.split(":")
            return cls(int(dev), int(ino), int(fplen), fp, int(offset))
        except ValueError:
            return None


def digest(head: bytes) -> str:
    return hashlib.blake2b(head, digest_size=8).hexdigest()


class OpenFile:
    """An open descriptor, its identity and fingerprint, and how far it has been read."""

    __slots__ = ("dev", "fd", "fp", "fplen", "ino", "line_end", "pos")

    def __init__(self, path: str) -> None:
        # O_NONBLOCK: opening a FIFO someone left at the path must not hang the event loop.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError("not a regular file")
            self.fd, self.dev, self.ino = fd, st.st_dev, st.st_ino
            self.pos = self.line_end = 0  # bytes read; end of the last complete line
            self.set_fp(os.pread(fd, FP_SIZE, 0))
        except BaseException:
            os.close(fd)
            raise

    def set_fp(self, head: bytes) -> None:
        self.fplen, self.fp = len(head), digest(head)

    def matches(self, cur: Cursor) -> bool:
        """Same file as the cursor's and still holding everything up to its offset."""
        head = os.pread(self.fd, FP_SIZE, 0)
        return (
            (self.dev, self.ino) == (cur.dev, cur.ino)
            and os.fstat(self.fd).st_size >= cur.offset
            and len(head) >= cur.fplen
            and digest(head[: cur.fplen]) == cur.fp
        )

    def head_ok(self) -> bool:
        """Whether the first bytes are unchanged; lengthens a short fingerprint as the file grows."""
        head = os.pread(self.fd, FP_SIZE, 0)
        if len(head) < self.fplen or digest(head[: self.fplen]) != self.fp:
            return False
        if len(head) > self.fplen:
            self.set_fp(head)
        return True

    def seek(self, offset: int) -> None:
        os.lseek(self.fd, offset, os.SEEK_SET)
        self.pos = self.line_end = offset

    def resume_point(self) -> Cursor:
        return Cursor(self.dev, self.ino, self.fplen, self.fp, self.line_end)
