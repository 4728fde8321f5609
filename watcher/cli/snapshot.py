"""`watcher snapshot`: collect, write and verify evidence, then run the mitigation; `snapshot verify`."""

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
from typer._click.core import Context

from watcher.cli.base import (
    Command,
    ConfigOpt,
    Group,
    JsonOpt,
    command,
    err,
    escape,
    load_settings,
    new_app,
    out,
)
from watcher.errors import InputError

if TYPE_CHECKING:
    from rich.progress import Progress

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

    def __init__(self, bar: "Progress") -> None:
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


cli = new_app()


class _SnapshotGroup(Group):
    """`snapshot verify FILE` is a subcommand; any other words after the options are --then's command."""

    def invoke(self, ctx: Context) -> object:
        words = [*ctx._protected_args, *ctx.args]
        if words and (ctx.params.get("then") or words[0] not in self.commands):
            # click would look the command's first word up as a subcommand.
            ctx.meta[_THEN] = words
            ctx._protected_args, ctx.args = [], []
        return super().invoke(ctx)


_THEN = "watcher.snapshot.then"
snapshot_app = typer.Typer(
    cls=_SnapshotGroup,
    invoke_without_command=True,
    subcommand_metavar="[-- CMD [ARGS]...]",
    rich_markup_mode=None,
)
cli.add_typer(snapshot_app, name="snapshot")


