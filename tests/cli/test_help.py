"""`--help` reads as words: whole summaries, placeholders such as ID and GLOB, each command its own."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from watcher.cli import app
from watcher.cli.base import COMMANDS

runner = CliRunner()
EVERY = [
    [],
    *([name] for name in COMMANDS),
    ["incident", "open"],
    ["incident", "mitigate"],
    ["incident", "close"],
    ["notify", "test"],
    ["snapshot", "verify"],
]


def help_of(words: list[str]) -> str:
    res = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "100"})
    assert res.exit_code == 0, res.output
    return res.stdout


@pytest.mark.parametrize("words", EVERY, ids=lambda w: " ".join(w) or "watcher")
def test_placeholders_read_as_words(words: list[str]) -> None:
    """No `<str>`, `<list[str]>` or `{incident}`: every value is named (ID, GLOB, DURATION, FILE, TEXT)."""
    text = help_of(words)
    assert not re.search(r"<[a-z\[\]]+>|\{\w+\}", text), text


@pytest.mark.parametrize("words", [w for w in EVERY if w in ([], ["incident"], ["notify"], ["snapshot"])])
def test_summaries_are_whole(words: list[str]) -> None:
    """A command listing never cuts a summary with '...': each ends its sentence."""
    text = help_of(words)
    listing = text.split("Commands:\n", 1)[1]
    entries = re.split(r"\n  (?=\S)", "\n" + listing.rstrip())[1:]
    assert entries
    for entry in entries:
        summary = " ".join(entry.split()[1:])
        assert summary.endswith((".", ")")) and not summary.endswith("..."), summary


def test_snapshot_verify_has_its_own_help() -> None:
    """`snapshot verify --help` documents FILE, not the options of taking a snapshot."""
    text = help_of(["snapshot", "verify"])
    assert text.startswith("Usage: watcher snapshot verify [OPTIONS] FILE")
    assert "--reason" not in text and "--then" not in text


def test_incident_open_names_its_values() -> None:
    text = help_of(["incident", "open"])
    assert "Usage: watcher incident open [OPTIONS] ID" in text
    for shown in ("--title TEXT", "--scope GLOB", "--window DURATION", "--config FILE"):
        assert shown in text


def test_words_after_the_options_need_then() -> None:
    """`snapshot ... -- CMD` without --then is refused in one line before anything is collected."""
    res = runner.invoke(app, ["snapshot", "--reason", "r", "--", "docker", "compose", "up"])
    assert res.exit_code == 1
    assert "to run a command afterwards use --then -- CMD" in res.stderr
