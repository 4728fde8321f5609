"""`watcher check-config`: what a valid config still cannot do on this machine.

Each check names the key it is about, like the config's own validation, so a
user sees one actionable line per problem. Warnings are things the daemon
copes with (a log file that does not exist yet) but the user should know.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
from docker.errors import DockerException

from watcher.config import DockerSourceConfig, FileSourceConfig, JournalSourceConfig, Settings
from watcher.errors import SourceError
from watcher.sources import ssh
from watcher.sources.docker.host import describe, open_client
from watcher.sources.docker.names import list_filters, selected


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def run(settings: Settings) -> Report:
    report = Report()
    _check_state_dir(settings.state_dir, report)
    for i, src in enumerate(settings.sources):
        key = f"sources[{i}]"
        if isinstance(src, FileSourceConfig):
            _check_file(key, src, report)
        elif isinstance(src, JournalSourceConfig):
            _check_journal(key, src, report)
        elif isinstance(src, DockerSourceConfig):
            _check_docker(key, src, report)
    return report


def _check_state_dir(path: Path, report: Report) -> None:
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or not os.access(existing, os.W_OK):
        report.problems.append(f"state_dir: {path} cannot be created or written by this user")


def _check_file(key: str, src: FileSourceConfig, report: Report) -> None:
    if src.path.exists():
        if not os.access(src.path, os.R_OK):
            report.problems.append(f"{key}.path: {src.path} is not readable by this user")
    elif not src.path.parent.is_dir():
        report.problems.append(f"{key}.path: directory {src.path.parent} does not exist")
    else:
        report.warnings.append(
            f"{key}.path: {src.path} does not exist yet; the source stays down until it appears"
        )


def _check_journal(key: str, src: JournalSourceConfig, report: Report) -> None:
    if not src.hosts:
        if shutil.which("journalctl") is None:
            report.problems.append(f"{key}: no hosts given and journalctl is not installed here")
        return
    if src.known_hosts is not None:
        try:
            asyncssh.read_known_hosts(str(src.known_hosts))
        except (OSError, ValueError) as exc:
            report.problems.append(f"{key}.known_hosts: cannot use {src.known_hosts}: {_reason(exc)}")
    for j, path in enumerate(src.client_keys):
        try:
            asyncssh.read_private_key(str(path))
        except (OSError, asyncssh.KeyImportError, ValueError) as exc:
            report.problems.append(f"{key}.client_keys[{j}]: cannot use {path}: {_reason(exc)}")
    if not report.problems:
        for j, problem in asyncio.run(_reach(src)):
            report.problems.append(f"{key}.hosts[{j}]: {problem}")


async def _reach(src: JournalSourceConfig) -> list[tuple[int, str]]:
    """Log in to every host as the daemon would (host key, key auth) and run journalctl there."""
    gate = asyncio.Semaphore(src.max_handshakes)

    async def one(j: int, host: str) -> tuple[int, str] | None:
        async with gate:
            try:
                async with await ssh.connect(src, host) as conn:
                    done = await conn.run("journalctl --version", timeout=src.connect_timeout)
            except SourceError as exc:
                return j, str(exc)
            except (asyncssh.Error, TimeoutError) as exc:
                return j, f"{host}: cannot run journalctl: {exc}"
        if done.exit_status != 0:
            return j, f"{host}: journalctl is not usable there (exit status {done.exit_status})"
        return None

    results = await asyncio.gather(*(one(j, host) for j, host in enumerate(src.hosts)))
    return [r for r in results if r is not None]


def _check_docker(key: str, src: DockerSourceConfig, report: Report) -> None:
    if src.docker_host.startswith("unix://"):
        sock = Path(src.docker_host.removeprefix("unix://"))
        if not sock.exists():
            report.problems.append(f"{key}.docker_host: {sock} does not exist (is dockerd running?)")
            return
        if not os.access(sock, os.R_OK | os.W_OK):
            report.problems.append(f"{key}.docker_host: {sock} is not accessible (docker group?)")
            return
    try:
        client = open_client(src.docker_host, timeout=15)
        try:
            client.ping()
            listed = client.api.containers(all=True, filters=list_filters(src))
        finally:
            client.close()
    except (DockerException, OSError) as exc:
        report.problems.append(
            f"{key}.docker_host: cannot reach the Docker engine at {src.docker_host}: {describe(exc)}"
        )
        return
    if not any(selected(src, (c.get("Names") or [""])[0], c.get("Labels") or {}) for c in listed):
        report.warnings.append(
            f"{key}: no container matches the selection yet; sub-sources appear when one does"
        )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
