"""A systemd unit's journal, on a gateway over SSH (one source per host) or local.

Each connection runs two scripts, one after the other, on one channel at a time:

1. catch-up: `journalctl` without --follow from the saved cursor (or `--since`
   the earliest open incident, or now) to the end of the journal, every boot
   included. --follow would imply --boot (systemd >= 250) and hide the tail of
   a boot that ended while the gateway was unreachable.
2. follow: `journalctl --follow` from the last cursor read, plus a clock line on
   stderr every second (stream.py).

Resuming uses --cursor (inclusive) and drops the entry whose cursor is the saved
one: --after-cursor with -u skips one more entry on systemd < 255. If the first
entry is *not* the saved cursor's, that entry is gone (vacuumed, or a new
machine id): what lay between is unknowable, so it is a Gap from the last entry
read to the first one available.

Watermark: the catch-up run proves everything up to its start time T0 (remote
clock, printed before journalctl starts). While following, a heartbeat H read
from stderr proves everything written before H - SLACK: sshd forwards stdout
and stderr in the order it reads them, and journalctl prints an entry within a
few hundred ms of journald storing it (journald coalesces its change
notifications over 250 ms; SLACK bounds the whole path). A dead link delivers
no heartbeats, so the watermark freezes at once; no heartbeat for
`keepalive_interval` seconds counts as a lost link (SSH keepalives bound the
rest at 30 s). The remote clock comes from the heartbeats, so the gateway's own
entries and its watermark are on the same clock.

Liveness: after each heartbeat the follow script runs `liveness_command` (stream.py)
and reports its exit status. A change is yielded as `Liveness` (a stop dated at the
last check that found the unit running), and while the unit runs the watermark never
passes that last check: a unit that stopped between two checks cannot prove the span
after the earlier one.

Each read yields raw JSON lines as `Chunk`s; only the first and last line of a
chunk are looked at (for their cursor and time), the scanner parses the rest.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass

import asyncssh

from watcher.config import JournalSourceConfig
from watcher.errors import HostKeyError, SourceError
from watcher.events import Chunk, Expectation, Gap, Liveness, SourceDown, Watermark
from watcher.names import subsource
from watcher.sources import Counters, SourceEvent, expectation, scan_options, ssh
from watcher.sources.journal.stream import (
    Run,
    Start,
    catch_up_script,
    follow_script,
    joined,
    run_local,
    run_remote,
)
from watcher.times import format_time

log = logging.getLogger(__name__)

SLACK = 1.0
"""Seconds journald + journalctl may take to pass an entry on; watermarks stay this far behind."""
CATCH_UP_SILENCE = ssh.DEAD_LINK_BOUND
"""Seconds a catch-up run may stay silent (seeking a big journal) before the link counts as lost."""
MAX_SPREAD = 10.0
"""Seconds over which a fleet's first connection attempts are spread."""

_CURSOR = re.compile(rb'"__CURSOR"\s*:\s*"([^"]+)"')
_REALTIME = re.compile(rb'"__REALTIME_TIMESTAMP"\s*:\s*"([0-9]{1,19})"')
_CURSOR_TIME = re.compile(r"(?:^|;)t=([0-9a-fA-F]+)")


class Fleet:
    """What the hosts of one journal source share: a limit on handshakes and a start spread."""

    def __init__(self, hosts: int, max_handshakes: int) -> None:
        self.handshakes = asyncio.Semaphore(max_handshakes)
        self.spread = min(MAX_SPREAD, 0.05 * hosts)


@dataclass(slots=True)
class _Position:
    cursor: str | None
    at: float | None
    """Realtime of the entry at `cursor`."""
    watermark: float = float("-inf")


def cursor_time(cursor: str | None) -> float | None:
    """The realtime a journal cursor carries (its `t=` field, hex microseconds)."""
    m = _CURSOR_TIME.search(cursor) if cursor else None
    return int(m.group(1), 16) / 1e6 if m else None


