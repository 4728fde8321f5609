"""Every command of `watcher` but `snapshot`: check-config, classify, replay, run, incident, status, ..."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.live import Live
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from watcher import config
from watcher.classify.rules import RuleSet
from watcher.classify.stream import classify_stream
from watcher.cli import status_view, views
from watcher.cli.base import (
    ConfigOpt,
    JsonOpt,
    RedactOpt,
    app,
    command,
    config_path,
    err,
    escape,
    load_settings,
    out,
)
from watcher.cli.timeline import timeline_markdown
from watcher.errors import ConfigError, InputError
from watcher.events import ErrorEvent
from watcher.replay import Input, replay
from watcher.schema import IncidentDoc
from watcher.times import WINDOW, parse_duration, parse_time

if TYPE_CHECKING:
    from watcher.cli.client import Client


# The daemon, the API client and the SSH checks are imported by the commands that use
# them: aiohttp and asyncssh would add half a second to every `classify` and `replay`.


@app.command("check-config")
@command
def check_config(config_file: ConfigOpt = None) -> None:
    """Validate the config and reach each source; exit 1 with one line per problem."""
    from watcher.cli import checks
    from watcher.sources.registry import source_names

    path = config_path(config_file)
    try:
        settings = config.load(path)
    except ConfigError as exc:  # still reach what can be reached: every problem in one run
        report = checks.probe(config.valid_sources(path))
        _warn(report.warnings)
        raise ConfigError(exc.problems + report.problems) from None
    report = checks.run(settings)
    _warn(report.warnings)
    if report.problems:
        raise ConfigError(report.problems)
    names = ", ".join(source_names(settings)) or "none"
    out.print(f"{path or 'built-in defaults'}: ok ({len(settings.rules)} rules; sources: {names})")


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        err.print(f"[yellow]warning[/yellow]: {escape(warning)}")


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
    settings = load_settings(config_file)
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
    settings = load_settings(config_file)
    at = _option("--mitigated-at", parse_time, mitigated_at)
    span = settings.resolution.window if window is None else _option("--window", _window, window)
    end = None if until is None else _option("--until", parse_time, until)
    inputs = _inputs(files)
    with _progress(inputs, enabled=True) as progress:
        verdict = replay(inputs, settings, mitigated_at=at, window=span, until=end, progress=progress)
    if json_out:
        print(json.dumps(verdict.as_json()))
    else:
        out.print(views.verdict_text(verdict))
    raise typer.Exit(0 if verdict.resolved else 3)


def _window(text: str) -> float:
    return parse_duration(text, WINDOW)


_V = TypeVar("_V")


def _option(name: str, parse: Callable[[str], _V], text: str) -> _V:
    """`parse(text)`; InputError naming the option when it refuses."""
    try:
        return parse(text)
    except ValueError as exc:
        raise InputError(f"{name}: {exc}") from None


@app.command()
@command
def run(config_file: ConfigOpt = None) -> None:
    """The daemon: follow every source, verify incidents, serve /metrics and the API."""
    from watcher.daemon.daemon import Daemon

    settings = load_settings(config_file)
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


_D = TypeVar("_D")


def _call(config_file: Path | None, fn: Callable[[Client], Coroutine[Any, Any, _D]]) -> _D:
    from watcher.cli.client import Client

    client = Client(load_settings(config_file))
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


def _print_incident(doc: IncidentDoc, json_out: bool, headline: str) -> None:
    if json_out:
        print(json.dumps(doc))
    else:
        out.print(headline)
        out.print(status_view.incident_panel(doc))


@app.command()
@command
def status(
    watch: Annotated[bool, typer.Option("--watch", help="Refresh every 2 s until Ctrl-C.")] = False,
    redact: RedactOpt = True,
    config_file: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Incidents with streak progress; sources with watermark lag."""
    from watcher.cli.client import Client

    settings = load_settings(config_file)
    client = Client(settings)
    if json_out:
        print(json.dumps(asyncio.run(client.status(redact=redact))))
        return
    if not watch:
        out.print(status_view.status_view(asyncio.run(client.status(redact=redact))))
        return

    async def loop() -> None:
        with Live(console=out, auto_refresh=False) as live:
            while True:
                live.update(status_view.status_view(await client.status(redact=redact)), refresh=True)
                await asyncio.sleep(2)

    asyncio.run(loop())


@app.command()
@command
def timeline(
    incident: Annotated[str, typer.Argument(help="Incident id.")],
    fmt: Annotated[str, typer.Option("--format", help="markdown or json.")] = "markdown",
    redact: RedactOpt = True,
    config_file: ConfigOpt = None,
) -> None:
    """Every event of an incident with its UTC time, ready for the postmortem."""
    if fmt not in ("markdown", "json"):
        raise InputError(f"--format must be markdown or json, not {fmt!r}")
    doc = _call(config_file, lambda c: c.timeline(incident, redact=redact))
    if fmt == "json":
        print(json.dumps(doc, indent=2))
    else:
        out.print(timeline_markdown(doc), markup=False)


notify_app = typer.Typer(help="Announcement channels (Slack-compatible or JSON webhooks).")
app.add_typer(notify_app, name="notify")


@notify_app.command("test")
@command
def notify_test(config_file: ConfigOpt = None, json_out: JsonOpt = False) -> None:
    """Send a test message to each configured channel, as the daemon would; exit 1 if one fails."""
    import socket

    from watcher.notify.channels import send_test

    settings = load_settings(config_file)
    results = asyncio.run(send_test(settings.notify, host=socket.gethostname()))
    if json_out:
        print(json.dumps({"channels": [r.as_json() for r in results]}))
    else:
        for r in results:
            if r.ok:
                out.print(f"{r.channel}: ok (HTTP {r.status})")
            else:
                out.print(f"[red]{r.channel}: failed[/red]: {escape(r.error or '')}", markup=True)
    if not all(r.ok for r in results):
        raise typer.Exit(1)
