"""HTTP/1.1 over a socket, just enough for the daemon's local API: one request per connection.

The CLI's commands that talk to the daemon must start fast; `http.client` pulls in
the `email` package and `ssl`, aiohttp far more. The daemon is ours and local, so a
request here is a few lines: `Connection: close`, a JSON body with its length, and an
answer read to its end (by `Content-Length`, chunked, or until the server closes).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

MAX_ANSWER = 256 << 20
"""Bytes of an answer read at most: a long timeline is megabytes, never this."""


class WireError(OSError):
    """The answer is not HTTP (another program on the port), or came incomplete."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    """Names lowercased."""
    body: bytes


def request(
    host: str,
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str],
    body: bytes | None,
    timeout: float,
) -> Answer:
    """One request; OSError (ConnectionRefusedError, TimeoutError, WireError, ...) when it fails."""
    deadline = time.monotonic() + timeout
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    head = [f"{method} {path} HTTP/1.1", f"Host: {authority}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    data = ("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + (body or b"")
    # An ASCII host as bytes: a str would go through the idna codec, which costs an import.
    with socket.create_connection((host.encode("ascii"), port), timeout=timeout) as sock:  # type: ignore[arg-type]
        sock.sendall(data)
        raw = _read_all(sock, deadline)
    return _parse(raw)


def _read_all(sock: socket.socket, deadline: float) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out")
        sock.settimeout(remaining)
        chunk = sock.recv(1 << 16)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        size += len(chunk)
        if size > MAX_ANSWER:
            raise WireError(f"the answer is larger than {MAX_ANSWER >> 20} MiB")


def _parse(raw: bytes) -> Answer:
    head, sep, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, _, code = lines[0].partition(" ")
    if not sep or not version.startswith("HTTP/1.") or not code[:3].isdigit():
        raise WireError("the answer is not HTTP")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(rest)
    elif "content-length" in headers:
        length = int(headers["content-length"]) if headers["content-length"].isdigit() else -1
        if length < 0 or len(rest) < length:
            raise WireError("the answer ended early")
        body = rest[:length]
    else:
        body = rest
    return Answer(int(code[:3]), headers, body)


def _unchunk(data: bytes) -> bytes:
    out: list[bytes] = []
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            raise WireError("the answer ended early")
        size_text = data[pos:end].split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise WireError("the answer's chunked body is malformed") from None
        if size == 0:
            return b"".join(out)
        start = end + 2
        if len(data) < start + size:
            raise WireError("the answer ended early")
        out.append(data[start : start + size])
        pos = start + size + 2
