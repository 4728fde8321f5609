"""Announcements end to end: the daemon, its outbox and a real webhook receiver on loopback."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from rich.console import Console
from typer.testing import CliRunner

from tests.daemon.harness import AsyncClient, config_file, edge_source, healthy, process
from tests.daemon.harness import running as daemon_running
from tests.receiver import Answer, Receiver
from tests.support import RULE, SHIPPED_CONFIG, wait_until
from watcher import config
from watcher.cli import app, status_view
from watcher.errors import ConfigError
from watcher.store.schema import DB_NAME
from watcher.times import format_time


def write_config(tmp: Path, notify: str, window: float = 1.0) -> Path:
    log = tmp / "edge.log"
    log.write_text(f'{{"ts":"{format_time(time.time())}","level":"info"}}\n')
    body = f"""
[notify]
send_interval = "0.1s"
retry_initial = "0.1s"
retry_max = "0.3s"
shutdown_grace = "0.5s"
{notify}
{edge_source(log)}"""
    return config_file(tmp, body, window=window, blind_after=None)


@asynccontextmanager
async def running(cfg: Path, heartbeat: float | None = None) -> AsyncIterator[AsyncClient]:
    settings = config.load(cfg)
    if heartbeat is not None:
        # Below the 1m a user may configure: model_copy does not validate, so a test need not wait minutes.
        notify = settings.notify.model_copy(update={"heartbeat": heartbeat})
        settings = settings.model_copy(update={"notify": notify})
    async with daemon_running(settings) as daemon, AsyncClient(daemon.settings) as client:
        yield client


def held_rows(state_dir: Path) -> int:
    """Announcements the daemon holds back (read beside it: WAL readers)."""
    with sqlite3.connect(state_dir / DB_NAME) as conn:
        return int(conn.execute("SELECT count(*) FROM held_announcements").fetchone()[0])


def headline(body: dict[str, Any]) -> str:
    """`P1-x resolved` from the Slack fallback text `*P1-x* RESOLVED at ...`."""
    m = re.match(r"^\*(\S+)\* (\w+)", body.get("text", ""))
    return f"{m.group(1)} {m.group(2).lower()}" if m else body.get("text", "")


async def delivered(rx: Receiver, *want: str, path: str = "/hook") -> None:
    async def arrived() -> bool:
        got = [headline(b) for b in rx.delivered(path)]
        return all(w in got for w in want)

    await wait_until(arrived, what=f"{want} at {path}")


class TestDaemonAnnounces:
    async def test_incident_lifecycle_in_order(self, tmp_path: Path) -> None:
        """opened, mitigation, RESOLVED arrive in order at the incident webhook, paced by send_interval."""
        async with Receiver() as rx:
            cfg = write_config(tmp_path, f'incident_webhook = "{rx.url()}"')
            async with running(cfg) as client:
                await client.open_incident("P1-a", "Live view black", [], None)
                await client.mitigate("P1-a", "rollback")
                with (tmp_path / "edge.log").open("a") as log:  # a record in the window: evidence
                    log.write(f'{{"ts":"{format_time(time.time())}","level":"info"}}\n')
                await delivered(rx, "P1-a resolved")
        assert [headline(b) for b in rx.delivered()] == ["P1-a opened", "P1-a mitigation", "P1-a resolved"]
        # Paced from the start of each POST; the receiver sees each arrive after its transit, which
        # on a loaded machine varies by tens of ms (the first also opens the connection).
        arrived = [r.monotonic for r in rx.requests]
        assert arrived[-1] - arrived[0] >= 2 * 0.1 - 0.02
        assert min(b - a for a, b in itertools.pairwise(arrived)) >= 0.05
        assert "evidence:" in rx.delivered()[-1]["text"]

    async def test_pending_messages_survive_a_restart_and_are_sent_once(self, tmp_path: Path) -> None:
        """Receiver down (500) while the daemon stops; the next daemon sends each message exactly once."""
        async with Receiver(default=Answer(500)) as rx:
            cfg = write_config(tmp_path, f'incident_webhook = "{rx.url()}"', window=600)
            async with running(cfg) as client:
                await client.open_incident("P1-r", "t", [], None)
                await client.mitigate("P1-r", "x")
                await wait_until(lambda: len(rx.requests) >= 2, what="failed attempts")
            rx.default = Answer(200)
            async with running(cfg) as client:
                await delivered(rx, "P1-r opened", "P1-r mitigation")
                await client.close("P1-r", "done")
                await delivered(rx, "P1-r closed")
        assert [headline(b) for b in rx.delivered()] == ["P1-r opened", "P1-r mitigation", "P1-r closed"]

    async def test_sigkill_with_pending_messages_loses_and_repeats_nothing(self, tmp_path: Path) -> None:
        """`watcher run` killed -9 while the receiver is down; restarted, it sends each message once."""
        async with Receiver(default=Answer(503)) as rx:
            cfg = write_config(tmp_path, f'incident_webhook = "{rx.url()}"', window=600)
            settings = config.load(cfg)
            with process(cfg) as proc:
                await wait_until(lambda: healthy(settings.http.port), what="daemon up")
                async with AsyncClient(settings) as client:
                    await client.open_incident("P1-k", "t", [], None)
                    await client.mitigate("P1-k", "x")
                await wait_until(lambda: len(rx.requests) >= 2, what="failed attempts")
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            rx.default = Answer(200)
            with process(cfg):
                await delivered(rx, "P1-k opened", "P1-k mitigation")
                async with AsyncClient(settings) as client:

                    async def settled() -> bool:
                        outbox: dict[str, Any] = (await client.status())["outbox"]  # type: ignore[assignment]
                        return bool(outbox["pending"] == 0)

                    await wait_until(settled, what="outbox empty")
        assert [headline(b) for b in rx.delivered()] == ["P1-k opened", "P1-k mitigation"]

    async def test_a_held_streak_reset_survives_a_kill(self, tmp_path: Path) -> None:
        """Issue case 7: a reset held back by reset_every, then kill -9: the next daemon announces it."""
        async with Receiver() as rx:
            cfg = write_config(tmp_path, f'incident_webhook = "{rx.url()}"\nreset_every = "2s"', window=600)
            settings = config.load(cfg)
            log = tmp_path / "edge.log"

            def error(msg: str, ahead: float = 0.0) -> None:
                at = format_time(
                    time.time() + ahead
                )  # stamped apart: two errors at one instant are one break
                with log.open("a") as fh:
                    fh.write(f'{{"ts":"{at}","level":"error","msg":"{msg}"}}\n')

            with process(cfg) as proc:
                await wait_until(lambda: healthy(settings.http.port), what="daemon up")
                async with AsyncClient(settings) as client:
                    await client.open_incident("P1-h", "t", [], None)
                    await client.mitigate("P1-h", "x")
                error("first")
                await delivered(rx, "P1-h streak")
                error("second")
                error("third", ahead=0.1)
                held = lambda: held_rows(settings.state_dir) == 1  # noqa: E731
                await wait_until(held, what="the later resets held, in the store")
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            with process(cfg):
                await wait_until(lambda: len(rx.delivered()) >= 4, what="the held resets announced")
        resets = [b["text"] for b in rx.delivered() if headline(b) == "P1-h streak"]
        assert len(resets) == 2 and "third" in resets[1] and "(+1 more since the last message)" in resets[1]
        assert held_rows(settings.state_dir) == 0

    async def test_rejected_message_is_dead_lettered_and_shown(self, tmp_path: Path) -> None:
        """A 404 is not retried: status --json counts it dead, /metrics counts it, the next one goes on."""
        async with Receiver() as rx:
            rx.answer(Answer(404))
            cfg = write_config(tmp_path, f'incident_webhook = "{rx.url()}"', window=600)
            async with running(cfg) as client:
                await client.open_incident("P1-d", "t", [], None)
                await client.mitigate("P1-d", "x")
                await delivered(rx, "P1-d mitigation")
                doc = await client.status()
                settings = config.load(cfg)
                url = f"http://{settings.http.listen}/metrics"
                async with aiohttp.ClientSession() as http, http.get(url) as resp:
                    metrics = await resp.text()
        assert doc["outbox"] == {
            "pending": 0,
            "dead": 1,
            "channels": {
                "incident": {"pending": 0, "dead": 1, "oldest_pending": None, "last_error": "HTTP 404: no"}
            },
        }
        console = Console(record=True, width=200)
        console.print(status_view.status_view(doc))
        assert "announcements to incident: 0 pending, 1 dead-lettered" in console.export_text()
        assert 'watcher_notifications_total{channel="incident",result="dead"} 1.0' in metrics
        assert 'watcher_notifications_total{channel="incident",result="sent"} 1.0' in metrics

    async def test_heartbeat_to_oncall(self, tmp_path: Path) -> None:
        """Every `heartbeat` one line per open incident to on-call; then 'still investigating, no change'."""
        async with Receiver() as rx:
            notify = f'incident_webhook = "{rx.url()}"\noncall_webhook = "{rx.url("/oncall")}"'
            async with running(write_config(tmp_path, notify), heartbeat=1.0) as client:
                await client.open_incident("P1-h", "t", [], None)

                async def two_beats() -> bool:
                    return len(rx.delivered("/oncall")) >= 2

                await wait_until(two_beats, what="two heartbeats")
        first, second = rx.delivered("/oncall")[:2]
        assert first["text"].splitlines()[1] == "P1-h investigating: no mitigation yet, 0 error(s) seen"
        assert second["text"].splitlines()[1] == "P1-h: still investigating, no change"
        assert all(headline(b) != "heartbeat" for b in rx.delivered("/hook"))

    async def test_json_mode_and_routing(self, tmp_path: Path) -> None:
        """format = "json" posts generic documents; routes send `opened` to on-call only."""
        async with Receiver() as rx:
            notify = (
                f'incident_webhook = "{rx.url()}"\noncall_webhook = "{rx.url("/oncall")}"\n'
                'format = "json"\nheartbeat = "1h"\n[notify.routes]\nopened = ["oncall"]'
            )
            async with running(write_config(tmp_path, notify, window=600)) as client:
                await client.open_incident("P1-j", "t", [], None)
                await client.mitigate("P1-j", "x")

                async def both() -> bool:
                    return bool(rx.delivered("/oncall")) and bool(rx.delivered("/hook"))

                await wait_until(both, what="one message on each channel")
        (oncall,) = rx.delivered("/oncall")
        assert (oncall["kind"], oncall["incident"]) == ("opened", "P1-j")
        assert [b["kind"] for b in rx.delivered("/hook")] == ["mitigated"]


class TestNotifyTest:
    async def test_reports_each_channel(self, tmp_path: Path) -> None:
        """`watcher notify test --json`: ok with the status per channel; exit 1 when one fails."""
        async with Receiver() as rx:
            rx.answer(Answer(200), Answer(404))
            notify = f'incident_webhook = "{rx.url()}"\noncall_webhook = "{rx.url("/oncall")}"'
            cfg = write_config(tmp_path, notify)
            res = await asyncio.to_thread(
                CliRunner().invoke, app, ["notify", "test", "--config", str(cfg), "--json"]
            )
            assert res.exit_code == 1, res.output
            assert json.loads(res.stdout)["channels"] == [
                {"channel": "incident", "ok": True, "status": 200, "error": None},
                {"channel": "oncall", "ok": False, "status": 404, "error": "HTTP 404: no"},
            ]
            assert "watcher test message for the incident channel" in rx.requests[0].body["text"]
            res = await asyncio.to_thread(CliRunner().invoke, app, ["notify", "test", "--config", str(cfg)])
            assert res.exit_code == 0 and "incident: ok (HTTP 200)" in res.stdout

    def test_without_webhooks_says_what_to_set(self, tmp_path: Path) -> None:
        res = CliRunner().invoke(app, ["notify", "test", "--config", str(write_config(tmp_path, ""))])
        assert res.exit_code == 1 and "no webhook configured" in res.stderr


class TestConfig:
    def problems(self, tmp_path: Path, notify: str) -> list[str]:
        path = tmp_path / "w.toml"
        path.write_text(f"{RULE}[notify]\n{notify}\n")
        try:
            config.load(path)
        except ConfigError as exc:
            return exc.problems
        return []

    @pytest.mark.parametrize(
        ("notify", "problem"),
        [
            (
                'incident_webhook = "hooks.example/sekrit"',
                "notify.incident_webhook: expected an http:// or https:// URL",
            ),
            ('[notify.routes]\nresolve = ["incident"]', "notify.routes: no announcement kind resolve;"),
            (
                '[notify.routes]\nopened = ["pager"]',
                "notify.routes.opened[0]: Input should be 'incident' or 'oncall'",
            ),
            (
                '[notify.templates]\nresolved = "$incident $oops"',
                "notify.templates.resolved: unknown field(s) oops;",
            ),
            ('[notify.templates]\nresolved = "costs $5"', "notify.templates.resolved: invalid placeholder"),
        ],
    )
    def test_mistakes_are_named_at_load(self, tmp_path: Path, notify: str, problem: str) -> None:
        """Unknown kinds and channels, bad templates and non-HTTP URLs fail at load, never quoting a URL."""
        (found,) = self.problems(tmp_path, notify)
        assert found.startswith(problem) and "sekrit" not in found

    def test_documented_examples_load(self, tmp_path: Path) -> None:
        """The commented [notify.routes] and [notify.templates] examples of config/watcher.toml are valid."""
        shipped = SHIPPED_CONFIG.read_text()
        block = shipped[shipped.index("# [notify.routes]") : shipped.index("# ---- integrations")]
        examples = [ln[2:] for ln in block.splitlines() if re.match(r"^# (\[notify\.|\w+ = )", ln)]
        assert len(examples) == 6
        assert self.problems(tmp_path, "\n".join(examples)) == []

    def test_documented_integrations_load(self, tmp_path: Path) -> None:
        """The commented [notify.slack_app] and [notify.pagerduty] examples are valid, with their
        secret files in place."""
        shipped = SHIPPED_CONFIG.read_text()
        block = shipped[shipped.index("# ---- integrations") : shipped.index("# ---- sources")]
        examples = [ln[2:] for ln in block.splitlines() if re.match(r"^# (\[notify\.|\w+ = )", ln)]
        text = "\n".join(examples)
        for path in set(re.findall(r'"(/etc/novavms-watcher/\w+)"', text)):
            local = tmp_path / Path(path).name
            local.write_text("xoxb-1-2-3\n" if "slack" in path else "a" * 32 + "\n")
            text = text.replace(path, str(local))
        assert len(examples) == 11 and self.problems(tmp_path, text) == []
