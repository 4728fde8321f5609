"""Slack app mode: one status message per incident edited in place, events in its thread.

Against a loopback fake of Slack's Web API (tests/slack_fake.py) with the real sender,
the real SQLite outbox and, end to end, the daemon as a process killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from tests.daemon.harness import AsyncClient, config_file, edge_source, healthy, process, running
from tests.pagerduty_fake import KEY as PD_KEY
from tests.pagerduty_fake import PagerDutyFake
from tests.slack_fake import TOKEN, SlackFake
from tests.support import wait_until
from watcher import config
from watcher.cli import app
from watcher.details import BreakDetail, Detail, MitigatedDetail, OpenedDetail, ResolvedDetail
from watcher.events import ErrorEvent, Kind, State
from watcher.metrics import Metrics
from watcher.notify.messages import Renderer
from watcher.notify.news import HeartbeatNews, LastError, News, StatusNews, TransitionNews, kind_of
from watcher.notify.sender import RetryPolicy, Sender
from watcher.notify.slack_app import SlackApi, SlackApp
from watcher.notify.status_message import progress_bar, status_lines
from watcher.store import Store
from watcher.times import format_time

FAST = RetryPolicy(interval=0.05, initial=0.1, cap=0.4)
LANE = "slack-incident"
CHANNEL = "C0INCIDENT"
T0 = 1_800_000_000.0


def news(kind: Kind, state: State, incident: str = "P1-a", at: float = T0) -> TransitionNews:
    details: dict[Kind, Detail] = {
        Kind.OPENED: OpenedDetail("Live view black", ("*",), 900.0),
        Kind.MITIGATED: MitigatedDetail("rollback", at),
        Kind.RESOLVED: ResolvedDetail(at - 900, 900.0, ("edge",), 1200),
        Kind.REGRESSED: BreakDetail("edge", "level", "boom token=hunter2", at),
    }
    return TransitionNews(incident, "Live view black", kind, at, state, details[kind])


def status(state: State, incident: str = "P1-a", clean: float = 0.0, **kw: object) -> StatusNews:
    base = StatusNews(
        incident, "Live view black", state, T0, T0 - 60, T0 - 30, 900.0, clean, T0 - 30, T0, None,
        0, 0, 1200, None, (), ("edge",),
    )  # fmt: skip
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "state") as s:
        yield s


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@asynccontextmanager
async def draining(
    store: Store,
    registry: CollectorRegistry,
    slack: SlackFake,
    policy: RetryPolicy = FAST,
    token: str = TOKEN,
) -> AsyncIterator[Sender]:
    metrics = Metrics(registry, sources=[], rules=[], channels=[LANE])
    async with aiohttp.ClientSession() as http:
        api = SlackApi(http, slack.url, token, timeout=5)
        app = SlackApp(
            api,
            lane=LANE,
            channel=CHANNEL,
            messages=store.slack_messages,
            renderer=Renderer(),
            interval=policy.interval,
        )
        sender = Sender(LANE, app, outbox=store.outbox, metrics=metrics, policy=policy)
        task = asyncio.create_task(sender.run())
        try:
            yield sender
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


def queue(store: Store, *items: News, sender: Sender | None = None) -> None:
    """Enqueue as the pipeline does (and wake the sender, as its commit does)."""
    for item in items:
        store.outbox.enqueue(LANE, kind_of(item), item.to_json(), 0.0)
    if sender is not None:
        sender.wake()


async def drained(store: Store) -> None:
    await wait_until(lambda: store.outbox.pending_count() == 0, what="the outbox drained")


def count(registry: CollectorRegistry, result: str) -> float:
    return registry.get_sample_value("watcher_notifications_total", {"channel": LANE, "result": result}) or 0


class TestStatusMessage:
    def test_progress_bar(self) -> None:
        """Cells filled in proportion, rounded down: full only when the window is proven."""
        assert progress_bar(0, 900) == "▱" * 20
        assert progress_bar(449, 900) == "▰" * 9 + "▱" * 11
        assert progress_bar(899.9, 900) == "▰" * 19 + "▱"
        assert progress_bar(5000, 900) == "▰" * 20

    def test_what_each_state_shows(self) -> None:
        """State, bar and clean streak, evidence, the blind sources and the last error."""
        last = ErrorEvent("edge", T0 - 40, "level", "boom")
        s = status(State.BLIND, clean=450, blind_sources=("gw/gw-1",), errors=2,
                   last_error=LastError(last.at, last.source, last.rule, last.message))  # fmt: skip
        headline, lines, code = status_lines(
            s, lambda at: format_time(at if isinstance(at, float) else None) or "?"
        )
        assert headline == "*P1-a* Live view black: BLIND"
        assert lines[0].startswith("`" + "▰" * 10 + "▱" * 10 + "` clean 7m30s of 15m since")
        assert any("cannot see gw/gw-1" in x for x in lines)
        assert any(x.startswith("evidence: 1,200 lines checked in edge") for x in lines)
        assert any(x.startswith("2 error(s)") for x in lines) and code == "boom"
        investigating = status_lines(status(State.INVESTIGATING), str)[1][0]
        assert "no mitigation yet" in investigating

    def test_the_status_says_whom_the_errors_hit(self) -> None:
        """The living message carries the impact sentences, and they survive the outbox's JSON."""
        impact = ("3 org(s) had errors, 1 still affected", "org-a: clear, 12 error record(s), last ...")
        s = status(State.VERIFYING, clean=60, impact=impact)
        assert StatusNews.from_json(s.to_json()) == s
        lines = status_lines(s, str)[1]
        assert [x for x in lines if x.startswith("impact: ")] == [f"impact: {i}" for i in impact]

    def test_log_text_is_redacted_and_escaped(self) -> None:
        """The quoted last error cannot ping the channel or leak a secret."""
        s = status(State.VERIFYING, last_error=LastError(T0, "edge", "level", "<!channel> password=hunter2"))
        body = Renderer().body(s)
        assert (
            "hunter2" not in str(body) and "<!channel>" not in str(body) and "&lt;!channel&gt;" in str(body)
        )


