"""One running `journalctl` (over an SSH channel or as a local process) as a stream of byte events.

Both transports call back with stdout and stderr data in the order it arrived,
into one `Feed`: stdout carries `journalctl -o json` entries, stderr carries the
wrapper's heartbeats (the remote clock, once a second) and journalctl's own
complaints. Keeping them in arrival order is what lets a heartbeat prove that
every entry written before it was already delivered (see journal.py).

The follow script also runs the source's liveness command (`systemctl is-active
<unit>` by default) after each clock line and reports its exit status on stderr, so
the unit's state comes over the same channel, in order with the entries.

The remote command is a small POSIX sh script. It dies with the channel: without
a pty sshd sends no SIGHUP, so the heartbeat's write to the closed stderr pipe
fails within a second and the script's EXIT trap kills journalctl (which also
exits by itself when its stdout pipe is closed, systemd >= 246).
"""

from __future__ import annotations

import asyncio
import logging
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import Literal

import asyncssh

from watcher.config import JournalSourceConfig, RuleConfig

HEARTBEAT = 1.0
"""Seconds between the follow script's clock lines."""
STOP_WAIT = 3.0
"""Seconds a stopped script gets to exit (sh runs its trap after the current `sleep 1`)."""
HIGH_WATER = 1 << 20
"""Queued bytes above which the transport stops reading (TCP then pushes back on the gateway)."""

log = logging.getLogger(__name__)

Kind = Literal["out", "err", "end"]


@dataclass(frozen=True, slots=True)
class Start:
    """Where a journalctl run begins: inclusive at `cursor`, else at realtime `since`, else now."""

    cursor: str | None = None
    since: float | None = None

    def args(self) -> list[str]:
        if self.cursor is not None:
            # --cursor, not --after-cursor: with -u, systemd < 255 skips one matching entry after
            # the cursor (systemd#30288). The entry at the cursor comes back and is dropped by cursor.
            return [f"--cursor={self.cursor}"]
        if self.since is not None:
            return [f"--since=@{self.since:.6f}"]
        return ["--since=now"]


_FIELD = re.compile(r"[A-Za-z0-9_]+")


def output_fields(
    rules: Sequence[RuleConfig],
    ignore: Sequence[RuleConfig],
    source: str,
    selected: Sequence[str] | None,
    impact_field: str | None = None,
) -> tuple[str, ...]:
    """The journal fields the rules of `source` read: MESSAGE, each field rule's field, and the
    source's impact_field (whom an error hit).

    journalctl prints `__CURSOR` and `__REALTIME_TIMESTAMP` whatever it is asked, and those
    are all the rest of the watcher reads of a live entry (snapshots ask for everything).
    An entry's other fields (a couple of dozen, most of its bytes) are left on the gateway:
    less to send, decrypt and decode. A name no journal field can have is left out.
    """
    chosen = [r for r in rules if selected is None or r.name in selected] + list(ignore)
    wanted = [r.field for r in chosen if r.field is not None and r.applies_to(source)]
    fields = {"MESSAGE", *(f for f in [*wanted, impact_field] if f is not None and _FIELD.fullmatch(f))}
    return tuple(sorted(fields))


def journalctl_args(
    cfg: JournalSourceConfig, start: Start, *, follow: bool, fields: Sequence[str] | None = None
) -> list[str]:
    """`fields`: the fields to print (None: all of them)."""
    args = ["journalctl", "-o", "json", "--all", "--no-pager", "-q"]
    if fields is not None:
        args.append(f"--output-fields={','.join(fields)}")
    # A unit in production; a SYSLOG_IDENTIFIER where entries carry no unit (systemd-cat, tests).
    args += [f"--identifier={cfg.identifier}"] if cfg.identifier else [f"--unit={cfg.unit}"]
    if follow:
        args += ["--follow", "--no-tail"]
    return args + start.args()


