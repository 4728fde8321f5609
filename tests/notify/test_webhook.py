"""webhook: what an answer means for the outbox, and Retry-After in both of its forms."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from watcher.notify.webhook import Delivery, parse_retry_after

NOW = 1_795_788_000.0


class TestDelivery:
    @pytest.mark.parametrize(
        ("status", "outcome"),
        [
            (200, "sent"),
            (204, "sent"),
            (None, "retry"),
            (408, "retry"),
            (429, "retry"),
            (500, "retry"),
            (503, "retry"),
            (400, "dead"),
            (403, "dead"),
            (404, "dead"),
            (410, "dead"),
            (302, "dead"),
        ],
    )
    def test_outcome(self, status: int | None, outcome: str) -> None:
        """2xx sent; no answer, 408, 429 and 5xx retried; any other answer dead-lettered."""
        assert Delivery(status).outcome == outcome


class TestRetryAfter:
    def test_seconds_and_dates(self) -> None:
        """Delta-seconds as given; an HTTP date as the time left until it, never negative."""
        assert parse_retry_after("7", NOW) == 7.0
        assert parse_retry_after(formatdate(NOW + 30, usegmt=True), NOW) == pytest.approx(30.0)
        assert parse_retry_after(formatdate(NOW - 30, usegmt=True), NOW) == 0.0

    @pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5"])
    def test_unreadable_is_none(self, value: str | None) -> None:
        """Anything else falls back to the sender's own backoff."""
        assert parse_retry_after(value, NOW) is None
