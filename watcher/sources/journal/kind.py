"""The journal kind: one `[[sources]] kind = "journal"` entry is one JournalSource per host
(`gw/<host>`), or one reading the local journal when it has no hosts."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Sequence

import asyncssh

from watcher.config import JournalSourceConfig
from watcher.errors import SourceError
from watcher.names import in_scope, subsource
from watcher.snapshot.collect import Job
from watcher.sources import BuildContext, Findings, Source, ssh
from watcher.sources.journal.snapshot import journal_jobs
from watcher.sources.journal.source import Fleet, JournalSource
from watcher.sources.journal.stream import output_fields


class JournalKind:
    def __init__(self, cfg: JournalSourceConfig) -> None:
        self.cfg = cfg

    def names(self) -> list[str]:
        return [subsource(self.cfg.name, h) for h in self.cfg.hosts] if self.cfg.hosts else [self.cfg.name]

    def build(self, ctx: BuildContext) -> list[Source]:
        cfg = self.cfg
        fleet = Fleet(len(cfg.hosts), cfg.max_handshakes)
        hosts: list[str | None] = [*cfg.hosts] or [None]  # no hosts: the local journal
        return [
            JournalSource(
                cfg, host, since=ctx.since, fleet=fleet, clock=ctx.clock, fields=self._fields(ctx, host)
            )
            for host in hosts
        ]

    def _fields(self, ctx: BuildContext, host: str | None) -> tuple[str, ...] | None:
        if ctx.rules is None:
            return None
        name = subsource(self.cfg.name, host) if host else self.cfg.name
        return output_fields(ctx.rules, ctx.ignore, name, self.cfg.rules, self.cfg.impact_field)

    async def check(self, key: str) -> Findings:
        """The trust files load, then every host is logged in to as the daemon would."""
        cfg, found = self.cfg, Findings()
        if not cfg.hosts:
            if shutil.which("journalctl") is None:
                found.problems.append(f"{key}: no hosts given and journalctl is not installed here")
            return found
        found.problems += ssh.trust_problems(cfg, key)
        if not found.problems:
            found.problems += [f"{key}.hosts[{j}]: {problem}" for j, problem in await self._reach()]
        return found

    async def _reach(self) -> list[tuple[int, str]]:
        """Log in to every host as the daemon would (host key, key auth) and run journalctl there."""
        cfg = self.cfg
        gate = asyncio.Semaphore(cfg.max_handshakes)

        async def one(j: int, host: str) -> tuple[int, str] | None:
            async with gate:
                try:
                    async with await ssh.connect(cfg, host, ssh.user_for(cfg, host)) as conn:
                        done = await conn.run("journalctl --version", timeout=cfg.connect_timeout)
                except SourceError as exc:
                    return j, str(exc)
                except (asyncssh.Error, TimeoutError) as exc:
                    return j, f"{host}: cannot run journalctl: {exc}"
            if done.exit_status != 0:
                return j, f"{host}: journalctl is not usable there (exit status {done.exit_status})"
            return None

        results = await asyncio.gather(*(one(j, host) for j, host in enumerate(cfg.hosts)))
        return [r for r in results if r is not None]

    def snapshot_jobs(
        self, scope: Sequence[str], since: float | None, until: float | None, stack: contextlib.ExitStack
    ) -> list[Job]:
        return journal_jobs(self.cfg, {n for n in self.names() if in_scope(n, scope)}, since, until)