def _last_line(lines: bytes) -> bytes:
    return lines[lines.rfind(b"\n", 0, len(lines) - 1) + 1 :]


def _cursor(line: bytes) -> str | None:
    m = _CURSOR.search(line)
    return m.group(1).decode("ascii", "replace") if m else None


def _realtime(line: bytes) -> float | None:
    m = _REALTIME.search(line)
    return int(m.group(1)) / 1e6 if m else None


class _Lines:
    """Whole lines out of a byte stream; a partial line is held until its newline comes."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> bytes:
        nl = data.rfind(b"\n")
        if nl < 0:
            self.pending += data
            return b""
        whole = self.pending + data[: nl + 1] if self.pending else data[: nl + 1]
        self.pending = data[nl + 1 :]
        return whole


class JournalSource:
    """Follows the journal of `cfg.unit` (or `cfg.identifier`) on `host`, or locally when host is None."""

    def __init__(
        self,
        cfg: JournalSourceConfig,
        host: str | None,
        *,
        since: float | None = None,
        fleet: Fleet | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        fields: tuple[str, ...] | None = None,
    ) -> None:
        """`fields`: the journal fields to read (stream.output_fields; None: all of them)."""
        self.name = subsource(cfg.name, host) if host else cfg.name
        self._fields = fields
        self.scan = scan_options(cfg, "journal")
        self._expect = expectation(cfg, liveness=bool(cfg.liveness_command))
        self._cfg = cfg
        self._host = host
        self._since = since
        self._fleet = fleet if fleet is not None else Fleet(1, cfg.max_handshakes)
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._unit = _UnitState(self.name, cfg.unit, checked=bool(cfg.liveness_command))

    def owns(self, name: str) -> bool:
        return False

    def after(self, cursors: Mapping[str, str]) -> str | None:
        return cursors.get(self.name)

    def expectation(self, name: str) -> Expectation:
        return self._expect

    def counters(self) -> Counters:
        return Counters()

    def describe(self) -> str:
        cfg = self._cfg
        what = f"identifier {cfg.identifier}" if cfg.identifier else f"unit {cfg.unit}"
        return f"journal of {what} on {self._where}"

    @property
    def _where(self) -> str:
        """`watcher@gw-berlin-01:22`, or the local journal: where every reason it gives points."""
        if self._host is None:
            return "this host (local journalctl)"
        user = ssh.user_for(self._cfg, self._host)
        return f"{user + '@' if user else ''}{self._host}:{self._cfg.port}"

    async def read(self, after: str | None) -> AsyncGenerator[SourceEvent, None]:
        """Yield forever from cursor `after` (None: from `since`, or now); reconnect with backoff."""
        cfg = self._cfg
        pos = _Position(after, cursor_time(after))
        delay = cfg.reconnect_min
        down: str | None = None
        await asyncio.sleep(self._rng.uniform(0, self._fleet.spread))
        while True:
            healthy = False
            try:
                async for event in self._connected(pos):
                    if isinstance(event, Watermark):
                        healthy, down = True, None
                    yield event
                raise SourceError("journalctl stopped")  # _connected only returns on a clean exit
            except HostKeyError as exc:
                reason = self._located(str(exc))
                delay = cfg.reconnect_max  # nothing will change until someone edits known_hosts
            except SourceError as exc:
                reason = self._located(str(exc))
                if healthy:
                    delay = cfg.reconnect_min
            if reason != down:
                down = reason
                log.warning("%s: down: %s", self.name, reason)
                yield SourceDown(self.name, reason)
            await asyncio.sleep(delay * self._rng.uniform(0.5, 1.0))
            delay = min(delay * 2, cfg.reconnect_max)

    def _located(self, reason: str) -> str:
        """The reason, naming the host it is about (SSH errors already do)."""
        where = self._where
        host = self._host or ""
        return reason if host and reason.startswith((where, host)) else f"{where}: {reason}"

    async def _connected(self, pos: _Position) -> AsyncGenerator[SourceEvent, None]:
        conn: asyncssh.SSHClientConnection | None = None
        if self._host is not None:
            async with self._fleet.handshakes:
                conn = await ssh.connect(self._cfg, self._host, ssh.user_for(self._cfg, self._host))
        try:
            t0: list[float] = []
            async for event in self._run(conn, pos, follow=False, started=t0):
                yield event
            async for event in self._run(conn, pos, follow=True, started=t0):
                yield event
        finally:
            if conn is not None:
                conn.close()

    async def _start(self, conn: asyncssh.SSHClientConnection | None, script: str) -> Run:
        try:
            return await (run_remote(conn, script) if conn is not None else run_local(script))
        except (asyncssh.Error, OSError) as exc:
            raise SourceError(f"cannot start journalctl: {exc}") from None

    async def _run(
        self, conn: asyncssh.SSHClientConnection | None, pos: _Position, *, follow: bool, started: list[float]
    ) -> AsyncGenerator[SourceEvent, None]:
        """One journalctl run; `started` receives the catch-up run's start time (remote clock)."""
        if pos.cursor is not None:
            start = Start(cursor=pos.cursor)
        elif follow:
            start = Start(since=started[0] if started else self._since)
        else:
            start = Start(since=self._since)
        fields = self._fields
        script = (
            follow_script(self._cfg, start, fields) if follow else catch_up_script(self._cfg, start, fields)
        )
        run = await self._start(conn, script)
        reading = _Reading(self, pos, follow, started)
        silence = self._cfg.keepalive_interval if follow else CATCH_UP_SILENCE
        try:
            while not reading.finished:
                try:
                    arrived = await run.feed.get(silence)
                except TimeoutError:
                    reading.lost = True
                    raise SourceError(
                        f"nothing received for {silence:g}s (no heartbeat: link down?)"
                    ) from None
                for kind, data in joined(arrived):  # one chunk for a batch of entries
                    if kind == "out":
                        events = reading.out(data)
                    elif kind == "err":
                        events = reading.err(data)
                    else:
                        events = reading.end(data, run.feed.exit_status)
                    for event in events:
                        yield event
        finally:
            await run.stop(wait=not reading.lost)

    def _boundary(
        self, lines: bytes, pos: _Position, expect: str, *, resumed: bool
    ) -> tuple[bytes, Gap | None]:
        """Drop the entry at the resume cursor; a missing one means the journal lost what followed it."""
        first_end = lines.find(b"\n") + 1
        first = lines[:first_end]
        if _cursor(first) == expect:
            return lines[first_end:], None
        if not resumed:
            return lines, None  # following: the cursor's entry is in an earlier boot, outside --boot
        end = _realtime(first) or self._clock()
        start = pos.at if pos.at is not None else end
        reason = "journal cursor no longer in the journal (vacuumed or rotated away while not read)"
        log.warning("%s: %s; gap %s..%s", self.name, reason, format_time(start), format_time(end))
        return lines, Gap(self.name, min(start, end), end, reason)

    def _all_fields(self, complaint: str) -> None:
        """A journalctl older than --output-fields (systemd 236): read every field from now on."""
        log.warning("%s: journalctl cannot select fields (%s); reading them all", self.name, complaint)
        self._fields = None

    def _forget_cursor(self, pos: _Position, complaint: str) -> None:
        """A cursor journalctl cannot parse: go on from its time (`--since`) rather than fail forever."""
        log.warning("%s: saved cursor rejected (%s); resuming from its time", self.name, complaint)
        self._since, pos.cursor = pos.at, None


