"""One POST to one webhook, and what its answer means for the outbox.

The daemon's senders and `watcher notify test` use this same code, and so do the
Slack app and PagerDuty transports for their API calls. Errors are redacted of the
URL (aiohttp puts it in its exception messages: the URL is the credential of an
incoming webhook) and of any other secret the caller names (a token, a routing key).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

import aiohttp

from watcher.redact import redact

Outcome = Literal["sent", "retry", "dead"]


@dataclass(frozen=True, slots=True)
class Delivery:
    status: int | None
    """The HTTP status, or None when no answer came (timeout, connection error)."""
    error: str | None = None
    """Why it failed; with a 2xx status, the receiver took the request but refused its content
    (an API that answers errors with 200, as Slack's does)."""
    retry_after: float | None = None
    """Seconds the receiver asked us to wait (429 Retry-After)."""

    @property
    def outcome(self) -> Outcome:
        if self.status is None:
            return "retry"
        if 200 <= self.status < 300:
            return "dead" if self.error else "sent"
        # 408 and 429 are "not now", 5xx "not my fault": try again. Any other answer
        # (a revoked webhook, a malformed body) will not change by repeating it.
        if self.status in (408, 429) or self.status >= 500:
            return "retry"
        return "dead"

    def describe(self) -> str:
        if self.status is None or (self.error and 200 <= self.status < 300):
            return self.error or "no answer"
        return f"HTTP {self.status}" + (f": {self.error}" if self.error else "")


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    return max(0.0, when.timestamp() - now)


def describe_http_error(exc: aiohttp.ClientError) -> str:
    """One line for a failed HTTP exchange, without aiohttp's repr (`... ssl:default [...]`)."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"cannot connect to {exc.host}:{exc.port}: its TLS certificate is not trusted"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port}: {_os_reason(exc.os_error)}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the receiver closed the connection without answering"
    if isinstance(exc, aiohttp.ClientOSError):
        return f"the connection failed: {_os_reason(exc)}"
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return "the receiver's answer was cut off or malformed"
    if isinstance(exc, aiohttp.InvalidURL):
        return "the URL is not one an HTTP client can use"
    return "the HTTP exchange failed"


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):  # its errno is a resolver code, not an errno
        return f"the name does not resolve ({str(exc.strerror).lower()})"
    if exc.errno and exc.errno > 0:
        return os.strerror(exc.errno).lower()
    return str(exc.strerror or "no reason given").lower()


class Webhook:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        headers: Mapping[str, str] | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        self._session = session
        self._url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        # The charset keeps Slack from warning and Teams from refusing bodies well under its limit.
        self._headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        self._secrets = [url, *secrets]

    async def post(self, body: Mapping[str, object]) -> Delivery:
        return (await self.call(body))[0]

    async def call(self, body: Mapping[str, object]) -> tuple[Delivery, str]:
        """POST `body` as JSON: what it means for the outbox, and the text of a 2xx answer."""
        data = json.dumps(body, separators=(",", ":")).encode()
        try:
            async with self._session.post(
                self._url, data=data, headers=self._headers, timeout=self._timeout, allow_redirects=False
            ) as resp:
                if 200 <= resp.status < 300:
                    return Delivery(resp.status), await resp.text(errors="replace")
                text = (await resp.text(errors="replace"))[:300]
                if 300 <= resp.status < 400:
                    return Delivery(resp.status, "redirected: configure the final webhook URL"), ""
                wait = parse_retry_after(resp.headers.get("Retry-After"), self._clock())
                return Delivery(resp.status, self.clean(text.strip()) or resp.reason, wait), ""
        except TimeoutError:
            return Delivery(None, f"no answer within {self._timeout.total:g}s"), ""
        except aiohttp.ClientError as exc:
            return Delivery(None, self.clean(describe_http_error(exc))), ""

    def clean(self, text: str) -> str:
        """`text` without the URL and the other secrets of this webhook."""
        return redact(text, self._secrets)
