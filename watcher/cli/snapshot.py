"""`watcher snapshot`: collect, write and verify evidence, then run the mitigation; `snapshot verify`."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
)

from watcher.cli.base import ConfigOpt, JsonOpt, app, command, err, escape, load_settings, out
from watcher.errors import InputError
from watcher.events import Trigger

if TYPE_CHECKING:
    from watcher.cli.client import Client
    from watcher.config import Settings
    from watcher.evidence import Request
    from watcher.snapshot.collect import SnapshotResult

EXIT_PARTIAL = 3
EXIT_UNVERIFIED = 4
SNAPSHOT_TIMEOUT = 3600.0
"""Seconds `--via-daemon` waits for the daemon to collect and write the snapshot."""


class _SnapshotBar:
    """Sources done (the bar) and bytes collected, on a terminal; called from collector threads."""

    def __init__(self, bar: Progress) -> None:
        self._bar = bar
        self._task = bar.add_task("snapshot", total=None, collected="0 B")
        self._bytes = 0
        self._lock = threading.Lock()

    def start(self, sources: int) -> None:
        self._bar.update(self._task, total=sources)

    def advance(self, n: int) -> None:
        with self._lock:  # += from several threads
            self._bytes += n
            collected = _size(self._bytes)
        self._bar.update(self._task, collected=collected)

    def source_done(self, source: str) -> None:
        self._bar.advance(self._task, 1)


@app.command("snapshot")
@command
def snapshot_cmd(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="verify FILE | -- CMD",
            help="`verify FILE` re-checks a snapshot; with --then, the command to run after it.",
        ),
    ] = None,
    incident: Annotated[
        str | None, typer.Option("--incident", help="Incident id, for the name and timeline.")
    ] = None,
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="Glob of source names (repeatable; default all).")
    ] = None,
    since: Annotated[str, typer.Option("--since", help="How far back, e.g. 2h.")] = "2h",
    reason: Annotated[str | None, typer.Option("--reason", help="Why, e.g. 'before rollback'.")] = None,
    redact: Annotated[bool, typer.Option("--redact", help="Hide credentials in the collected logs.")] = False,
    allow_partial: Annotated[
        bool, typer.Option("--allow-partial", help="Exit 0 (and run --then) even if a source is missing.")
    ] = False,
    via_daemon: Annotated[
        bool, typer.Option("--via-daemon", help="Let the running daemon collect and write it.")
    ] = False,
    then: Annotated[
        bool, typer.Option("--then", help="Run the command after `--` once the snapshot is verified.")
    ] = False,
    sha256: Annotated[
        str | None,
        typer.Option("--sha256", metavar="HEX", help="With verify: the sha256 published when it was taken."),
    ] = None,
    config_file: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Evidence tarball of the logs in scope (`watcher snapshot verify FILE` re-checks one).

    Prints path, size and sha256 on one line. A partial snapshot exits 3 unless
    --allow-partial; one that does not verify exits 4; with --then, CMD runs only
    after a complete, verified snapshot, is recorded as a mitigation on --incident,
    and its exit status is passed through.
    """
    rest = args or []
    if not then and rest[:1] == ["verify"]:
        _snapshot_verify(rest[1:], json_out, _published(sha256))
        return
    if sha256 is not None:
        raise InputError("--sha256 checks an archive: watcher snapshot verify FILE --sha256 HEX")
    if rest and not then:
        raise InputError(
            f"unexpected arguments {' '.join(rest)!r}: to run a command afterwards use --then -- CMD"
        )
    if then and not rest:
        raise InputError("--then needs a command after `--`, e.g. --then -- docker compose up -d")
    _snapshot_take(
        config_file,
        incident=incident,
        scope=scope or [],
        since=since,
        reason=reason,
        redact=redact,
        allow_partial=allow_partial,
        via_daemon=via_daemon,
        then=rest if then else None,
        json_out=json_out,
    )


def _published(sha256: str | None) -> str | None:
    """The hash as pasted (`sha256:` prefix and all, as `watcher snapshot` prints it), checked."""
    if sha256 is None:
        return None
    hexdigest = sha256.strip().removeprefix("sha256:").lower()
    if not re.fullmatch(r"[0-9a-f]{64}", hexdigest):
        raise InputError("--sha256 takes the 64 hex digits `watcher snapshot` printed (sha256:...)")
    return hexdigest


def _snapshot_verify(files: list[str], json_out: bool, sha256: str | None) -> None:
    from watcher.snapshot.manifest import verify

    if len(files) != 1:
        raise InputError("usage: watcher snapshot verify FILE [--sha256 HEX]")
    result = verify(Path(files[0]), sha256)
    if json_out:
        print(json.dumps(result.as_json()))
    elif result.ok:
        partial = f"; PARTIAL: {len(result.missing)} missing" if result.missing else ""
        published = ", and the archive's sha256 is the published one" if sha256 else ""
        out.print(
            f"{files[0]}: ok, {result.files} files, {result.bytes} bytes, every sha256 matches"
            f"{published}{partial}"
        )
    else:
        for problem in result.problems:
            err.print(f"[red]verify failed[/red]: {escape(problem)}")
    raise typer.Exit(0 if result.ok else 1)


