"""Shared test helpers: real services are required in CI, optional on a laptop."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from tests.dockerd import Dockerd


def unavailable(reason: str, in_ci: str) -> NoReturn:
    """A service a test needs is missing: skip on a developer machine, fail in CI (CI=true)."""
    if os.environ.get("CI") == "true":
        pytest.fail(in_ci)
    pytest.skip(reason)


def require_binary(name: str) -> str:
    """The path of `name`; skips on a developer machine without it, fails in CI."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed", f"{name} is missing in CI: tests/services.sh installs it")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], within: float = 20.0, what: str = "condition"
) -> None:
    """Poll an async predicate every 50 ms until it holds; fail with `what` after `within` s."""
    deadline = time.monotonic() + within
    while True:
        try:
            if await predicate():
                return
        except (OSError, ConnectionError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Dockerd]:
    """One private Docker engine for the session (tests/dockerd.py); tests remove their containers."""
    from tests.dockerd import private_dockerd  # imported late: tests.dockerd uses require_binary

    with private_dockerd() as engine:
        yield engine
