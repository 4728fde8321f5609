"""Mattermost (the Slack-format body) and Microsoft Teams (an Adaptive Card) end to end:
the daemon's announcements and `watcher notify test` against loopback fakes (tests/chat_fakes.py)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from typer.testing import CliRunner

from tests.chat_fakes import TEAMS_LIMIT, ChatFakes
from tests.daemon.harness import AsyncClient, append, config_file, edge_source, running, stamp
from tests.support import wait_until
from watcher import config
from watcher.cli import app
from watcher.details import BreakDetail
from watcher.events import Kind, State
from watcher.notify.messages import Renderer
from watcher.notify.news import TransitionNews


def chat_config(tmp: Path, url: str, fmt: str) -> Path:
    log = tmp / "edge.log"
    append(log, f'{{"ts":"{stamp(time.time())}","level":"info"}}')
    body = f"""
[notify]
incident_webhook = "{url}"
format = "{fmt}"
send_interval = "0.05s"
{edge_source(log)}"""
    return config_file(tmp, body, window=1.0, blind_after=None)


class TestMattermost:
    async def test_the_slack_body_reads_as_text(self, tmp_path: Path) -> None:
        """Mattermost drops the blocks and shows `text`: every announcement arrives readable."""
        async with ChatFakes() as fakes:
            settings = config.load(chat_config(tmp_path, fakes.url("mattermost"), "slack"))
            async with running(settings), AsyncClient(settings) as client:
                await client.open_incident("P1-mm", "Live view black", [], None)
                await client.mitigate("P1-mm", "rollback")
                append(tmp_path / "edge.log", f'{{"ts":"{stamp(time.time())}","level":"info"}}')  # evidence
                await wait_until(lambda: len(fakes.mattermost) == 3, what="three posts")
        assert not fakes.refused
        assert [t.split("\n")[0].split(" ")[1] for t in fakes.mattermost] == [
            "opened:",
            "mitigation",
            "RESOLVED",
        ]
        assert "evidence:" in fakes.mattermost[2]


class TestTeams:
    async def test_announcements_are_adaptive_cards(self, tmp_path: Path) -> None:
        """Each announcement is one card the Workflows trigger takes (202, empty body)."""
        async with ChatFakes() as fakes:
            settings = config.load(chat_config(tmp_path, fakes.url("teams"), "teams"))
            async with running(settings), AsyncClient(settings) as client:
                await client.open_incident("P1-ms", "Live view black", [], None)
                await client.mitigate("P1-ms", "rollback")
                append(tmp_path / "edge.log", f'{{"ts":"{stamp(time.time())}","level":"info"}}')  # evidence
                await wait_until(lambda: len(fakes.teams) == 3, what="three cards")
        assert not fakes.refused
        heads = [card["body"][0] for card in fakes.teams]
        assert [h["text"].split(" ")[:2] for h in heads] == [
            ["P1-ms", "opened:"],
            ["P1-ms", "mitigation"],
            ["P1-ms", "RESOLVED"],
        ]
        assert heads[2]["color"] == "Good" and heads[0]["weight"] == "Bolder"

    def test_a_huge_log_line_stays_under_the_limit(self) -> None:
        """A megabyte of log text in a regression still makes a card well under 28 KB."""
        detail = BreakDetail("edge", "level", "x" * 1_000_000, 0.0)
        news = TransitionNews("P1-ms", "t", Kind.REGRESSED, 0.0, State.REGRESSED, detail)
        body = Renderer("teams").body(news)
        assert len(json.dumps(body).encode()) < TEAMS_LIMIT

    async def test_notify_test_reaches_teams(self, tmp_path: Path) -> None:
        async with ChatFakes() as fakes:
            cfg = chat_config(tmp_path, fakes.url("teams"), "teams")
            runner = CliRunner()
            res = await asyncio.to_thread(runner.invoke, app, ["notify", "test", "--config", str(cfg)])
        assert res.exit_code == 0 and "incident: ok (HTTP 202)" in res.stdout
        assert "watcher test message" in fakes.teams[0]["body"][0]["text"]
