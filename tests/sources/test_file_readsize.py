"""Reads get smaller while the daemon is slow to handle them (an error storm's backlog), so the
rest of its loop (the API, the other sources) waits for one small read at a time, and grow back."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from tests.sources.test_file import make, numbered, write
from watcher.events import Chunk
from watcher.sources.file.tail import CHUNK, READ_FIRST, READ_MIN, TURN_BUDGET, ReadSize


def test_halved_while_turns_are_slow_doubled_back_when_short() -> None:
    size = ReadSize()
    assert size.now == READ_FIRST
    size.after_turn(2 * TURN_BUDGET)
    assert size.now == READ_FIRST // 2
    for _ in range(20):
        size.after_turn(1.0)
    assert size.now == READ_MIN
    size.after_turn(TURN_BUDGET / 2)  # neither slow nor short
    assert size.now == READ_MIN
    for _ in range(20):
        size.after_turn(0.0)
    assert size.now == CHUNK


def burn(cpu: float) -> None:
    """Keep this thread busy for `cpu` seconds of its own CPU time (whatever the machine's load)."""
    end = time.thread_time() + cpu
    while time.thread_time() < end:
        pass


async def test_a_consumer_slow_over_each_chunk_gets_small_ones_then_large_ones(tmp_path: Path) -> None:
    """As in the daemon: one task reads into a queue, another handles what is queued."""
    path = tmp_path / "app.log"
    write(path, numbered("line ", 0, 400_000))  # 4.5 MB
    queue: asyncio.Queue[Chunk] = asyncio.Queue()
    sizes: list[int] = []
    slow = 12

    async def read() -> None:
        async for event in make(path).read(None):
            if isinstance(event, Chunk):
                await queue.put(event)

    reader = asyncio.create_task(read())
    try:
        lines = 0
        while lines < 400_000:
            chunk = await queue.get()
            sizes.append(len(chunk.data))
            lines += chunk.data.count(b"\n")
            if len(sizes) <= slow:
                burn(2 * TURN_BUDGET)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    assert max(sizes[slow - 4 : slow]) < READ_MIN + 64  # whole lines: a partial one may finish a read
    assert max(sizes[slow:]) > CHUNK - 64
