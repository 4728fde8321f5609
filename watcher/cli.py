"""`watcher`: the command line. The only module that prints or exits.

Every failure a user can cause is a WatcherError and becomes one line on stderr
and a non-zero exit; anything else is reported as an internal error without a
traceback unless WATCHER_DEBUG is set.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import shlex
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.live import Live
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from watcher import __version__, config, views
from watcher.classify import classify_stream
from watcher.errors import ConfigError, InputError, WatcherError
from watcher.events import ErrorEvent
from watcher.replay import Input, replay
from watcher.rules import RuleSet
from watcher.times import parse_duration, parse_time

if TYPE_CHECKING:
    from watcher.client import Client

# The daemon, the API client and the SSH checks are imported by the commands that use
# them: aiohttp and asyncssh would add half a second to every `classify` and `replay`.

app = typer.Typer(
    name="watcher",
    help="Proves 'zero errors in the watched logs for 15 minutes' in event time.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config (default: $WATCHER_CONFIG, ./config/watcher.toml)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _fail(kind: str, message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]{kind}[/red]: {message}", markup=True, highlight=False)
    return typer.Exit(code)


def command(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn every failure into one clear line per problem and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            for problem in exc.problems:
                err.print(f"[red]ConfigError[/red]: {_escape(problem)}")
            raise typer.Exit(1) from None
        except WatcherError as exc:
            raise _fail(type(exc).__name__, _escape(str(exc))) from None
        except BrokenPipeError:
            # `watcher classify --show | head`: the reader left; not an error worth a message.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if os.environ.get("WATCHER_DEBUG"):
                raise
            raise _fail(
                "internal error",
                f"{type(exc).__name__}: {_escape(str(exc))} (WATCHER_DEBUG=1 shows it)",
                70,
            ) from None

    return wrapper


def _escape(text: str) -> str:
    return text.replace("[", "\\[")


def _config_path(given: Path | None) -> Path | None:
    if given is not None:
        return given
    env = os.environ.get("WATCHER_CONFIG")
    if env:
        return Path(env)
    for candidate in (config.DEFAULT_CONFIG, Path("/etc/novavms-watcher/watcher.toml")):
        if candidate.exists():
            return candidate
    return None


def _settings(given: Path | None) -> config.Settings:
    return config.load(_config_path(given))


@app.callback(invoke_without_command=True)
def _main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        out.print(f"novavms-watcher {__version__}")
        raise typer.Exit(0)


@app.command("check-config")
@command
def check_config(config_file: ConfigOpt = None) -> None:
    """Validate the config and reach each source; exit 1 with one line per problem."""
    from watcher import checks

    path = _config_path(config_file)
    settings = config.load(path)
    report = checks.run(settings)
    for warning in report.warnings:
        err.print(f"[yellow]warning[/yellow]: {_escape(warning)}")
    if report.problems:
        raise ConfigError(report.problems)
    names = ", ".join(settings.source_names()) or "none"
    out.print(f"{path or 'built-in defaults'}: ok ({len(settings.rules)} rules; sources: {names})")


def _inputs(files: list[str]) -> list[Input]:
    """FILE, `-` for stdin, or NAME=FILE to give a file the source name its rules expect."""
    inputs: list[Input] = []
    for spec in files:
        name, path = spec, spec
        if "=" in spec and not Path(spec).exists():
            name, path = spec.split("=", 1)
        if path == "-":
            inputs.append(Input("stdin" if name == "-" else name, lambda: sys.stdin.buffer))
            continue
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{path}: no such file" if not p.exists() else f"{path}: not a regular file")
        try:
            p.open("rb").close()
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror}") from None
        inputs.append(Input(name, lambda p=p: p.open("rb"), p.stat().st_size))  # type: ignore[misc]
    return inputs


@contextmanager
def _progress(inputs: list[Input], enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """A byte progress bar on a terminal; nothing when piped."""
    if not enabled or not err.is_terminal:
        yield None
        return
    sizes = [i.size for i in inputs]
    total = None if None in sizes else sum(s for s in sizes if s is not None)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("reading", total=total)
        yield lambda n: bar.advance(task, n)


@app.command()
@command
def classify(
    files: Annotated[list[str], typer.Argument(help="Log files (`-`: stdin, NAME=FILE: source name).")],
    config_file: ConfigOpt = None,
    show: Annotated[bool, typer.Option("--show", help="Print each error event's line.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Count the error events each rule matches, to tune rules before an incident."""
    settings = _settings(config_file)
    ruleset = RuleSet.compile(settings.rules, settings.ignore)
    inputs = _inputs(files)
    shown: list[ErrorEvent] = []

    def on_error(event: ErrorEvent) -> None:
        if json_out:
            shown.append(event)
        else:
            out.print(views.event_line(event), markup=False)

    results = {}
    with _progress(inputs, enabled=not show) as progress:
        for item in inputs:
            with item.open() as stream:
                results[item.name] = classify_stream(
                    stream,
                    item.name,
                    ruleset.for_source(item.name),
                    max_line_bytes=settings.max_line_bytes,
                    on_error=on_error if show else None,
                    progress=progress,
                )
    if json_out:
        print(json.dumps(views.classify_json(results, shown if show else None)))
    else:
        out.print(views.classify_table(results, ruleset))


