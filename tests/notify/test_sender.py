"""The durable sender against a real HTTP receiver on loopback and a real SQLite outbox."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from email.utils import formatdate
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from tests.receiver import HANG, Answer, Receiver
from tests.support import wait_until
from watcher.details import OpenedDetail
from watcher.events import Kind, State
from watcher.metrics import Metrics
from watcher.notify.messages import Renderer
from watcher.notify.news import HeartbeatLine, HeartbeatNews, TransitionNews
from watcher.notify.sender import RetryPolicy, Sender
from watcher.notify.transport import WebhookTransport
from watcher.notify.webhook import Webhook
from watcher.store import Store

FAST = RetryPolicy(interval=0.05, initial=0.1, cap=0.4)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "state") as s:
        yield s


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@asynccontextmanager
async def sending(
    store: Store,
    registry: CollectorRegistry,
    url: str,
    policy: RetryPolicy = FAST,
    answer_within: float = 5,
    channel: str = "incident",
) -> AsyncIterator[Sender]:
    metrics = Metrics(registry, sources=[], rules=[])
    async with aiohttp.ClientSession() as http:
        sender = Sender(
            channel,
            WebhookTransport(Webhook(http, url, timeout=answer_within), Renderer("json")),
            outbox=store.outbox,
            metrics=metrics,
            policy=policy,
        )
        task = asyncio.create_task(sender.run())
        try:
            yield sender
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


def queue(store: Store, n: int, channel: str = "incident") -> list[int]:
    return [store.outbox.enqueue(channel, "opened", opened(f"P1-{i}").to_json(), 0.0) for i in range(n)]


def opened(incident: str) -> TransitionNews:
    return TransitionNews(incident, "t", Kind.OPENED, 1.0, State.INVESTIGATING, OpenedDetail())


def incidents(receiver: Receiver) -> list[str]:
    return [b["incident"] for b in receiver.delivered()]


def count(registry: CollectorRegistry, result: str) -> float:
    labels = {"channel": "incident", "result": result}
    return registry.get_sample_value("watcher_notifications_total", labels) or 0


def dead(store: Store) -> int:
    """Announcements dead-lettered on every channel."""
    return sum(b.dead for b in store.outbox.backlog().values())


class TestSender:
    async def test_in_order_and_paced(self, store: Store, registry: CollectorRegistry) -> None:
        """Every message once, in enqueue order, never two POSTs closer than the interval."""
        queue(store, 6)
        async with Receiver() as rx, sending(store, registry, rx.url(), RetryPolicy(interval=0.3)):

            async def all_sent() -> bool:
                return store.outbox.pending_count() == 0

            await wait_until(all_sent, what="six sent")
        assert incidents(rx) == [f"P1-{i}" for i in range(6)]
        gaps = [b.monotonic - a.monotonic for a, b in zip(rx.requests, rx.requests[1:], strict=False)]
        assert min(gaps) >= 0.29
        assert count(registry, "sent") == 6

    async def test_retry_after_seconds_is_honoured_and_blocks_the_queue(
        self, store: Store, registry: CollectorRegistry
    ) -> None:
        """429 Retry-After: 1 holds the head and everything behind it for a second, then order resumes."""
        queue(store, 3)
        async with Receiver() as rx, sending(store, registry, rx.url()):
            rx.answer(Answer(429, retry_after="1"))
            await wait_until(lambda: store.outbox.pending_count() == 0, what="all sent")
        assert [r.status for r in rx.requests] == [429, 200, 200, 200]
        assert rx.requests[1].monotonic - rx.requests[0].monotonic >= 0.95
        assert incidents(rx) == ["P1-0", "P1-1", "P1-2"]
        assert count(registry, "retried") == 1

    async def test_retry_after_http_date(self, store: Store, registry: CollectorRegistry) -> None:
        """Retry-After as an HTTP date two seconds ahead waits about that long (whole-second dates)."""
        queue(store, 1)
        async with Receiver() as rx, sending(store, registry, rx.url()):
            rx.answer(Answer(429, retry_after=formatdate(time.time() + 2, usegmt=True)))
            await wait_until(lambda: store.outbox.pending_count() == 0, what="sent")
        assert rx.requests[1].monotonic - rx.requests[0].monotonic >= 0.95

    async def test_5xx_and_hangs_retry_with_backoff(self, store: Store, registry: CollectorRegistry) -> None:
        """500, 503 and a timeout are retried with growing delays; the message arrives once."""
        queue(store, 1)
        async with Receiver() as rx, sending(store, registry, rx.url(), answer_within=0.3):
            rx.answer(Answer(500), Answer(503), HANG)
            await wait_until(lambda: store.outbox.pending_count() == 0, what="sent after retries")
        assert [r.status for r in rx.requests] == [500, 503, None, 200]
        assert incidents(rx) == ["P1-0"]
        assert count(registry, "retried") == 3 and count(registry, "sent") == 1

    async def test_4xx_is_dead_lettered_and_the_next_goes_on(
        self, store: Store, registry: CollectorRegistry
    ) -> None:
        """404 is not retried: counted dead, shown in the backlog, and the queue moves on."""
        queue(store, 2)
        async with Receiver() as rx, sending(store, registry, rx.url()):
            rx.answer(Answer(404))
            await wait_until(lambda: store.outbox.pending_count() == 0, what="queue drained")
        assert [r.status for r in rx.requests] == [404, 200]
        assert incidents(rx) == ["P1-1"]
        assert dead(store) == 1 and count(registry, "dead") == 1

    async def test_an_unreadable_row_is_dead_lettered_and_the_next_goes_on(
        self, store: Store, registry: CollectorRegistry
    ) -> None:
        """A queued payload this version cannot read is dead-lettered with why; the channel goes on."""
        store.outbox.enqueue("incident", "opened", {"incident": "P1-0", "state": "no-such-state"}, 0.0)
        queue(store, 2)
        async with Receiver() as rx, sending(store, registry, rx.url()):
            await wait_until(lambda: store.outbox.pending_count() == 0, what="queue drained")
        assert incidents(rx) == ["P1-0", "P1-1"]
        assert dead(store) == 1 and count(registry, "dead") == 1
        error = store.outbox.backlog()["incident"].last_error
        assert isinstance(error, str) and error.startswith("cannot read the queued announcement")

    async def test_connection_refused_retries_until_the_receiver_is_back(
        self, store: Store, registry: CollectorRegistry
    ) -> None:
        """Nobody listening: retried, nothing lost; the error kept on the row does not name the URL."""
        queue(store, 1)
        async with Receiver() as rx:
            url = rx.url()
        async with sending(store, registry, url):
            await wait_until(lambda: count(registry, "retried") >= 1, what="a failed attempt")
        rows = store.outbox.due("incident", float("inf"), 1)
        assert rows and rows[0].last_error and url not in rows[0].last_error
        # Issue case 10: one sentence, not aiohttp's `ClientConnectorError ... ssl:default [...]`.
        host_port = url.split("/")[2]
        assert rows[0].last_error == f"cannot connect to {host_port}: connection refused"

    async def test_wake_sends_a_new_row_at_once(self, store: Store, registry: CollectorRegistry) -> None:
        """An idle sender woken after a commit sends within the interval, not at some poll."""
        async with Receiver() as rx, sending(store, registry, rx.url()) as sender:
            await asyncio.sleep(0)
            queue(store, 1)
            sender.wake()
            await wait_until(lambda: len(rx.delivered()) == 1, within=2, what="delivered")


class TestRetryAfterCap:
    """Issue case 5: one 429 with `Retry-After: 86400` parked the channel for a day."""

    async def test_a_day_long_retry_after_is_cut_to_the_cap(
        self, store: Store, registry: CollectorRegistry
    ) -> None:
        """The receiver asks for a day; the sender retries after retry_after_max (here 1 s)."""
        queue(store, 2)
        policy = RetryPolicy(interval=0.05, initial=0.1, cap=0.4, retry_after_max=1.0)
        async with Receiver() as rx, sending(store, registry, rx.url(), policy):
            rx.answer(Answer(429, retry_after="86400"))
            await wait_until(lambda: store.outbox.pending_count() == 0, what="all sent")
        assert [r.status for r in rx.requests] == [429, 200, 200]
        assert 0.95 <= rx.requests[1].monotonic - rx.requests[0].monotonic < 5

    async def test_a_row_parked_for_a_day_by_an_older_watcher_is_due_within_the_cap(
        self, store: Store, registry: CollectorRegistry
    ) -> None:
        """A retry time stored a day ahead (an older version, a clock set back) waits at most the cap."""
        (row,) = queue(store, 1)
        store.outbox.mark_retry(row, 1, time.time() + 86400, "HTTP 429")
        policy = RetryPolicy(interval=0.05, initial=0.1, cap=0.4, retry_after_max=1.0)
        async with Receiver() as rx, sending(store, registry, rx.url(), policy):
            await wait_until(lambda: store.outbox.pending_count() == 0, within=10, what="sent")
        assert incidents(rx) == ["P1-0"]

    async def test_one_channels_backoff_never_delays_another(
        self, store: Store, registry: CollectorRegistry
    ) -> None:
        """incident waits out its 429; oncall, queued after it, is delivered at once."""
        queue(store, 1, "incident")
        queue(store, 1, "oncall")
        policy = RetryPolicy(interval=0.05, initial=0.1, cap=0.4, retry_after_max=60.0)
        async with (
            Receiver() as rx,
            sending(store, registry, rx.url(), policy) as _incident,
            sending(store, CollectorRegistry(), rx.url("/oncall"), policy, channel="oncall"),
        ):
            rx.answer(Answer(429, retry_after="86400"))
            await wait_until(lambda: store.outbox.pending_count("oncall") == 0, within=3, what="oncall sent")
            assert store.outbox.pending_count("incident") == 1
        assert [r.path for r in rx.requests if r.status == 200] == ["/oncall"]

    async def test_a_row_that_cannot_be_rendered_is_dead_lettered(
        self, store: Store, registry: CollectorRegistry
    ) -> None:
        """A heartbeat saved with an infinite streak (an older store) is dead-lettered, not a crash loop."""
        line = HeartbeatLine("P1-x", "t", State.VERIFYING, True, float("inf"), 900.0, 0.0, 0, (), ())
        store.outbox.enqueue("incident", "heartbeat", HeartbeatNews(1.0, (line,)).to_json(), 0.0)
        queue(store, 1)
        async with Receiver() as rx, sending(store, registry, rx.url()):
            await wait_until(lambda: store.outbox.pending_count() == 0, what="queue drained")
        assert incidents(rx) == ["P1-0"]
        error = store.outbox.backlog()["incident"].last_error
        assert isinstance(error, str) and error.startswith("cannot render the queued announcement")