class _UnitState:
    """What the liveness checks said: reported as `Liveness` when it changes."""

    def __init__(self, source: str, unit: str, *, checked: bool) -> None:
        self.source, self.unit, self.checked = source, unit, checked
        self.running: bool | None = None
        self.reason = ""
        self.last_running: float | None = None
        """When a check last found it running (gateway clock)."""

    def cap(self, watermark: float) -> float:
        """A watermark no further than the last check that found the unit running."""
        if not self.checked or not self.running or self.last_running is None:
            return watermark
        return min(watermark, self.last_running)

    def report(self, line: bytes) -> list[SourceEvent]:
        """A `unit <exit status> <clock> <words>` line of the follow script."""
        parts = line.decode("utf-8", "replace").split()
        at = _clock_line(parts[2].encode()) if len(parts) > 2 else None
        if at is None or not parts[1].lstrip("-").isdigit():
            return []
        if parts[1] == "0":
            self.last_running = at
            if self.running is True:
                return []
            self.running = True
            return [Liveness(self.source, at, alive=True)]
        state = " ".join(parts[3:]) or "unknown (no answer from systemd)"
        reason = f"unit {self.unit} is {state}"
        if self.running is False and reason == self.reason:
            return []
        self.running, self.reason = False, reason
        since = self.last_running if self.last_running is not None else at
        return [Liveness(self.source, since, alive=False, reason=reason)]


