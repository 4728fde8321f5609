"""A first run explains itself: what each source reads and its state, /readyz, times in UTC."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import aiohttp
import pytest

from tests.daemon.harness import config_file, running
from tests.support import wait_until
from watcher import config


def two_files(tmp_path: Path) -> tuple[Path, Path, config.Settings]:
    there, missing = tmp_path / "there.log", tmp_path / "missing.log"
    there.write_text('{"level":"info","msg":"up"}\n')
    body = "".join(
        f'[[sources]]\nname = "{name}"\nkind = "file"\npath = "{path}"\n'
        for name, path in (("api", there), ("edge", missing))
    )
    body += '[[rules]]\nname = "level"\nfield = "level"\nvalues = ["error"]\n'
    return there, missing, config.load(config_file(tmp_path, body, window=3))


async def get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as resp:
        return resp.status, await resp.text()


class TestFirstRun:
    async def test_one_line_per_source_with_what_it_reads_and_why_it_is_down(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The start-up report names each file and, for the one that is missing, its path."""
        there, missing, settings = two_files(tmp_path)
        caplog.set_level(logging.INFO, logger="watcher")
        async with running(settings):
            await wait_until(lambda: "sources up" in caplog.text, what="the start-up report")
        report = [r.getMessage() for r in caplog.records if r.getMessage().startswith("source ")]
        assert f"source api: file {there}: up" in report
        assert (
            f"source edge: file {missing}: DOWN: {missing}: no such file (waiting for it to appear)" in report
        )
        assert "1 of 2 sources up; /readyz answers 503 until every source is up" in caplog.text
        assert not any(r.getMessage().startswith("source edge: DOWN") for r in caplog.records), "said twice"

    async def test_readyz_until_every_source_is_up_while_healthz_is_ok(self, tmp_path: Path) -> None:
        """/healthz: the process is alive; /readyz: 503 naming the missing file, 200 once it exists."""
        _there, missing, settings = two_files(tmp_path)
        port = settings.http.port
        async with running(settings):
            assert await get(port, "/healthz") == (200, "ok\n")

            async def not_ready() -> bool:
                status, text = await get(port, "/readyz")
                return status == 503 and f"edge: DOWN: {missing}: no such file" in text

            await wait_until(not_ready, what="/readyz naming the missing file")
            missing.write_text('{"level":"info"}\n')

            async def ready() -> bool:
                return (await get(port, "/readyz")) == (200, "ready: 2 sources up\n")

            await wait_until(ready, what="/readyz ready")

    async def test_transition_times_in_the_log_are_utc_not_epoch(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """`P1-x opened at 2026-...Z`, never `at 1796281731.719`."""
        _there, _missing, settings = two_files(tmp_path)
        caplog.set_level(logging.INFO, logger="watcher")
        async with running(settings) as daemon:
            await daemon.commands.open_incident("P1-x", "t", [], None, "test")
        line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("P1-x opened"))
        assert re.fullmatch(r"P1-x opened at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z -> investigating", line)
