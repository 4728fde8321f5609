"""The reason an SRE reads when a Docker engine cannot be reached, from real failed connections."""

from __future__ import annotations

import gc
import socket
import warnings
from pathlib import Path

import pytest
from docker.errors import APIError, DockerException

from tests.dockerd import Dockerd
from tests.support import free_port
from watcher.sources.docker.host import describe, open_client


def failure(host: str) -> str:
    with pytest.raises(DockerException) as info, warnings.catch_warnings():
        # The SDK leaves the socket of its failed version probe to the garbage collector.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            open_client(host, timeout=5).close()
        finally:
            gc.collect()
    return describe(info.value)


class TestDescribe:
    def test_missing_socket(self, tmp_path: Path) -> None:
        """No socket file: says dockerd is probably not running, not a urllib3 repr."""
        assert failure(f"unix://{tmp_path / 'docker.sock'}") == "no Docker socket there (is dockerd running?)"

    def test_socket_nobody_listens_on(self, tmp_path: Path) -> None:
        """A stale socket file (dockerd died): connection refused."""
        path = tmp_path / "docker.sock"
        with socket.socket(socket.AF_UNIX) as stale:
            stale.bind(str(path))
        assert failure(f"unix://{path}").startswith("connection refused")

    def test_tcp_port_closed(self) -> None:
        """tcp:// to a closed port: connection refused too."""
        assert failure(f"tcp://127.0.0.1:{free_port()}").startswith("connection refused")

    @pytest.mark.docker
    def test_an_engine_refusal_is_its_answer_not_the_sdks_url(self, docker_engine: Dockerd) -> None:
        """Issue case 10: `404 Client Error for http+docker://...` becomes what the engine said."""
        dc = docker_engine.client()
        try:
            with pytest.raises(APIError) as info:
                dc.api.inspect_image("no-such-image:for-the-watcher")  # type: ignore[no-untyped-call]
        finally:
            dc.close()
        text = describe(info.value)
        # What follows the colon is dockerd's own sentence, as it wrote it.
        assert text.lower().startswith(
            "the docker engine answered 404 not found: no such image: no-such-image"
        )
        assert "http+docker" not in text and "Client Error" not in text

    def test_other_errors_keep_their_first_line(self) -> None:
        """Anything else is its own message, one line."""
        assert describe(DockerException("odd\nsecond line")) == "odd"