class TestSlackTransport:
    async def test_one_message_per_incident_edited_in_place_and_replies_in_order(
        self, store: Store, registry: CollectorRegistry
    ) -> None:
        """Events are replies under one status message per incident; RESOLVED is also broadcast."""
        steps: list[list[News]] = [
            [news(Kind.OPENED, State.INVESTIGATING), status(State.INVESTIGATING)],
            [news(Kind.OPENED, State.INVESTIGATING, incident="P1-b")],
            [news(Kind.MITIGATED, State.VERIFYING), status(State.VERIFYING, clean=300)],
            [news(Kind.RESOLVED, State.RESOLVED), status(State.RESOLVED, resolved_at=T0)],
        ]
        async with SlackFake() as slack, draining(store, registry, slack) as sender:
            for step in steps:  # each drained before the next: nothing to coalesce
                queue(store, *step, sender=sender)
                await drained(store)
        a, b = slack.top_level(CHANNEL)
        assert a.versions[0].startswith("*P1-a* opened") and b.versions[0].startswith("*P1-b* opened")
        assert [v.split("\n")[0] for v in a.versions[1:]] == [
            "*P1-a* Live view black: INVESTIGATING",
            "*P1-a* Live view black: VERIFYING",
            "*P1-a* Live view black: RESOLVED",
        ]
        replies = slack.thread(CHANNEL, a.ts)
        assert [r.versions[0].split(" ")[1] for r in replies] == ["opened:", "mitigation", "RESOLVED"]
        assert [r.broadcast for r in replies] == [False, False, True]
        assert len(slack.answered("chat.postMessage")) == 6 and len(slack.answered("chat.update")) == 3

    async def test_429_retry_after_is_honoured_and_nothing_is_lost(
        self, store: Store, registry: CollectorRegistry
    ) -> None:
        """Slack's 429 with Retry-After: 1 holds the lane a second; then every message, in order."""
        queue(store, news(Kind.OPENED, State.INVESTIGATING), news(Kind.MITIGATED, State.VERIFYING))
        async with SlackFake() as slack:
            slack.limit_next(1)
            async with draining(store, registry, slack):
                await drained(store)
        limited, *rest = slack.calls
        assert limited.status == 429 and rest[0].monotonic - limited.monotonic >= 0.95
        (top,) = slack.top_level(CHANNEL)
        assert [r.versions[0].split(" ")[1] for r in slack.thread(CHANNEL, top.ts)] == [
            "opened:",
            "mitigation",
        ]
        assert count(registry, "retried") == 1

    async def test_paced_to_the_channel_limit(self, store: Store, registry: CollectorRegistry) -> None:
        """With send_interval at Slack's pace, the channel's limit is never hit."""
        queue(store, *(news(Kind.OPENED, State.INVESTIGATING, incident=f"P1-{i}") for i in range(4)))
        pace = RetryPolicy(interval=0.35, initial=0.1, cap=0.4)
        async with SlackFake(min_interval=0.3) as slack, draining(store, registry, slack, pace):
            await drained(store)
        assert all(c.status == 200 for c in slack.calls) and len(slack.top_level(CHANNEL)) == 4

    async def test_a_deleted_status_message_is_posted_again(
        self, store: Store, registry: CollectorRegistry
    ) -> None:
        """message_not_found on an edit posts a new status; thread_not_found on a reply posts one too."""
        queue(store, news(Kind.OPENED, State.INVESTIGATING))
        async with SlackFake() as slack, draining(store, registry, slack) as sender:
            await drained(store)
            (first,) = slack.top_level(CHANNEL)
            slack.delete(CHANNEL, first.ts)
            queue(store, status(State.INVESTIGATING), sender=sender)
            await drained(store)
            (second,) = slack.top_level(CHANNEL)
            assert second.ts != first.ts and "INVESTIGATING" in second.versions[0]
            slack.delete(CHANNEL, second.ts)
            queue(store, news(Kind.MITIGATED, State.VERIFYING), sender=sender)
            await drained(store)
        (third,) = slack.top_level(CHANNEL)
        assert [r.versions[0].split(" ")[1] for r in slack.thread(CHANNEL, third.ts)] == ["mitigation"]
        assert store.slack_messages.get(LANE, "P1-a") is not None
        assert store.slack_messages.get(LANE, "P1-a").ts == third.ts  # type: ignore[union-attr]

    async def test_superseded_status_is_coalesced(self, store: Store, registry: CollectorRegistry) -> None:
        """Three statuses queued for one incident: the two older ones are never sent."""
        queue(
            store,
            news(Kind.OPENED, State.INVESTIGATING),
            status(State.INVESTIGATING),
            status(State.VERIFYING, clean=10),
            status(State.VERIFYING, clean=20),
        )
        async with SlackFake() as slack, draining(store, registry, slack):
            await drained(store)
        (top,) = slack.top_level(CHANNEL)
        assert len(top.versions) == 2 and "clean 20s" in top.versions[1]
        assert count(registry, "coalesced") == 2 and count(registry, "sent") == 2

    async def test_refusals_are_dead_lettered_with_a_hint_and_no_token(
        self, store: Store, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
    ) -> None:
        """invalid_auth is not retried; the error names the fix; the token appears nowhere."""
        queue(store, news(Kind.OPENED, State.INVESTIGATING))
        caplog.set_level(logging.DEBUG)
        wrong = "xoxb-9999-wrong-token-value"
        async with SlackFake() as slack, draining(store, registry, slack, token=wrong):
            await drained(store)
        backlog = store.outbox.backlog()[LANE]
        assert backlog.dead == 1 and backlog.last_error is not None
        assert "invalid_auth" in backlog.last_error and "token_file" in backlog.last_error
        assert wrong not in caplog.text and TOKEN not in caplog.text and count(registry, "dead") == 1

    async def test_heartbeat_line_is_a_message_of_its_own(
        self, store: Store, registry: CollectorRegistry
    ) -> None:
        """In `line` mode the on-call update is posted, not threaded."""
        queue(store, HeartbeatNews(T0, ()))
        async with SlackFake() as slack, draining(store, registry, slack):
            await drained(store)
        (top,) = slack.top_level(CHANNEL)
        assert top.versions[0].startswith("Heartbeat") and top.thread_ts is None


