"""systemd's notify protocol (READY=1, WATCHDOG=1, STOPPING=1): one datagram, no dependency."""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Send `state` to $NOTIFY_SOCKET; False when not run by systemd with Type=notify."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):  # abstract namespace socket
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(addr)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True


def watchdog_interval() -> float | None:
    """How often to send WATCHDOG=1: half of WatchdogSec, as systemd recommends; None if off."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None