@snapshot_app.callback()
@command
def snapshot_cmd(
    ctx: typer.Context,
    incident: Annotated[
        str | None,
        typer.Option("--incident", metavar="ID", help="Incident id: in the file name and on its timeline."),
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", metavar="GLOB", help="Source names to collect (repeatable; default all)."),
    ] = None,
    since: Annotated[str, typer.Option("--since", metavar="DURATION", help="How far back, e.g. 2h.")] = "2h",
    reason: Annotated[
        str | None, typer.Option("--reason", metavar="TEXT", help="Why, e.g. 'before rollback'.")
    ] = None,
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
    config_file: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Evidence tarball of the logs in scope, verified; with --then, the mitigation right after it.

    Prints path, size and sha256 on one line. A partial snapshot exits 3 unless
    --allow-partial; one that does not verify exits 4; with --then, CMD runs only
    after a complete, verified snapshot, is recorded as a mitigation on --incident,
    and its exit status is passed through. The snapshot goes on the incident's
    timeline and into watcher_snapshots_total (queued for the daemon when it is not
    running). `watcher snapshot verify FILE` re-checks one.
    """
    if ctx.invoked_subcommand is not None:
        return
    rest: list[str] = ctx.meta.get(_THEN, [])
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


@snapshot_app.command("verify", cls=Command)
@command
def snapshot_verify(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A snapshot archive (.tar.gz).", show_default=False)
    ],
    sha256: Annotated[
        str | None,
        typer.Option("--sha256", metavar="HEX", help="The sha256 published when it was taken."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Re-check every sha256 in a snapshot's manifest (and, with --sha256, the archive's own);
    exit 1 with one line per problem."""
    from watcher.snapshot.manifest import verify

    published = _published(sha256)
    result = verify(file, published)
    if json_out:
        print(json.dumps(result.as_json()))
    elif result.ok:
        partial = f"; PARTIAL: {len(result.missing)} missing" if result.missing else ""
        same = ", and the archive's sha256 is the published one" if published else ""
        out.print(
            f"{file}: ok, {result.files} files, {result.bytes} bytes, every sha256 matches{same}{partial}"
        )
    else:
        for problem in result.problems:
            err.print(f"[red]verify failed[/red]: {escape(problem)}")
    raise typer.Exit(0 if result.ok else 1)


def _published(sha256: str | None) -> str | None:
    """The hash as pasted (`sha256:` prefix and all, as `watcher snapshot` prints it), checked."""
    if sha256 is None:
        return None
    hexdigest = sha256.strip().removeprefix("sha256:").lower()
    if not re.fullmatch(r"[0-9a-f]{64}", hexdigest):
        raise InputError("--sha256 takes the 64 hex digits `watcher snapshot` printed (sha256:...)")
    return hexdigest


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
    from watcher.cli.base import endpoint
    from watcher.cli.client import Client
    from watcher.events import Trigger
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
    client = Client(endpoint(config_file))
    # Before any work: a typo in the id must not surface only after the rollback ran.
    daemon_up = _incident_known(client, incident) if then and incident else True
    result, problems = _collect(settings, req, client if via_daemon else None, json_out=json_out)
    if not via_daemon:  # the daemon records what it wrote itself
        _record(client, settings.state_dir, req, result)
    _report(result, problems, allow_partial=allow_partial, then=bool(then), json_out=json_out)
    if then:
        code = _run_then(then, result, client if daemon_up else None, incident)
        raise typer.Exit(code)


def _incident_known(client: "Client", incident: str) -> bool:
    """Whether the daemon is up to record the mitigation; DaemonError if it does not know `incident`."""
    from watcher.errors import DaemonNotRunning

    try:
        client.timeline(incident)
    except DaemonNotRunning as exc:
        err.print(f"[yellow]warning[/yellow]: {escape(str(exc))}; the mitigation will not be recorded")
        return False
    return True


def _collect(
    settings: "Settings", req: "Request", daemon: "Client | None", *, json_out: bool
) -> "tuple[SnapshotResult, list[str]]":
    """The snapshot written here, or by the `daemon` when given, and what did not verify."""
    from watcher.cli.client import Client
    from watcher.evidence import take_configured
    from watcher.names import default_user
    from watcher.snapshot.collect import SnapshotResult
    from watcher.snapshot.manifest import verify

    if daemon is not None:
        doc = Client(daemon.endpoint, timeout=SNAPSHOT_TIMEOUT).snapshot(req.as_json())
        # The daemon verified what it wrote: its file is 0600 and may not be readable here.
        return SnapshotResult.from_json(doc), doc.get("problems", [])
    with _snapshot_progress(enabled=not json_out) as progress:
        result = take_configured(settings, req, by=default_user(), progress=progress)
    return result, verify(result.path).problems


def _record(client: "Client", state_dir: Path, req: "Request", result: "SnapshotResult") -> None:
    """On the incident's timeline and in watcher_snapshots_total: through the daemon, or queued
    in the state_dir for it when it does not answer."""
    from watcher.errors import DaemonError, DaemonNotRunning
    from watcher.names import default_user
    from watcher.snapshot.spool import queue

    taken: dict[str, object] = {
        **result.as_json(),
        "reason": req.reason,
        "trigger": str(req.trigger),
        "incident": req.incident,
        "at": req.until,
    }
    try:
        client.record_snapshot(taken)
    except DaemonNotRunning:
        try:
            path = queue(state_dir, {**taken, "by": default_user()})
        except OSError as exc:
            err.print(f"[yellow]not recorded[/yellow]: no daemon answers and {escape(str(exc))}")
            return
        err.print(f"no daemon answers: queued for it in {escape(str(path))} (recorded when it starts)")
    except DaemonError as exc:
        err.print(f"[yellow]not recorded on the timeline[/yellow]: {escape(str(exc))}")


def _report(
    result: "SnapshotResult", problems: list[str], *, allow_partial: bool, then: bool, json_out: bool
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


def _run_then(
    then: list[str], result: "SnapshotResult", client: "Client | None", incident: str | None
) -> int:
    """Run the mitigation; record it on the incident through the daemon (`client`) when it is up."""
    from watcher.evidence import exit_status, mitigation_action, run_then

    err.print(f"snapshot verified; running: {escape(' '.join(then))}")
    code = run_then(then)
    if incident:
        action = mitigation_action(then, code, result)
        if client is not None:
            client.mitigate(incident, action)
            err.print(f"mitigation recorded on {incident}; streak clock started")
        else:
            err.print(
                "[yellow]not recorded[/yellow] (daemon not running): once it is back, run\n"
                f"  watcher incident mitigate {incident} --action {shlex.quote(action)}"
            )
    return exit_status(code)


@contextmanager
def _snapshot_progress(enabled: bool) -> "Iterator[_SnapshotBar | None]":
    if not enabled or not err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

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
