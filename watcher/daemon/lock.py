"""One daemon per state directory: an advisory lock on `<state_dir>/watcher.pid`.

Two daemons on one store would read every source twice and post every announcement
twice. The lock is `flock` on a file holding the holder's PID: the kernel releases it
when the process ends, however it ends (a crash or SIGKILL leaves no stale lock), and
a second daemon learns who holds it from the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from watcher.errors import StateDirBusy

LOCK_FILE = "watcher.pid"


class StateLock:
    """Held from `acquire` until `release` (or the process's end)."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def acquire(cls, state_dir: Path) -> StateLock:
        """The lock of `state_dir` (created 0700 if missing); StateDirBusy naming the holder's PID."""
        if not state_dir.exists():
            state_dir.mkdir(mode=0o700, parents=True)
            os.chmod(state_dir, 0o700)  # mkdir's mode is masked by the umask
        path = state_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StateDirBusy(
                f"another watcher (PID {holder}) is running on state_dir {state_dir}; stop it first"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the descriptor drops the flock
        self._fd = None