@app.command("replay")
@command
def replay_cmd(
    files: Annotated[list[str], typer.Argument(help="Recorded logs, one source each (`-`, NAME=FILE).")],
    mitigated_at: Annotated[str, typer.Option("--mitigated-at", help="RFC 3339 time of the mitigation.")],
    window: Annotated[str | None, typer.Option("--window", help="Clean window, e.g. 15m.")] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Assert every file is complete through this time.")
    ] = None,
    config_file: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run recorded logs through the same rules and engine as the daemon; print the verdict."""
    settings = _settings(config_file)
    try:
        at = parse_time(mitigated_at)
        span = parse_duration(window) if window is not None else settings.resolution.window
        end = parse_time(until) if until is not None else None
    except ValueError as exc:
        raise InputError(str(exc)) from None
    inputs = _inputs(files)
    with _progress(inputs, enabled=True) as progress:
        verdict = replay(inputs, settings, mitigated_at=at, window=span, until=end, progress=progress)
    if json_out:
        print(json.dumps(verdict.as_json()))
    else:
        out.print(views.verdict_text(verdict))
    raise typer.Exit(0 if verdict.resolved else 3)


@app.command()
@command
def run(config_file: ConfigOpt = None) -> None:
    """The daemon: follow every source, verify incidents, serve /metrics and the API."""
    from watcher.daemon import Daemon

    settings = _settings(config_file)
    logging.basicConfig(
        level=os.environ.get("WATCHER_LOG_LEVEL", "INFO").upper(),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # asyncssh logs every connect and channel at INFO: hundreds of gateways would drown the rest.
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    asyncio.run(Daemon(settings).serve())


incident_app = typer.Typer(help="Open, mitigate and close incidents (through the running daemon).")
app.add_typer(incident_app, name="incident")


def _call(
    config_file: Path | None, fn: Callable[[Client], Coroutine[Any, Any, dict[str, object]]]
) -> dict[str, object]:
    from watcher.client import Client

    client = Client(_settings(config_file))
    return asyncio.run(fn(client))


@incident_app.command("open")
@command
def incident_open(
    incident: Annotated[str, typer.Argument(help="Incident id, e.g. P1-20261127-liveview.")],
    title: Annotated[str, typer.Option("--title", help="What is broken, for whom.")],
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="Glob of source names (repeatable; default all).")
    ] = None,
    window: Annotated[
        str | None, typer.Option("--window", help="Clean window (default from config).")
    ] = None,
    config_file: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Start tracking an incident."""
    doc = _call(config_file, lambda c: c.open_incident(incident, title, scope or [], window))
    _print_incident(doc, json_out, f"opened {incident}")