def _snapshot_take(
    config_file: Path | None,
    *,
    incident: str | None,
    scope: list[str],
    since: str,
    reason: str | None,
    redact: bool,
    allow_partial: bool,
    via_daemon: bool,
    then: list[str] | None,
    json_out: bool,
) -> None:
    from watcher.cli.client import Client
    from watcher.evidence import Request

    settings = load_settings(config_file)
    req = Request.parse(
        reason=reason,
        incident=incident,
        scope=scope,
        since=since,
        redact=redact,
        trigger=Trigger.THEN if then else Trigger.MANUAL,
        now=time.time(),
    )
    client = Client(settings)
    # Before any work: a typo in the id must not surface only after the rollback ran.
    daemon_up = _incident_known(client, incident) if then and incident else True
    result, problems = _collect(settings, req, via_daemon=via_daemon, json_out=json_out)
    _report(result, problems, allow_partial=allow_partial, then=bool(then), json_out=json_out)
    if then:
        code = _run_then(then, result, client if daemon_up else None, incident)
        raise typer.Exit(code)


def _incident_known(client: Client, incident: str) -> bool:
    """Whether the daemon is up to record the mitigation; DaemonError if it does not know `incident`."""
    from watcher.errors import DaemonNotRunning

    try:
        asyncio.run(client.timeline(incident))
    except DaemonNotRunning as exc:
        err.print(f"[yellow]warning[/yellow]: {escape(str(exc))}; the mitigation will not be recorded")
        return False
    return True


def _collect(
    settings: Settings, req: Request, *, via_daemon: bool, json_out: bool
) -> tuple[SnapshotResult, list[str]]:
    """The snapshot written here or by the daemon, and what did not verify."""
    from watcher.cli.client import Client
    from watcher.evidence import take_configured
    from watcher.names import default_user
    from watcher.snapshot.collect import SnapshotResult
    from watcher.snapshot.manifest import verify

    if via_daemon:
        doc = asyncio.run(Client(settings, timeout=SNAPSHOT_TIMEOUT).snapshot(req.as_json()))
        # The daemon verified what it wrote: its file is 0600 and may not be readable here.
        return SnapshotResult.from_json(doc), doc.get("problems", [])
    with _snapshot_progress(enabled=not json_out) as progress:
        result = take_configured(settings, req, by=default_user(), progress=progress)
    return result, verify(result.path).problems


def _report(
    result: SnapshotResult, problems: list[str], *, allow_partial: bool, then: bool, json_out: bool
) -> None:
    """The one pasteable line, what is missing, and the exit when it is partial or unverified."""
    if json_out:
        print(json.dumps(result.as_json()))
    else:
        out.print(f"{result.path} {_size(result.size)} ({result.size} bytes) sha256:{result.sha256}")
    for missing in result.missing:
        err.print(f"[yellow]missing[/yellow]: {escape(missing)}")
    if result.missing and not allow_partial:
        err.print(
            f"[red]partial snapshot[/red]: {len(result.missing)} item(s) could not be collected"
            + ("; the command was NOT run" if then else "")
            + " (--allow-partial accepts it)"
        )
        raise typer.Exit(EXIT_PARTIAL)
    if problems:
        for problem in problems:
            err.print(f"[red]verify failed[/red]: {escape(problem)}")
        raise typer.Exit(EXIT_UNVERIFIED)


def _run_then(then: list[str], result: SnapshotResult, client: Client | None, incident: str | None) -> int:
    """Run the mitigation; record it on the incident through the daemon (`client`) when it is up."""
    from watcher.evidence import exit_status, mitigation_action, run_then

    err.print(f"snapshot verified; running: {escape(' '.join(then))}")
    code = run_then(then)
    if incident:
        action = mitigation_action(then, code, result)
        if client is not None:
            asyncio.run(client.mitigate(incident, action))
            err.print(f"mitigation recorded on {incident}; streak clock started")
        else:
            err.print(
                "[yellow]not recorded[/yellow] (daemon not running): once it is back, run\n"
                f"  watcher incident mitigate {incident} --action {shlex.quote(action)}"
            )
    return exit_status(code)


@contextmanager
def _snapshot_progress(enabled: bool) -> Iterator[_SnapshotBar | None]:
    if not enabled or not err.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("sources, {task.fields[collected]}"),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        yield _SnapshotBar(bar)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{n} B"
        size /= 1024
    return f"{n} B"
