"""`watcher incident ...`, `watcher status` and `watcher timeline`: the commands that talk to the daemon.

They read only where the daemon is (watcher.config.endpoint) and import nothing
heavy, so each starts in about the time Python, typer and rich take to load
(bench/cli_startup.py).
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from watcher.cli.base import (
    Command,
    ConfigOpt,
    JsonOpt,
    RedactOpt,
    command,
    endpoint,
    new_app,
    out,
    subcommands,
)
from watcher.errors import InputError

if TYPE_CHECKING:
    from watcher.cli.client import Client
    from watcher.schema import IncidentDoc

cli = new_app()

incident_app = subcommands(
    "An incident's life: open, hypothesis, mitigate, note, change, close, reopen, list (through the daemon)."
)
cli.add_typer(incident_app, name="incident")

IncidentArg = Annotated[
    str, typer.Argument(metavar="ID", help="Incident id, e.g. P1-20261127-liveview.", show_default=False)
]

OrgOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--org",
        metavar="ORG",
        help="An org id (impact_field) to follow: is it still affected? (repeatable).",
        show_default=False,
    ),
]
TextArg = Annotated[str, typer.Argument(metavar="TEXT", show_default=False)]
AllSitesOpt = Annotated[
    bool,
    typer.Option(
        "--all-sites", help="At every watcher of the fleet ([[sites]] in the config) at once, not this one."
    ),
]
PartialOpt = Annotated[
    bool,
    typer.Option(
        "--allow-partial",
        help="With --all-sites: succeed although a site cannot be reached (it is still reported).",
    ),
]

_D = TypeVar("_D")


def _call(config_file: Path | None, fn: "Callable[[Client], _D]") -> _D:
    from watcher.cli.client import Client

    return fn(Client(endpoint(config_file)))


def _incident_command(
    config_file: Path | None,
    fn: "Callable[[Client], IncidentDoc]",
    *,
    all_sites: bool,
    allow_partial: bool,
    json_out: bool,
    done: str,
    headline: str,
) -> None:
    """`fn` against this daemon, or with --all-sites against every site of the fleet."""
    if all_sites:
        from watcher.cli.fleet import incident_everywhere

        incident_everywhere(config_file, fn, done=done, json_out=json_out, allow_partial=allow_partial)
        return
    if allow_partial:
        raise InputError("--allow-partial only goes with --all-sites")
    _print_incident(_call(config_file, fn), json_out, headline)


@incident_app.command("open", cls=Command)
@command
def incident_open(
    incident: IncidentArg,
    title: Annotated[str, typer.Option("--title", metavar="TEXT", help="What is broken, for whom.")],
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", metavar="GLOB", help="Source names it covers (repeatable; default all)."),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option("--window", metavar="DURATION", help="Clean window, e.g. 15m (default from config)."),
    ] = None,
    org: OrgOpt = None,
    all_sites: AllSitesOpt = False,
    allow_partial: PartialOpt = False,
    config_file: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Start tracking an incident."""
    """Start tracking an incident."""
    _incident_command(
        config_file,
        lambda c: c.open_incident(incident, title, scope or [], window, org),
        all_sites=all_sites,
        allow_partial=allow_partial,
        json_out=json_out,
        done="opened",
        headline=f"opened {incident}",
    )


@incident_app.command("hypothesis", cls=Command)
@command
def incident_hypothesis(
    incident: IncidentArg, text: TextArg, config_file: ConfigOpt = None, json_out: JsonOpt = False
) -> None:
    """Record a hypothesis of the cause: on the timeline, announced, and for the postmortem to confirm."""
    doc = _call(config_file, lambda c: c.note(incident, text, hypothesis=True))
    _print_incident(doc, json_out, f"hypothesis recorded for {incident}")


@incident_app.command("mitigate", cls=Command)
@command
def incident_mitigate(
    incident: IncidentArg,
    action: Annotated[
        str,
        typer.Option("--action", metavar="TEXT", help="What was done, e.g. 'rolled back to 2026.11.26'."),
    ],
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="TIME",
            help="When it was made (RFC 3339, in the past, after the incident opened); default now.",
        ),
    ] = None,
    all_sites: AllSitesOpt = False,
    allow_partial: PartialOpt = False,
    config_file: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Record a mitigation: the clean-streak clock starts then."""
    when = None if at is None else _past(at)
    started = "now" if at is None else f"at {when}"
    _incident_command(
        config_file,
        lambda c: c.mitigate(incident, action, when),
        all_sites=all_sites,
        allow_partial=allow_partial,
        json_out=json_out,
        done="mitigation recorded for",
        headline=f"mitigation recorded for {incident}; streak clock started {started}",
    )


@incident_app.command("note", cls=Command)
@command
def incident_note(
    incident: IncidentArg,
    text: TextArg,
    all_sites: AllSitesOpt = False,
    allow_partial: PartialOpt = False,
    config_file: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Put a note on the timeline (announced to the incident channel)."""
    _incident_command(
        config_file,
        lambda c: c.note(incident, text),
        all_sites=all_sites,
        allow_partial=allow_partial,
        json_out=json_out,
        done="noted",
        headline=f"note recorded for {incident}",
    )