@incident_app.command("mitigate")
@command
def incident_mitigate(
    incident: Annotated[str, typer.Argument(help="Incident id.")],
    action: Annotated[str, typer.Option("--action", help="What was done, e.g. 'rolled back to 2026.11.26'.")],
    config_file: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Record a mitigation: the clean-streak clock starts now."""
    doc = _call(config_file, lambda c: c.mitigate(incident, action))
    _print_incident(doc, json_out, f"mitigation recorded for {incident}; streak clock started")


@incident_app.command("close")
@command
def incident_close(
    incident: Annotated[str, typer.Argument(help="Incident id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is closed.")] = "",
    config_file: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Stop tracking an incident."""
    doc = _call(config_file, lambda c: c.close(incident, reason))
    _print_incident(doc, json_out, f"closed {incident}")


def _print_incident(doc: dict[str, object], json_out: bool, headline: str) -> None:
    if json_out:
        print(json.dumps(doc))
    else:
        out.print(headline)
        out.print(views.incident_panel(doc))


@app.command()
@command
def status(
    watch: Annotated[bool, typer.Option("--watch", help="Refresh every 2 s until Ctrl-C.")] = False,
    config_file: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Incidents with streak progress; sources with watermark lag."""
    from watcher.client import Client

    settings = _settings(config_file)
    client = Client(settings)
    if json_out:
        print(json.dumps(asyncio.run(client.status())))
        return
    if not watch:
        out.print(views.status_view(asyncio.run(client.status())))
        return

    async def loop() -> None:
        with Live(console=out, auto_refresh=False) as live:
            while True:
                live.update(views.status_view(await client.status()), refresh=True)
                await asyncio.sleep(2)

    asyncio.run(loop())


@app.command()
@command
def timeline(
    incident: Annotated[str, typer.Argument(help="Incident id.")],
    fmt: Annotated[str, typer.Option("--format", help="markdown or json.")] = "markdown",
    config_file: ConfigOpt = None,
) -> None:
    """Every event of an incident with its UTC time, ready for the postmortem."""
    if fmt not in ("markdown", "json"):
        raise InputError(f"--format must be markdown or json, not {fmt!r}")
    doc = _call(config_file, lambda c: c.timeline(incident))
    print(json.dumps(doc, indent=2) if fmt == "json" else views.timeline_markdown(doc))


# ---- snapshot ---------------------------------------------------------------------------

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
        _snapshot_verify(rest[1:], json_out)
        return
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


def _snapshot_verify(files: list[str], json_out: bool) -> None:
    from watcher.snapshot import verify

    if len(files) != 1:
        raise InputError("usage: watcher snapshot verify FILE")
    result = verify(Path(files[0]))
    if json_out:
        print(json.dumps(result.as_json()))
    elif result.ok:
        partial = f"; PARTIAL: {len(result.missing)} missing" if result.missing else ""
        out.print(
            f"{files[0]}: ok, {result.files} files, {result.bytes} bytes, every sha256 matches{partial}"
        )
    else:
        for problem in result.problems:
            err.print(f"[red]verify failed[/red]: {_escape(problem)}")
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
    from watcher.client import Client, default_user
    from watcher.errors import DaemonNotRunning
    from watcher.snapshot import SnapshotResult, verify
    from watcher.snapshot.command import Request, exit_status, mitigation_action, run_then, take_configured

    settings = _settings(config_file)
    req = Request.parse(
        reason=reason,
        incident=incident,
        scope=scope,
        since=since,
        redact=redact,
        trigger="then" if then else "manual",
        now=time.time(),
    )
    client = Client(settings)
    daemon_up = True
    if then and incident:
        # Before any work: a typo in the id must not surface only after the rollback ran.
        try:
            asyncio.run(client.timeline(incident))
        except DaemonNotRunning as exc:
            daemon_up = False
            err.print(f"[yellow]warning[/yellow]: {_escape(str(exc))}; the mitigation will not be recorded")
    if via_daemon:
        doc = asyncio.run(Client(settings, timeout=SNAPSHOT_TIMEOUT).snapshot(req.as_json()))
        result = SnapshotResult.from_json(doc)
        # The daemon verified what it wrote: its file is 0600 and may not be readable here.
        listed = doc.get("problems")
        problems = [str(p) for p in listed] if isinstance(listed, list) else []
    else:
        with _snapshot_progress(enabled=not json_out) as progress:
            result = take_configured(settings, req, by=default_user(), progress=progress)
        problems = verify(result.path).problems
    if json_out:
        print(json.dumps(result.as_json()))
    else:
        out.print(f"{result.path} {_size(result.size)} ({result.size} bytes) sha256:{result.sha256}")
    for missing in result.missing:
        err.print(f"[yellow]missing[/yellow]: {_escape(missing)}")
    if result.missing and not allow_partial:
        err.print(
            f"[red]partial snapshot[/red]: {len(result.missing)} item(s) could not be collected"
            + ("; the command was NOT run" if then else "")
            + " (--allow-partial accepts it)"
        )
        raise typer.Exit(EXIT_PARTIAL)
    if problems:
        for problem in problems:
            err.print(f"[red]verify failed[/red]: {_escape(problem)}")
        raise typer.Exit(EXIT_UNVERIFIED)
    if not then:
        return
    err.print(f"snapshot verified; running: {_escape(' '.join(then))}")
    code = run_then(then)
    if incident:
        action = mitigation_action(then, code, result)
        if daemon_up:
            asyncio.run(client.mitigate(incident, action))
            err.print(f"mitigation recorded on {incident}; streak clock started")
        else:
            err.print(
                "[yellow]not recorded[/yellow] (daemon not running): once it is back, run\n"
                f"  watcher incident mitigate {incident} --action {shlex.quote(action)}"
            )
    raise typer.Exit(exit_status(code))


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


notify_app = typer.Typer(help="Announcement channels (Slack-compatible or JSON webhooks).")
app.add_typer(notify_app, name="notify")


@notify_app.command("test")
@command
def notify_test(config_file: ConfigOpt = None, json_out: JsonOpt = False) -> None:
    """Send a test message to each configured channel, as the daemon would; exit 1 if one fails."""
    import socket

    from watcher.channels import send_test

    settings = _settings(config_file)
    results = asyncio.run(send_test(settings.notify, host=socket.gethostname()))
    if json_out:
        print(json.dumps({"channels": [r.as_json() for r in results]}))
    else:
        for r in results:
            if r.ok:
                out.print(f"{r.channel}: ok (HTTP {r.status})")
            else:
                out.print(f"[red]{r.channel}: failed[/red]: {_escape(r.error or '')}", markup=True)
    if not all(r.ok for r in results):
        raise typer.Exit(1)
