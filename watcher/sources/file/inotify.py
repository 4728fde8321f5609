"""Wake-ups for a followed file from inotify (Linux), so a line is read as it is written.

The follower still decides everything by reading and stat-ing (follow.py): inotify only
tells it *when* to look, so rotation, truncation and the evidence rules stay exactly as
they are, and the poll stays as the fallback (a missed event costs at most a poll
interval, never a line).

One inotify instance per followed file watches the file's *directory*, which sees
appends to the file at the path (IN_MODIFY with its name), its truncation, a rename
or removal, and a new file created in its place, without a watch per inode to keep
track of. Events for a child stay reported after it is unlinked (no IN_EXCL_UNLINK),
with its old name, so a rotated file still being written wakes the follower too; while
rotated files are read, any event in the directory wakes it. A queue overflow wakes it
as well. When the directory itself goes away the watch is gone: `arm()` adds it again
once there is a directory at that path.

Without inotify (not Linux, or `max_user_instances`/`max_user_watches` used up, or a
file system that sends no events such as NFS written by other hosts), the follower
polls every `poll_interval`, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import struct

log = logging.getLogger(__name__)

_IN_MODIFY, _IN_ATTRIB, _IN_CLOSE_WRITE = 0x2, 0x4, 0x8
_IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x40, 0x80, 0x100, 0x200
_IN_DELETE_SELF, _IN_MOVE_SELF, _IN_UNMOUNT, _IN_Q_OVERFLOW, _IN_IGNORED = (
    0x400,
    0x800,
    0x2000,
    0x4000,
    0x8000,
)
_IN_ONLYDIR = 0x01000000
_MASK = (
    _IN_MODIFY
    | _IN_ATTRIB
    | _IN_CLOSE_WRITE
    | _IN_MOVED_FROM
    | _IN_MOVED_TO
    | _IN_CREATE
    | _IN_DELETE
    | _IN_DELETE_SELF
    | _IN_MOVE_SELF
    | _IN_ONLYDIR
)
_GONE = _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_UNMOUNT | _IN_IGNORED
"""The directory watched is no longer the one at the path (or no longer watched)."""
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name
_READ = 64 * (_EVENT.size + 256)  # a read must fit at least one event with the longest name


class _Libc:
    """inotify_init1/add_watch/rm_watch through ctypes (the standard library has no binding)."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        self.init1 = libc.inotify_init1
        self.add_watch = libc.inotify_add_watch
        self.add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.rm_watch = libc.inotify_rm_watch

    @staticmethod
    def check(ret: int, what: str) -> int:
        if ret < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"{what}: {os.strerror(code)}")
        return ret


class Wake:
    """What a follower awaits between reads: an inotify event about its file, or the timeout."""

    def __init__(self, path: str) -> None:
        self._dir, base = os.path.split(os.path.abspath(path))
        self._name = os.fsencode(base)
        self._event = asyncio.Event()
        self._fd: int | None = None
        self._wd: int | None = None
        self.any_name = False
        """Wake on any name in the directory (rotated files are being read)."""
        try:
            self._libc: _Libc | None = _Libc()
            self._fd = self._libc.check(self._libc.init1(os.O_NONBLOCK | os.O_CLOEXEC), "inotify_init1")
        except (OSError, AttributeError) as exc:  # AttributeError: a libc without inotify
            self._libc = None
            log.info("%s: polling (no inotify: %s)", path, exc)
            return
        asyncio.get_running_loop().add_reader(self._fd, self._readable)

    @property
    def watching(self) -> bool:
        return self._wd is not None

    def arm(self) -> None:
        """Watch the directory, when not watching it yet (it may appear later)."""
        if self._fd is None or self._libc is None or self._wd is not None:
            return
        wd = self._libc.add_watch(self._fd, os.fsencode(self._dir or "."), _MASK)
        if wd < 0:
            code = ctypes.get_errno()
            if code not in (errno.ENOENT, errno.ENOTDIR):  # ENOSPC: max_user_watches
                log.info("%s: polling (inotify_add_watch: %s)", self._dir, os.strerror(code))
            return
        self._wd = wd

    async def wait(self, at_most: float) -> None:
        """Until something happened to the file, or `at_most` seconds; then ready for the next."""
        if not self._event.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(at_most):
                    await self._event.wait()
        self._event.clear()  # before the caller reads: what happens while it reads wakes it again

    def close(self) -> None:
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)  # first: fd numbers are reused
            os.close(self._fd)
            self._fd = self._wd = None

    def _readable(self) -> None:
        assert self._fd is not None
        while True:
            try:
                buf = os.read(self._fd, _READ)
            except BlockingIOError:
                return
            if not buf:
                return
            if self._handle(buf):
                self._event.set()

    def _handle(self, buf: bytes) -> bool:
        """Whether the events in `buf` concern the file (or may: an overflow)."""
        wake, off = False, 0
        while off < len(buf):
            wd, mask, _cookie, size = _EVENT.unpack_from(buf, off)
            name = buf[off + _EVENT.size : off + _EVENT.size + size].rstrip(b"\0")
            off += _EVENT.size + size
            if mask & _IN_Q_OVERFLOW:
                wake = True
            elif wd == self._wd and mask & _GONE:
                self._forget()
                wake = True
            elif wd == self._wd and (self.any_name or name == self._name):
                wake = True
        return wake

    def _forget(self) -> None:
        """The directory watched is gone or moved: drop the watch; arm() watches the path again."""
        if self._wd is not None and self._fd is not None and self._libc is not None:
            self._libc.rm_watch(self._fd, self._wd)  # EINVAL when the kernel already dropped it
        self._wd = None