def catch_up_script(cfg: JournalSourceConfig, start: Start, fields: Sequence[str] | None = None) -> str:
    """Every entry from `start` to the end of the journal, all boots, then exit.

    Run without --follow because --follow implies --boot (systemd >= 250): a
    gateway that rebooted while unreachable would lose its previous boot's tail.
    The clock line printed first is the time up to which the output is complete.
    """
    return f"date +%s.%N >&2; exec {shlex.join(journalctl_args(cfg, start, follow=False, fields=fields))}"


def liveness_check(cfg: JournalSourceConfig) -> str:
    """The configured liveness command with `{unit}` filled in ("" when it is turned off)."""
    return cfg.liveness_command.replace("{unit}", shlex.quote(cfg.unit))


def follow_script(cfg: JournalSourceConfig, start: Start, fields: Sequence[str] | None = None) -> str:
    """Follow from `start`, with a clock line on stderr every HEARTBEAT seconds and, after each,
    the unit's state: `unit <exit status> <clock> <first words of its output>`.

    The two lines go out in one write, so one SSH packet a second per gateway carries both;
    the clock is read once, before the check (the heartbeat vouches for what was written
    before it was read, which is before it was written, so it may be late but never early)."""
    check = liveness_check(cfg)
    beat = "date +%s.%N >&2 || exit 1"
    if check:
        ask = f"s=$({{ {check}; }} 2>/dev/null </dev/null); c=$?"
        # `set -- $s` (globbing off): the check's words joined by single spaces.
        beat = (
            f"t=$(date +%s.%N); {ask}; set -f; set -- $s; set +f; "
            """printf '%s\\nunit %s %s %s\\n' "$t" "$c" "$t" "$*" >&2 || exit 1"""
        )
    return (
        f"{shlex.join(journalctl_args(cfg, start, follow=True, fields=fields))} & j=$!\n"
        "trap 'kill $j 2>/dev/null' EXIT\n"
        "trap 'exit 1' HUP INT TERM PIPE\n"
        f"while kill -0 $j 2>/dev/null; do {beat}; sleep {HEARTBEAT:g}; done\n"
        "wait $j\n"
    )


class Feed:
    """Arrival-ordered (kind, bytes) events from one run, with backpressure on the transport.

    `get` hands over everything that arrived since the last one: when the event loop is busy
    (a big fleet), a run's entries are passed on together instead of one task switch each.
    Silence is watched by one timer per run, moved on only when it fires, rather than a
    timeout set up and torn down for each of the ten events a gateway sends a second.
    """

    def __init__(self) -> None:
        self._items: list[tuple[Kind, bytes]] = []
        self._arrived = asyncio.Event()
        """Set when an event arrives or the silence watch fires."""
        self._silent = False
        self._queued = 0
        self._paused = False
        self._pause_reading: Callable[[], object] | None = None
        self._resume_reading: Callable[[], object] | None = None
        self.exit_status: int | None = None
        self.done = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        """When anything last arrived (loop time)."""
        self._watch: asyncio.TimerHandle | None = None

    def bind(self, pause: Callable[[], object], resume: Callable[[], object]) -> None:
        self._pause_reading, self._resume_reading = pause, resume

    def put(self, kind: Kind, data: bytes) -> None:
        self._last = self._loop.time()
        self._add(kind, data)
        self._queued += len(data)
        if self._queued > HIGH_WATER and not self._paused and self._pause_reading:
            self._paused = True
            self._pause_reading()

    def end(self, reason: str) -> None:
        self._add("end", reason.encode())
        self.done.set()
        if self._watch is not None:
            self._watch.cancel()

    def _add(self, kind: Kind, data: bytes) -> None:
        self._items.append((kind, data))
        self._silent = False  # whatever arrived ended the silence the watch may have seen
        self._arrived.set()

    async def get(self, silence: float) -> list[tuple[Kind, bytes]]:
        """What arrived since the last call, in order (at least one event); TimeoutError when
        nothing at all arrived for `silence` seconds."""
        if not self._items and not self._silent:
            if self._watch is None and not self.done.is_set():
                self._watch = self._loop.call_at(self._last + silence, self._expire, silence)
            self._arrived.clear()
            await self._arrived.wait()
        if not self._items:
            raise TimeoutError
        items, self._items = self._items, []
        self._queued = 0
        if self._paused and self._resume_reading:
            self._paused = False
            self._resume_reading()
        return items

    def _expire(self, silence: float) -> None:
        """The watch fired: silent for `silence` seconds, or watch on from the last arrival."""
        deadline = self._last + silence
        if self._loop.time() < deadline:
            self._watch = self._loop.call_at(deadline, self._expire, silence)
        else:
            self._watch = None
            self._silent = True
            self._arrived.set()


