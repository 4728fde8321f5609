"""The durable sender: one task per outbox lane (a webhook, a Slack app channel, PagerDuty),
draining it in order through the lane's transport (transport.py).

- In order: only the head of the channel is ever sent; a message waiting for its
  retry holds back every later one (the store's `due()` enforces it).
- At most one POST per `interval` (Slack allows about one message per second per
  webhook), measured on the monotonic clock.
- 2xx: marked sent at once. 429: retried after `Retry-After` (seconds or an HTTP
  date) but never later than `retry_after_max`, or the backoff when it has none: a
  receiver cannot park a channel for a day. 5xx, 408, timeouts and connection errors:
  retried with capped exponential backoff and jitter. Any other answer is
  dead-lettered: logged, counted, shown in `status`; the next message goes on.
- Retry times are wall-clock times in the store, so a restart keeps honouring them;
  one further away than the longest wait the policy allows (a row from an older
  watcher, a clock that jumped back) is taken as due at that longest wait.
- Each channel has its own task and its own head of line: one channel's backoff
  never delays another.
- A status (the Slack app's living message) superseded by a newer one for the same
  incident queued behind it is coalesced: marked done without a call, since the
  newer one will say more.
- A row that cannot be read or rendered is dead-lettered, never retried forever.

At least once: a crash (or the shutdown grace running out) after the receiver
accepted a message but before `mark_sent` committed sends that one message again
on the next start. Nothing is ever lost.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from watcher.errors import StoreError
from watcher.metrics import Metrics
from watcher.notify.news import News, StatusNews, TransitionNews, news_from_json
from watcher.notify.transport import Transport
from watcher.notify.webhook import Delivery
from watcher.store.outbox import Outbox
from watcher.store.rows import OutboxRow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    interval: float = 1.0
    """Minimum seconds between two POSTs to the same webhook."""
    initial: float = 1.0
    cap: float = 60.0
    retry_after_max: float = 300.0
    """The longest a 429's Retry-After is honoured."""

    @property
    def longest(self) -> float:
        """No retry is ever scheduled further away than this."""
        return max(self.cap, self.retry_after_max)

    def retry_after(self, asked: float) -> float:
        return min(max(asked, 0.0), self.retry_after_max)

    def backoff(self, attempts: int, rand: float) -> float:
        """Delay before attempt `attempts + 1`: doubling from `initial` up to `cap`, jittered to 50-100 %.

        The jitter keeps many watchers that lost the same receiver from retrying in lockstep.
        """
        delay = min(self.cap, self.initial * 2.0 ** min(attempts - 1, 60))
        return delay * (0.5 + 0.5 * rand)


class Sender:
    def __init__(
        self,
        channel: str,
        transport: Transport,
        *,
        outbox: Outbox,
        metrics: Metrics,
        policy: RetryPolicy,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.channel = channel
        self._transport = transport
        self._outbox = outbox
        self._metrics = metrics
        self._policy = policy
        self._clock = clock
        self._rand = rand
        self._wake = asyncio.Event()
        self._finishing = False
        self._last_post = -math.inf

    def wake(self) -> None:
        """New rows were committed to the outbox: look at once instead of at the next poll."""
        self._wake.set()

    def finish(self) -> None:
        """Stop once nothing is due (used for the shutdown grace); waiting retries stay queued."""
        self._finishing = True
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()  # before looking: a wake() from now on is not lost
            try:
                head = self._outbox.due(self.channel, math.inf, 1)
            except StoreError as exc:
                log.error("%s sender cannot read the outbox, will retry: %s", self.channel, exc)
                await self._sleep(self._policy.interval)
                continue
            delay = self._delay(head[0]) if head else None
            if delay is None or delay > 0:
                if self._finishing:
                    return
                await self._sleep(delay)
                continue
            row = head[0]
            news = self._read(row)
            if news is None or self._coalesced(row, news):
                continue
            await self._pace()
            # Paced from the start of each POST, as the receiver counts them: the time a POST
            # and its commit take does not slow the drain below the limit.
            self._last_post = time.monotonic()
            try:
                result = await self._transport.deliver(news)
            except (ValueError, TypeError, ArithmeticError) as exc:
                # Transports render before any I/O: a row this version cannot render
                # would fail the same way on every retry.
                self._dead(row, f"cannot render the queued announcement: {type(exc).__name__}: {exc}")
                continue
            try:
                self._settle(row, news, result)
            except StoreError as exc:
                # The row stays pending and is sent again: at least once, never lost.
                log.error("%s sender cannot record announcement %d: %s", self.channel, row.id, exc)

    def _delay(self, row: OutboxRow) -> float:
        """Seconds until `row` is due; a retry time further away than the policy allows is brought in."""
        now = self._clock()
        delay = row.next_attempt_at - now
        if delay > self._policy.longest:
            try:
                self._outbox.reschedule(row.id, now + self._policy.longest)
            except StoreError as exc:
                log.error("%s sender cannot reschedule announcement %d: %s", self.channel, row.id, exc)
            delay = self._policy.longest
        return delay

    def _read(self, row: OutboxRow) -> News | None:
        """The row's news; one this version cannot read is dead-lettered instead of stopping the channel."""
        try:
            return news_from_json(row.kind, row.payload)
        except ValueError as exc:
            self._dead(row, f"cannot read the queued announcement: {exc}")
            return None

    def _dead(self, row: OutboxRow, reason: str) -> None:
        log.error("%s: announcement %d dead-lettered: %s", self.channel, row.id, reason)
        try:
            self._outbox.mark_dead(row.id, self._clock(), reason)
        except StoreError as exc:
            log.error("%s sender cannot record announcement %d: %s", self.channel, row.id, exc)
        self._metrics.notification(self.channel, "dead")

    def _coalesced(self, row: OutboxRow, news: News) -> bool:
        """Whether `row` is a status a newer one behind it supersedes; if so it is marked done."""
        try:
            if not isinstance(news, StatusNews) or not self._outbox.superseded(row, news.incident):
                return False
            self._outbox.mark_sent(row.id, self._clock())
        except StoreError as exc:
            log.error("%s sender cannot coalesce announcement %d: %s", self.channel, row.id, exc)
            return False
        self._metrics.notification(self.channel, "coalesced")
        return True

    async def _sleep(self, seconds: float | None) -> None:
        """Until woken, or `seconds` pass (forever when None)."""
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _pace(self) -> None:
        wait = self._last_post + self._policy.interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    def _settle(self, row: OutboxRow, news: News, result: Delivery) -> None:
        now = self._clock()
        outcome = result.outcome
        counted: str = outcome
        if outcome == "sent":
            self._outbox.mark_sent(row.id, now)
        elif outcome == "dead":
            self._outbox.mark_dead(row.id, now, result.describe())
            log.error(
                "%s: announcement %d (%s %s) rejected, not retried: %s",
                self.channel,
                row.id,
                news.incident if isinstance(news, TransitionNews) else "-",
                row.kind,
                result.describe(),
            )
        else:
            attempts = row.attempts + 1
            asked = result.retry_after
            if asked is None:
                wait = self._policy.backoff(attempts, self._rand())
            else:
                wait = self._policy.retry_after(asked)
            self._outbox.mark_retry(row.id, attempts, now + wait, result.describe())
            log.warning(
                "%s: announcement %d attempt %d failed (%s); retrying in %.1fs",
                self.channel,
                row.id,
                attempts,
                result.describe(),
                wait,
            )
            counted = "retried"
        self._metrics.notification(self.channel, counted)
