"""Issue case 2: one long error line must not make the daemon rewrite megabytes of state every second."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

from tests.daemon.harness import AsyncClient, append, incident, running, stamp, write_config
from tests.support import free_port, wait_until
from watcher import config
from watcher.events import MAX_MESSAGE
from watcher.store.schema import DB_NAME

INCIDENTS = 10


def engine_row(state_dir: Path) -> tuple[int, float]:
    """Size and write time of the engine state the daemon committed (read beside it: WAL readers)."""
    with sqlite3.connect(state_dir / DB_NAME) as conn:
        size, saved_at = conn.execute("SELECT length(state), saved_at FROM engine_state").fetchone()
    return int(size), float(saved_at)


class TestBoundedState:
    async def test_a_megabyte_error_line_is_clipped_and_idle_state_is_not_rewritten(
        self, tmp_path: Path
    ) -> None:
        """10 incidents, a 1 MB error line: a few KiB kept per incident; no rewrite while nothing changes."""
        log = tmp_path / "edge.log"
        append(log, f'{{"ts":"{stamp(time.time())}","level":"info","msg":"up"}}')
        settings = config.load(write_config(tmp_path, log, free_port(), window=600))
        async with running(settings), AsyncClient(settings) as client:
            for i in range(INCIDENTS):
                await client.open_incident(f"P1-{i}", "edge", ["edge"], None)
            huge = "x" * 1_000_000  # 1 MB, under max_line_bytes (1 MiB)
            append(log, f'{{"ts":"{stamp(time.time())}","level":"error","msg":"{huge}"}}')

            async def seen() -> bool:
                return bool((await incident(client, f"P1-{INCIDENTS - 1}"))["errors"] == 1)

            await wait_until(seen, what="the error in every incident")
            last = (await incident(client, "P1-0"))["last_error"]
            assert len(last["message"]) <= MAX_MESSAGE
            cut = re.search(r"\[cut: ([\d,]+) characters in all\]$", last["message"])
            assert cut is not None and int(cut.group(1).replace(",", "")) > len(huge)
            committed = lambda: engine_row(settings.state_dir)[0] > INCIDENTS * MAX_MESSAGE  # noqa: E731
            await wait_until(committed, what="the state with the error committed")
            size, saved_at = engine_row(settings.state_dir)
            assert size < INCIDENTS * 2 * MAX_MESSAGE

            # The source stays live (its watermark moves with time at the end of the file) but
            # nothing is read and no incident changes: no rewrite. (A line read is evidence, the
            # source's activity, and is saved: that write is a few KiB, never the message again.)
            until = time.time() + 2.5
            while time.time() < until:

                async def caught_up(at: float = time.time()) -> bool:
                    doc = await client.status()
                    marks = [s["watermark"] for s in doc["sources"] if s["name"] == "edge"]
                    return bool(marks and marks[0] and marks[0] >= (stamp(at)))

                await wait_until(caught_up, what="the watermark to move")
            assert engine_row(settings.state_dir) == (size, saved_at)
