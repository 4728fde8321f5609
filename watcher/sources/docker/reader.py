"""Reading one docker sub-source ("lane"): its containers one after another, each to its end.

`LaneReader.run` asks the lane which container to read and from where (lane.py),
attaches to its log (follow.py), decodes it (stream.py) and drops what was already
delivered at the resume boundary (cursor.py). It settles a container only when it was
removed, or stopped and read to its end; a stream cut short, or one a run began
during, is read again from the cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import docker
from docker.errors import NotFound

from watcher.events import Chunk, Gap, Liveness
from watcher.sources import SourceEvent
from watcher.sources.docker.calls import LOST, EngineCalls
from watcher.sources.docker.cursor import Boundary, Cursor, since_param
from watcher.sources.docker.follow import LogStream
from watcher.sources.docker.lane import Container, Lane, time_ns
from watcher.sources.docker.pump import Pump
from watcher.sources.docker.stream import STREAMS, Lines

log = logging.getLogger(__name__)

DEAD_STREAM_GRACE = 2.0
"""Seconds a follow stream may stay open after its container died before it is cut."""
Out = asyncio.Queue[SourceEvent | BaseException]
Report = Callable[[list[Liveness]], Awaitable[None]]


class LaneReader:
    def __init__(
        self,
        calls: EngineCalls,
        client: docker.DockerClient,
        out: Out,
        *,
        clock: Callable[[], float],
        retry: float,
        max_line_bytes: int,
        report: Report,
    ) -> None:
        self._calls, self._client, self._out = calls, client, out
        self._clock, self._retry, self._max = clock, retry, max_line_bytes
        self._report = report

    async def run(self, lane: Lane) -> None:
        while True:
            lane.wake.clear()
            target, gap = lane.choose(self._clock())
            if gap is not None:
                await report_gap(self._out, gap)
            if target is None:
                lane.idle = True
                await lane.wake.wait()
                lane.idle = False
                continue
            c, cursor = target
            complete = ended = False
            starts = c.starts
            try:
                # The engine's word before and after the read, not the events' (they may lag):
                # following or not, and whether a run began meanwhile.
                running, run, _ = await self._state(c)
                with contextlib.suppress(NotFound):  # removed before attaching: settled below
                    complete = await self._follow(lane, c, cursor, follow=running)
                running, run_after, finished = await self._state(c)
                ended = not running and run_after == run
                if c.starts == starts:  # else this answer may predate that start: the event's word stands
                    c.running = running
                    if running:
                        c.started = max(c.started, time_ns(run_after) / 1e9)
                    else:
                        c.finished = max(c.finished, finished)
                c.read_starts = starts
            except NotFound:
                c.removed_at = c.removed_at or self._clock()
            except LOST as exc:
                # The engine may be going away (then this task is cancelled), or one request failed.
                log.warning("%s: reading %s: %s; retrying", lane.sub, c.id[:12], exc)
                await asyncio.sleep(self._retry)
                continue
            # Before the lane can go idle (and its watermark advance): a stop the events
            # have not told yet is in the stream first.
            stopped = c.finished or c.removed_at or self._clock()
            await self._report(lane.liveness(c.started if c.runs else stopped))
            # Finished only when removed, or stopped and read to the end; a stream cut short,
            # or one a run began during, is read again from the cursor.
            if c.removed_at is not None or (complete and ended):
                gap = lane.finished(c, complete=complete)
                if gap is not None:
                    await report_gap(self._out, gap)
                assert lane.cursor is not None
                await self._out.put(Chunk(lane.sub, b"", lane.cursor.dumps()))
                await self._report(lane.liveness(stopped))

    async def _state(self, c: Container) -> tuple[bool, str, float]:
        """Whether `c` runs, when its latest run started (a run's identity) and when its last ended."""
        state = (await self._calls.api(self._client.api.inspect_container, c.id)).get("State") or {}
        running = bool(state.get("Running")) and not state.get("Restarting")
        return running, str(state.get("StartedAt", "")), time_ns(str(state.get("FinishedAt") or "")) / 1e9

    async def _follow(self, lane: Lane, c: Container, cursor: Cursor, *, follow: bool) -> bool:
        """Read `c` from `cursor` until its stream ends; True when Docker ended it (read to the end)."""
        # A stopped container is read without following (Docker serves that faster); if
        # it starts meanwhile, the lane finds a new run afterwards and reads on from the cursor.
        since = since_param(cursor.ns) if cursor.ns else None
        stream = LogStream(
            self._client.api, c.id, since=since, tty=c.tty, follow=follow, max_line_bytes=self._max
        )
        boundary = Boundary(cursor if cursor.hashes else None)
        watchdog = asyncio.create_task(self._cut_when_dead(c, stream)) if follow else None
        pump = Pump(stream.read)
        reading: asyncio.Future[None] | None = None
        try:
            await self._calls.api(stream.open)
            lane.attached, lane.behind, lane.last_data = True, True, time.monotonic()
            if stream.in_loop():
                read = stream.read_async
            else:
                reading = asyncio.ensure_future(self._calls.call(pump.work))
                read = pump.get
            while data := await read():
                lane.last_data = time.monotonic()
                await self._deliver(lane, boundary, stream.decoder.feed(data))
                if (
                    stream.live_ns is not None
                    and lane.cursor is not None
                    and lane.cursor.ns >= stream.live_ns
                ):
                    lane.behind = False  # a line written after attaching: the backlog is read
                if stream.decoder.done:
                    break
            if not stream.complete:
                return False  # cut short: an unfinished line is read again from the cursor
            await self._deliver(lane, boundary, stream.decoder.flush())
            return True
        finally:
            lane.attached = False
            stream.close()  # ends a read the worker has pending
            pump.stop()
            if reading is not None:
                await asyncio.wait([reading])
            if watchdog is not None:
                watchdog.cancel()
                # Not `await` + suppress(CancelledError): that would also swallow this task's own
                # cancellation if it came now, and the lane would outlive its source (hang).
                await asyncio.wait([watchdog])

    async def _cut_when_dead(self, c: Container, stream: LogStream) -> None:
        """A follow stream normally ends when its container stops; one that does not is cut."""
        await c.died.wait()
        await asyncio.sleep(DEAD_STREAM_GRACE)
        log.info("%s: the log stream of stopped %s did not end; reading it again", c.sub, c.id[:12])
        stream.close()

    async def _deliver(self, lane: Lane, boundary: Boundary, runs: list[Lines]) -> None:
        assert lane.cursor is not None
        for run in boundary.filter(runs):
            lane.cursor = lane.cursor.after(run)
            live = not lane.behind  # the backlog was read: these lines come as they are written
            await self._out.put(Chunk(lane.sub, run.data, lane.cursor.dumps(), STREAMS[run.stream], live))


async def report_gap(out: Out, gap: Gap) -> None:
    log.warning("%s: a container was removed before it was read to its end", gap.source)
    await out.put(gap)
