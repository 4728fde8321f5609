"""One way to open a Docker engine client, and one way to say why it could not be reached.

Used by the docker source, `check-config` and snapshots alike. The client is given a
unix:// or tcp:// URL: an ssh:// host is reached through a forwarded local socket
(transport.py), never through the SDK's own SSH transports.
"""

from __future__ import annotations

import docker
import requests
from docker.errors import APIError, DockerException

_HINTS: tuple[tuple[type[OSError], str], ...] = (
    (FileNotFoundError, "no Docker socket there (is dockerd running?)"),
    (PermissionError, "permission denied on the socket (is the watcher's user in the docker group?)"),
    (ConnectionRefusedError, "connection refused (is dockerd running and listening there?)"),
)


def open_client(docker_host: str, *, timeout: float, max_pool_size: int = 10) -> docker.DockerClient:
    """A client for `docker_host` (unix:// or tcp://; blocking: never on the event loop that serves
    an ssh:// link); raises DockerException when it cannot even be set up."""
    return docker.DockerClient(base_url=docker_host, timeout=int(timeout), max_pool_size=max_pool_size)


def describe(exc: BaseException) -> str:
    """A one-line reason for an SRE, not the SDK's nested repr of urllib3 errors."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        for kind, hint in _HINTS:
            if isinstance(cause, kind):
                return hint
        nested = [a for a in cause.args if isinstance(a, BaseException)]
        cause = cause.__cause__ or cause.__context__ or (nested[-1] if nested else None)
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, APIError):  # not its str: `409 Client Error for http+docker://localhost/v1.47/...`
        return _refusal(exc)
    if isinstance(exc, DockerException | requests.RequestException):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return str(exc) or type(exc).__name__


def _refusal(exc: APIError) -> str:
    """`the Docker engine answered 409 Conflict: container 3f2a is not running`."""
    status = exc.status_code
    reason = exc.response.reason if exc.response is not None and exc.response.reason else ""
    explanation = exc.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    said = f": {str(explanation).strip()}" if explanation else ""
    return f"the Docker engine answered {status or '?'}{' ' + reason if reason else ''}{said}"