def slack_config(tmp: Path, slack: SlackFake, window: float) -> Path:
    log = tmp / "edge.log"
    log.write_text(f'{{"ts":"{format_time(time.time())}","level":"info"}}\n')
    (tmp / "slack-token").write_text(TOKEN + "\n")
    body = f"""
[notify]
retry_initial = "0.1s"
retry_max = "0.5s"
shutdown_grace = "0.5s"
[notify.slack_app]
token_file = "{tmp / "slack-token"}"
incident_channel = "incidents"
oncall_channel = "C0ONCALL"
api_url = "{slack.url}"
send_interval = "0.1s"
refresh = "0s"
{edge_source(log)}"""
    return config_file(tmp, body, window=window, blind_after=None)


class TestDaemonSlack:
    async def test_sigkill_loses_no_reply_and_keeps_one_message(self, tmp_path: Path) -> None:
        """`watcher run` killed -9 while Slack rate-limits; restarted, the thread is complete, in order."""
        async with SlackFake() as slack:
            cfg = slack_config(tmp_path, slack, window=1.5)
            settings = config.load(cfg)
            with process(cfg) as proc:
                await wait_until(lambda: healthy(settings.http.port), what="daemon up")
                async with AsyncClient(settings) as client:
                    await client.open_incident("P1-k", "Live view black", [], None)
                    await wait_until(
                        lambda: len(slack.answered("chat.update")) == 1, what="the status edited"
                    )
                    slack.limit_next(*[3] * 50)  # every call from now on waits, across the restart
                    await client.mitigate("P1-k", "flag live_view_v2 reverted")
                    await wait_until(
                        lambda: slack.calls[-1].status == 429, what="the mitigation rate-limited"
                    )
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            slack.ratelimit.clear()
            with process(cfg):
                await wait_until(lambda: healthy(settings.http.port), what="daemon up again")
                # A record after the mitigation: the window has evidence to resolve on.
                with (tmp_path / "edge.log").open("a") as log:
                    log.write(f'{{"ts":"{format_time(time.time())}","level":"info"}}\n')

                def complete() -> bool:
                    (top,) = slack.top_level(CHANNEL)
                    return any("RESOLVED" in r.versions[0] for r in slack.thread(CHANNEL, top.ts))

                await wait_until(complete, what="RESOLVED in the thread")
                (top,) = slack.top_level(CHANNEL)
                await wait_until(lambda: "RESOLVED" in top.versions[-1].split("\n")[0], what="the final edit")
        replies = [r.versions[0].split("\n")[0] for r in slack.thread(CHANNEL, top.ts)]
        kinds = [r.split(" ")[1] for r in replies]
        assert kinds == ["opened:", "mitigation", "RESOLVED"]  # in order, none lost, none repeated
        assert len(slack.top_level(CHANNEL)) == 1 and len(top.versions) >= 3
        print("\n" + slack.transcript(CHANNEL))

    async def test_heartbeat_edits_the_oncall_message(self, tmp_path: Path) -> None:
        """In `edit` mode the 15-minute update edits the incident's message in the on-call channel."""
        async with SlackFake() as slack:
            loaded = config.load(slack_config(tmp_path, slack, window=600))
            # Below the 1m a config may set: the test cannot wait 15 minutes for an update.
            notify = loaded.notify.model_copy(update={"heartbeat": 1.0})
            settings = loaded.model_copy(update={"notify": notify})
            async with running(settings), AsyncClient(settings) as client:
                await client.open_incident("P1-h", "t", [], None)

                def edited() -> bool:
                    tops = slack.top_level("C0ONCALL")
                    return len(tops) == 1 and len(tops[0].versions) >= 2

                await wait_until(edited, what="the on-call message edited")
        (top,) = slack.top_level("C0ONCALL")
        assert top.versions[0].startswith("*P1-h* t: INVESTIGATING") and not slack.thread("C0ONCALL", top.ts)


class TestNotifyTest:
    async def test_each_lane_gets_one_test_message(self, tmp_path: Path) -> None:
        """`watcher notify test` posts to each Slack app channel and sends PagerDuty a change event."""
        async with SlackFake() as slack, PagerDutyFake() as pd:
            cfg = slack_config(tmp_path, slack, window=600)
            key = tmp_path / "pd-key"
            key.write_text(PD_KEY)
            with cfg.open("a") as fh:
                fh.write(f'[notify.pagerduty]\nrouting_key_file = "{key}"\nevents_url = "{pd.url}"\n')
            args = ["notify", "test", "--config", str(cfg)]
            res = await asyncio.to_thread(CliRunner().invoke, app, args)
        assert res.exit_code == 0, res.stderr
        assert res.stdout.splitlines() == [
            "slack-incident: ok (HTTP 200)",
            "slack-oncall: ok (HTTP 200)",
            "pagerduty: ok (HTTP 202)",
        ]
        assert [m.channel for m in slack.messages.values()] == [CHANNEL, "C0ONCALL"]
        assert [e.action for e in pd.events] == ["change"] and not pd.incidents
