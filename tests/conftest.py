"""Shared test helpers: real services are required in CI, optional on a laptop."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, NoReturn

import aiohttp
import pytest

if TYPE_CHECKING:
    from tests.dockerd import Dockerd, Reach
    from tests.sshd import Sshd

from tests.daemon.fake_api import Api, FakeControl, running


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


@pytest.fixture(scope="session", autouse=True)
def _own_cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Compiled hyperscan databases (classify/hscache.py) go to the session's own directory,
    for this process and the watcher processes it starts, not to the user's ~/.cache."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if before is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Dockerd]:
    """One private Docker engine for the session (tests/dockerd.py); tests remove their containers."""
    from tests.dockerd import private_dockerd  # imported late: tests.dockerd uses require_binary

    with private_dockerd() as engine:
        yield engine


@pytest.fixture(scope="session")
def docker_sshd() -> Iterator[Sshd]:
    """One sshd on loopback for the session, in front of the docker engines (tests/sshd.py)."""
    from tests.sshd import Sshd

    server = Sshd()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["unix", "ssh"])
def reach(request: pytest.FixtureRequest) -> Reach:
    """Run the test with the engine reached by its socket, then as an ssh:// host."""
    from tests.dockerd import Reach

    return Reach(request.getfixturevalue("docker_sshd") if request.param == "ssh" else None)


@pytest.fixture
def control() -> FakeControl:
    """An in-memory daemon for the API tests (tests/daemon/fake_api.py)."""
    return FakeControl()


@pytest.fixture
async def api(control: FakeControl) -> AsyncIterator[Api]:
    """The API server in front of `control`, and a session to call it with."""
    async with running(control) as server, aiohttp.ClientSession() as http:
        yield http, f"http://127.0.0.1:{server.port}"