def joined(arrived: list[tuple[Kind, bytes]]) -> list[tuple[Kind, bytes]]:
    """Events that arrived together, those of one kind back to back as one (their bytes
    joined, still in arrival order with the other kind's); each end as it is."""
    if len(arrived) == 1:  # a quiet loop: one packet per read
        return arrived
    out: list[tuple[Kind, bytes]] = []
    for kind, group in groupby(arrived, key=itemgetter(0)):
        if kind == "end":
            out += group
        else:
            out.append((kind, b"".join(data for _, data in group)))
    return out


class _SshSession(asyncssh.SSHClientSession[bytes]):
    def __init__(self, feed: Feed) -> None:
        self.feed = feed

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self.feed.put("err" if datatype == asyncssh.EXTENDED_DATA_STDERR else "out", data)

    def exit_status_received(self, status: int) -> None:
        self.feed.exit_status = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.feed.exit_status = -1

    def connection_lost(self, exc: Exception | None) -> None:
        self.feed.end(f"channel lost: {exc}" if exc else "channel closed")


class _LocalProtocol(asyncio.SubprocessProtocol):
    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.transport: asyncio.SubprocessTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.SubprocessTransport)
        self.transport = transport
        pipe = transport.get_pipe_transport(1)
        if isinstance(pipe, asyncio.ReadTransport):
            self.feed.bind(pipe.pause_reading, pipe.resume_reading)

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.feed.put("out" if fd == 1 else "err", data)

    def connection_lost(self, exc: Exception | None) -> None:
        # Called once the process has exited and both pipes are drained.
        if self.transport is not None:
            self.feed.exit_status = self.transport.get_returncode()
        self.feed.end("process exited")


class Run:
    """A started script: its Feed, and how to stop it (`kill` if asking did not end it in time)."""

    def __init__(self, feed: Feed, ask: Callable[[], object], kill: Callable[[], object]) -> None:
        self.feed = feed
        self._ask = ask
        self._kill = kill

    async def stop(self, *, wait: bool = True) -> None:
        """Ask the script to end and wait for it; `wait=False` (a dead link) kills it at once."""
        if not wait:
            self._kill()
            return
        self._ask()
        try:
            async with asyncio.timeout(STOP_WAIT):
                await self.feed.done.wait()
        except TimeoutError:
            log.warning("journalctl did not stop within %gs; killing it", STOP_WAIT)
        self._kill()


async def run_remote(conn: asyncssh.SSHClientConnection, script: str) -> Run:
    feed = Feed()
    # No pty: the remote side must see a plain pipe close when we go (see the module docstring).
    chan, _ = await conn.create_session(lambda: _SshSession(feed), script, encoding=None)
    feed.bind(chan.pause_reading, chan.resume_reading)
    return Run(feed, chan.close, chan.abort)


async def run_local(script: str) -> Run:
    feed = Feed()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.subprocess_exec(
        lambda: _LocalProtocol(feed), "/bin/sh", "-c", script, stdin=asyncio.subprocess.DEVNULL
    )

    def ask() -> None:
        if transport.get_returncode() is None:
            transport.terminate()  # sh's EXIT trap takes journalctl along

    return Run(feed, ask, transport.close)  # close() kills what is still running
