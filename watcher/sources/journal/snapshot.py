"""Journal collection: `journalctl -o json` over the range, as JSON lines, from each gateway.

Remote hosts are reached through `watcher.ssh.connect`, with the journal source's
own settings and host-key checking; a source without hosts reads the local
journal with a local journalctl. The output streams into the spool as it
arrives (a gateway's two hours of logs never sit in memory). A journal job runs
its SSH connection in an event loop of its own, inside the worker thread the
snapshot gave it.
"""

from __future__ import annotations

import asyncio
import functools
import shlex
import subprocess

from watcher.config import JournalSourceConfig
from watcher.errors import SourceError
from watcher.names import subsource
from watcher.snapshot.collect import Collection, Job
from watcher.sources.journal import stream
from watcher.sources.ssh import connect, user_for

READ = 1 << 16
MAX_STDERR = 4096
FILENAME = "journal.json"


def journal_jobs(
    cfg: JournalSourceConfig, names: set[str], since: float | None, until: float | None
) -> list[Job]:
    """One job per host of `cfg` whose source name (`gw/<host>`) is in `names`."""
    if not cfg.hosts:
        if cfg.name not in names:
            return []
        return [Job(cfg.name, "journal", lambda col: _local(cfg, since, until, col))]
    return [
        Job(subsource(cfg.name, host), "journal", functools.partial(_remote_job, cfg, host, since, until))
        for host in cfg.hosts
        if subsource(cfg.name, host) in names
    ]


def journalctl_args(cfg: JournalSourceConfig, since: float | None, until: float | None) -> list[str]:
    """The journal source's own command (same unit or identifier match), bounded to the range, no follow."""
    args = stream.journalctl_args(cfg, stream.Start(since=since if since is not None else 0.0), follow=False)
    return args + ([f"--until=@{until:.6f}"] if until is not None else [])


def _remote_job(
    cfg: JournalSourceConfig, host: str, since: float | None, until: float | None, col: Collection
) -> None:
    asyncio.run(_remote(cfg, host, since, until, col))


async def _remote(
    cfg: JournalSourceConfig, host: str, since: float | None, until: float | None, col: Collection
) -> None:
    col.describe(host=host, **_match(cfg))
    conn = await connect(cfg, host, user_for(cfg, host))  # SourceError says why (host key, auth, timeout)
    async with conn:
        command = shlex.join(journalctl_args(cfg, since, until))
        async with conn.create_process(command, encoding=None) as proc:
            with col.member(FILENAME) as spool:
                while block := await proc.stdout.read(READ):
                    spool.write(block)
                stderr = await proc.stderr.read(MAX_STDERR)
                done = await proc.wait()
                if done.exit_status != 0:
                    raise SourceError(_failure(host, done.exit_status, stderr))


def _local(cfg: JournalSourceConfig, since: float | None, until: float | None, col: Collection) -> None:
    col.describe(host=None, **_match(cfg))
    with (
        subprocess.Popen(
            journalctl_args(cfg, since, until),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as proc,
        col.member(FILENAME) as spool,
    ):
        assert proc.stdout is not None and proc.stderr is not None  # both are PIPE
        while block := proc.stdout.read(READ):
            spool.write(block)
        stderr = proc.stderr.read(MAX_STDERR)
        if proc.wait() != 0:
            raise SourceError(_failure("localhost", proc.returncode, stderr))


def _match(cfg: JournalSourceConfig) -> dict[str, str]:
    return {"identifier": cfg.identifier} if cfg.identifier else {"unit": cfg.unit}


def _failure(host: str, status: int | None, stderr: bytes) -> str:
    said = stderr.decode(errors="replace").strip().splitlines()
    return f"{host}: journalctl exited with status {status}" + (f": {said[-1]}" if said else "")