@incident_app.command("change", cls=Command)
@command
def incident_change(
    incident: IncidentArg,
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", metavar="GLOB", help="The new scope (repeatable): replaces the old one."),
    ] = None,
    window: Annotated[
        str | None, typer.Option("--window", metavar="DURATION", help="The new clean window, e.g. 20m.")
    ] = None,
    org: OrgOpt = None,
    config_file: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Change an open incident's scope, window or named orgs; the change goes on the timeline.

    A scope that now covers more sources restarts the streak: their errors before the change
    were not watched for this incident."""
    if scope is None and window is None and org is None:
        raise InputError("nothing to change: give --scope, --window or --org")
    doc = _call(config_file, lambda c: c.change(incident, scope=scope, window=window, orgs=org))
    _print_incident(doc, json_out, f"changed {incident}")


@incident_app.command("close", cls=Command)
@command
def incident_close(
    incident: IncidentArg,
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why it is closed.")] = "",
    all_sites: AllSitesOpt = False,
    allow_partial: PartialOpt = False,
    config_file: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Stop tracking an incident."""
    _incident_command(
        config_file,
        lambda c: c.close(incident, reason),
        all_sites=all_sites,
        allow_partial=allow_partial,
        json_out=json_out,
        done="closed",
        headline=f"closed {incident}",
    )


@incident_app.command("reopen", cls=Command)
@command
def incident_reopen(incident: IncidentArg, config_file: ConfigOpt = None, json_out: JsonOpt = False) -> None:
    """Track a closed incident again; it needs a mitigation after this to resolve."""
    doc = _call(config_file, lambda c: c.reopen(incident))
    _print_incident(doc, json_out, f"reopened {incident}")


@incident_app.command("list", cls=Command)
@command
def incident_list(
    all_: Annotated[bool, typer.Option("--all", help="Closed incidents too (those still kept).")] = False,
    config_file: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The open incidents (with --all, the closed ones too), oldest first."""
    doc = _call(config_file, lambda c: c.incidents(all_))
    if json_out:
        print(json.dumps(doc))
        return
    import time

    from watcher.cli.status_view import incident_lines

    out.print(incident_lines(doc, time.strftime("%Y-%m-%d", time.gmtime())))


def _past(at: str) -> str:
    """`--at` as RFC 3339 UTC, checked here for a quick answer (the daemon checks the bounds)."""
    from watcher.times import format_time, parse_time

    try:
        return format_time(parse_time(at)) or at
    except ValueError as exc:
        raise InputError(f"--at: {exc}") from None


def _print_incident(doc: "IncidentDoc", json_out: bool, headline: str) -> None:
    from watcher.cli import status_view

    if json_out:
        print(json.dumps(doc))
    else:
        out.print(headline)
        out.print(status_view.incident_panel(doc))


@cli.command(cls=Command)
@command
def status(
    watch: Annotated[
        bool, typer.Option("--watch", help="Redraw every 2 s until Ctrl-C, through daemon restarts.")
    ] = False,
    all_sites: Annotated[
        bool,
        typer.Option(
            "--all-sites",
            help="Every site of the fleet merged by the resolution rule (streak start by max, "
            "verified to by min; blind if any site is or cannot be reached).",
        ),
    ] = False,
    allow_partial: PartialOpt = False,
    redact: RedactOpt = True,
    config_file: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Incidents with streak progress; sources with evidence and watermark lag."""
    if allow_partial and not all_sites:
        raise InputError("--allow-partial only goes with --all-sites")
    if all_sites:
        _fleet_status(config_file, watch=watch, json_out=json_out, allow_partial=allow_partial, redact=redact)
        return
    from watcher.cli.client import Client

    if watch:
        from watcher.cli.watch import watch_status

        watch_status(lambda: Client(endpoint(config_file)), redact=redact)
        return
    client = Client(endpoint(config_file))
    if json_out:
        print(json.dumps(client.status(redact=redact)))
    else:
        from watcher.cli.status_view import status_view

        out.print(status_view(client.status(redact=redact)))


def _fleet_status(
    config_file: Path | None, *, watch: bool, json_out: bool, allow_partial: bool, redact: bool
) -> None:
    from watcher.cli import fleet

    if watch:
        from watcher.cli.watch import watch_status

        fleet.sites_of(config_file)  # no config, no sites: say so before drawing anything
        watch_status(lambda: fleet.Fleet(config_file), view=fleet.fleet_view, redact=redact)
        return
    doc = fleet.fleet_status(config_file, redact=redact)
    if json_out:
        print(json.dumps(doc))
    else:
        out.print(fleet.fleet_view(doc))
    fleet.check_status(doc, allow_partial)


@cli.command(cls=Command)
@command
def timeline(
    incident: IncidentArg,
    fmt: Annotated[
        str, typer.Option("--format", metavar="[markdown|json]", help="Markdown for the postmortem, or JSON.")
    ] = "markdown",
    redact: RedactOpt = True,
    config_file: ConfigOpt = None,
) -> None:
    """Every event of an incident with its UTC time, ready to paste into the postmortem."""
    from watcher.cli.timeline import timeline_markdown

    if fmt not in ("markdown", "json"):
        raise InputError(f"--format must be markdown or json, not {fmt!r}")
    doc = _call(config_file, lambda c: c.timeline(incident, redact=redact))
    if fmt == "json":
        print(json.dumps(doc, indent=2))
    else:
        out.print(timeline_markdown(doc), markup=False, emoji=False, highlight=False)