class _Reading:
    """What one journalctl run has seen so far: partial lines, the resume boundary, complaints."""

    def __init__(self, source: JournalSource, pos: _Position, follow: bool, started: list[float]) -> None:
        self.source, self.pos, self.follow, self.started = source, pos, follow, started
        self.stdout, self.stderr = _Lines(), _Lines()
        self.expect = pos.cursor  # the entry at the cursor comes back first when it still exists
        self.complaint = ""
        self.lost = False
        self.finished = False

    def out(self, data: bytes) -> list[SourceEvent]:
        lines = self.stdout.feed(data)
        events: list[SourceEvent] = []
        if lines and self.expect is not None:
            lines, gap = self.source._boundary(lines, self.pos, self.expect, resumed=not self.follow)
            self.expect = None
            if gap is not None:
                events.append(gap)
        if lines:
            last = _last_line(lines)
            self.pos.cursor = _cursor(last) or self.pos.cursor
            self.pos.at = _realtime(last) or self.pos.at
            events.append(Chunk(self.source.name, lines, self.pos.cursor, live=self.follow))
        return events

    def err(self, data: bytes) -> list[SourceEvent]:
        events: list[SourceEvent] = []
        unit = self.source._unit
        for line in self.stderr.feed(data).splitlines():
            clock = _clock_line(line)
            if line.startswith(b"unit ") and self.follow:
                events += unit.report(line)
            elif clock is None:
                self.complaint = line.decode("utf-8", "replace").strip()
                log.info("%s: journalctl: %s", self.source.name, self.complaint)
            elif not self.follow:
                self.started.append(clock)
            elif (wm := unit.cap(clock - SLACK)) > self.pos.watermark:
                self.pos.watermark = wm
                events.append(Watermark(self.source.name, wm))
        return events

    def end(self, data: bytes, status: int | None) -> list[SourceEvent]:
        """The run ended: a catch-up run that completed proves everything up to its start."""
        pos = self.pos
        if not self.follow and status == 0 and self.started:
            self.finished = True
            wm = self.source._unit.cap(self.started[0] - SLACK)
            if wm > pos.watermark:
                pos.watermark = wm
                return [Watermark(self.source.name, wm)]
            return []
        if status != 0 and "output-fields" in self.complaint and self.source._fields is not None:
            self.source._all_fields(self.complaint)
        elif status != 0 and not self.follow and pos.cursor is not None and "cursor" in self.complaint:
            self.source._forget_cursor(pos, self.complaint)
        detail = f": {self.complaint}" if self.complaint else ""
        raise SourceError(f"journalctl stopped ({data.decode()}, exit status {status}){detail}")


def _clock_line(line: bytes) -> float | None:
    """The seconds of a `date +%s.%N` line (busybox may print a literal %N), else None."""
    head, _, frac = line.strip().partition(b".")
    if not head.isdigit():
        return None
    return float(head + b"." + frac) if frac.isdigit() else float(head)
