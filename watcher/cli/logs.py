"""`watcher classify` and `watcher replay`: recorded logs through the daemon's rules and engine."""

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from watcher.cli.base import (
    Command,
    ConfigOpt,
    JsonOpt,
    command,
    err,
    load_rules,
    load_settings,
    new_app,
    out,
)
from watcher.errors import InputError

if TYPE_CHECKING:
    from watcher.classify.stream import Input
    from watcher.events import ErrorEvent

_V = TypeVar("_V")


def _inputs(files: list[str]) -> "list[Input]":
    """FILE, `-` for stdin, or NAME=FILE to give a file the source name its rules expect."""
    from watcher.classify.stream import Input

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
def _progress(inputs: "list[Input]", enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """A byte progress bar on a terminal; nothing when piped."""
    if not enabled or not sys.stderr.isatty() or not err.is_terminal:  # a pipe: rich not even imported
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    sizes = [i.size for i in inputs]
    total = None if None in sizes else sum(s for s in sizes if s is not None)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("reading", total=total)
        yield lambda n: bar.advance(task, n)


cli = new_app()


@cli.command(cls=Command)
@command
def classify(
    files: Annotated[
        list[str],
        typer.Argument(metavar="FILE...", help="Log files (`-`: stdin, NAME=FILE: source name)."),
    ],
    config_file: ConfigOpt = None,
    show: Annotated[bool, typer.Option("--show", help="Print each error event's line.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Count the error events each rule matches, to tune rules before an incident.

    Only the config's rules (and max_line_bytes) are read: `check-config` checks the rest."""
    from watcher.classify.rules import RuleSet
    from watcher.classify.stream import classify_stream
    from watcher.cli import views

    settings = load_rules(config_file)
    ruleset = RuleSet.compile(settings.rules, settings.ignore)
    inputs = _inputs(files)
    shown: list[ErrorEvent] = []

    def on_error(event: "ErrorEvent") -> None:
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


@cli.command("replay", cls=Command)
@command
def replay_cmd(
    files: Annotated[
        list[str],
        typer.Argument(metavar="FILE...", help="Recorded logs, one source each (`-`, NAME=FILE)."),
    ],
    mitigated_at: Annotated[
        str, typer.Option("--mitigated-at", metavar="TIME", help="RFC 3339 time of the mitigation.")
    ],
    window: Annotated[
        str | None, typer.Option("--window", metavar="DURATION", help="Clean window, e.g. 15m.")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", metavar="TIME", help="Assert every file is complete through this time."),
    ] = None,
    config_file: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run recorded logs through the same rules and engine as the daemon; print the verdict."""
    from watcher.cli import views
    from watcher.replay import replay
    from watcher.times import WINDOW, parse_duration, parse_time

    settings = load_settings(config_file)
    at = _option("--mitigated-at", parse_time, mitigated_at)
    span = (
        settings.resolution.window if window is None else _option("--window", parse_duration, window, WINDOW)
    )
    end = None if until is None else _option("--until", parse_time, until)
    inputs = _inputs(files)
    with _progress(inputs, enabled=True) as progress:
        verdict = replay(inputs, settings, mitigated_at=at, window=span, until=end, progress=progress)
    if json_out:
        print(json.dumps(verdict.as_json()))
    else:
        out.print(views.verdict_text(verdict))
    raise typer.Exit(0 if verdict.resolved else 3)


def _option(name: str, parse: Callable[..., _V], text: str, *bounds: Any) -> _V:
    """`parse(text, *bounds)`; InputError naming the option when it refuses."""
    try:
        return parse(text, *bounds)
    except ValueError as exc:
        raise InputError(f"{name}: {exc}") from None
