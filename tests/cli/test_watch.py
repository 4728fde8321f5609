"""`watcher status --watch` in a real pseudo-terminal, across a daemon killed and started again."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.daemon.harness import append, config_file, endpoint_of, process
from tests.support import wait_for
from watcher import config
from watcher.cli.client import Client
from watcher.times import format_time

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
COLUMNS, ROWS = 80, 40


class Terminal:
    """A command on a pty of COLUMNS x ROWS; `text()` is everything it drew, escapes removed."""

    def __init__(self, argv: list[str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")} | {"TERM": "xterm"}
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        self._master = master
        self._out = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:  # EIO: the other side is closed
                return
            if not data:
                return
            self._out += data

    def text(self) -> str:
        return ANSI.sub(b"", bytes(self._out)).decode("utf-8", "replace")

    def wait_for(self, what: str, pred: object, timeout: float = 30) -> None:
        def check() -> bool:
            assert self.proc.poll() is None, f"the command exited:\n{self.text()[-3000:]}"
            return bool(pred(self.text()))  # type: ignore[operator]

        try:
            wait_for(what, check, timeout)
        except TimeoutError:
            raise AssertionError(f"{what}; the terminal shows:\n{self.text()[-3000:]}") from None

    def close(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            os.close(self._master)
            self._reader.join(5)


@contextmanager
def terminal(argv: list[str]) -> Iterator[Terminal]:
    term = Terminal(argv)
    try:
        yield term
    finally:
        term.close()


def _config(tmp_path: Path, log: Path) -> Path:
    body = f"""
[[sources]]
name = "edge"
kind = "file"
path = "{log}"
[[rules]]
name = "db"
regex = 'ERROR'
"""
    return config_file(tmp_path, body, window=600)


def test_watch_keeps_running_through_a_daemon_restart(tmp_path: Path) -> None:
    """Killed daemon: "daemon unreachable, retrying"; started again: the streak view is back.
    The last error wraps at the terminal's width, and its own timestamp is not repeated."""
    log = tmp_path / "edge.log"
    tail = "the-very-end-of-the-line"
    log.write_text("")
    cfg = _config(tmp_path, log)
    client = Client(endpoint_of(config.load(cfg)))
    exe = str(Path(sys.executable).with_name("watcher"))
    with process(cfg) as daemon:
        wait_for("the daemon", lambda: bool(client.status()), 30, ignore=(OSError, Exception))
        client.open_incident("P1-watch", "checkout 5xx", [], None)
        client.mitigate("P1-watch", "rolled back")
        stamp = format_time(time.time()) or ""
        append(log, f"{stamp} {stamp} ERROR db timeout " + "waiting for the primary " * 4 + tail)
        wait_for("the error counted", lambda: client.status()["sources"][0]["errors"] == 1, 30)
        with terminal([exe, "status", "--watch", "--config", str(cfg)]) as term:
            term.wait_for("the incident on screen", lambda t: "P1-watch VERIFYING" in t)
            term.wait_for("the end of the long error, wrapped", lambda t: tail in t)
            error = next(line for line in term.text().splitlines() if "last error" in line)
            assert stamp not in error, "the message's own timestamp is shown beside its time"
            assert "edge: up, verified to" in term.text()
            daemon.kill()
            daemon.wait()
            term.wait_for("the restart notice", lambda t: "daemon unreachable since" in t and "retrying" in t)
            with process(cfg):
                mark = len(term.text())
                term.wait_for(
                    "the view after the restart",
                    lambda t: "watcher status at" in t[mark:] and "P1-watch VERIFYING" in t[mark:],
                    60,
                )
    assert term.proc.returncode in (0, 130), term.text()[-2000:]
