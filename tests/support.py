"""Helpers the tests and the benchmarks share: a free port, and waiting on a condition.

Nothing here imports pytest, so the benchmark scripts can use it too. Waiting is
always on a condition, polled, with a deadline; never a bare sleep.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The checkout: where config/, bench/ and the package live."""
SHIPPED_CONFIG = ROOT / "config" / "watcher.toml"
RULE = '[[rules]]\nname = "error"\nregex = "ERROR"\n'
"""One error rule, for configs whose tests are about something else (a config needs one)."""
RULES = [{"name": "error", "regex": "ERROR"}]
"""The same rule as a config override."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(
    what: str,
    pred: Callable[[], bool],
    timeout: float,
    *,
    alive: Callable[[], None] | None = None,
    ignore: tuple[type[BaseException], ...] = (OSError,),
    every: float = 0.05,
) -> float:
    """Block until `pred()` holds; the seconds it took. `alive` raises when a process it
    watches died; `ignore`d exceptions from `pred` count as "not yet"."""
    start = time.monotonic()
    while True:
        if alive is not None:
            alive()
        try:
            if pred():
                return time.monotonic() - start
        except ignore:
            pass
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], within: float = 20.0, what: str = "condition"
) -> None:
    """Poll `predicate` (plain or async) every 50 ms until it holds; TimeoutError after `within` s."""
    deadline = time.monotonic() + within
    while True:
        try:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
        except (OSError, ConnectionError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)
