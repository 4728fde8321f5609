"""`--all-sites`: a command sent to every watcher of the fleet (`[[sites]]`), and `watcher sites`.

Each site is asked at once, in a thread of its own (the client blocks), so a site
that does not answer costs its timeout once, not once per site. A site that cannot
be reached (nothing listens, the network or the daemon does not answer in time) is
reported and fails the command unless `--allow-partial`; a site that answers with a
refusal (the incident exists there already, is closed, the token is wrong) always
fails it: that is not a network's passing fault but something to fix. `watcher
status --all-sites` merges the sites' status with the resolution rule (watcher.fleet).
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from watcher.cli.base import Command, ConfigOpt, command, config_path, new_app, out, subcommands
from watcher.errors import DaemonError, DaemonUnreachable, InputError

if TYPE_CHECKING:
    from rich.console import RenderableType

    from watcher.cli.client import Client
    from watcher.config.sites import Site
    from watcher.fleet import FleetStatusDoc
    from watcher.schema import IncidentDoc

_D = TypeVar("_D")

cli = new_app()
sites_app = subcommands("The watchers of a fleet, one per site ([[sites]] in the config).")
cli.add_typer(sites_app, name="sites")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[_D]):
    """What one site answered: a document, or why not."""

    site: "Site"
    doc: _D | None
    error: str | None = None
    reachable: bool = True


def sites_of(config_file: Path | None) -> "list[Site]":
    """The `[[sites]]` of the config; InputError when there are none."""
    from watcher.config.sites import read_sites

    path = config_path(config_file)
    if path is None:
        raise InputError("--all-sites needs a config that lists the fleet's [[sites]] (--config FILE)")
    sites = read_sites(path)
    if not sites:
        raise InputError(f"{path} lists no [[sites]] (name, api_url, token_file) for --all-sites")
    return sites


def across(sites: "Sequence[Site]", call: "Callable[[Client], _D]") -> list[Outcome[_D]]:
    """`call` against every site at once; one outcome per site, in the order of `sites`."""
    from concurrent.futures import ThreadPoolExecutor

    from watcher.cli.client import Client

    def one(site: "Site") -> Outcome[_D]:
        try:
            return Outcome(site, call(Client(site)))
        except DaemonUnreachable as exc:
            return Outcome(site, None, str(exc), reachable=False)
        except DaemonError as exc:
            return Outcome(site, None, str(exc))

    with ThreadPoolExecutor(max_workers=len(sites)) as pool:
        return list(pool.map(one, sites))


def check(outcomes: Sequence[Outcome[_D]], allow_partial: bool, done: str) -> None:
    """DaemonError naming the sites where it was not `done` (see `_fail`)."""
    failed = [(o.site.name, o.reachable) for o in outcomes if o.doc is None]
    _fail(failed, len(outcomes), allow_partial, f"not {done} at")


def _fail(
    failed: Sequence[tuple[str, bool]], total: int, allow_partial: bool, what: str, note: str = ""
) -> None:
    """DaemonError naming the `failed` sites (name, reachable), unless only unreachable ones
    failed and `allow_partial` accepts that: a refusal is never a network's passing fault."""
    refused = [name for name, reachable in failed if reachable]
    if not failed or (allow_partial and not refused):
        return
    names = ", ".join(f"{name} ({'refused' if reachable else 'unreachable'})" for name, reachable in failed)
    hint = "" if refused else "; --allow-partial accepts that"
    raise DaemonError(f"{what} {len(failed)} of {total} sites: {names}{note}{hint}")


def incident_everywhere(
    config_file: Path | None,
    call: "Callable[[Client], IncidentDoc]",
    *,
    done: str,
    json_out: bool,
    allow_partial: bool,
) -> None:
    """An incident command at every site: one line (or JSON entry) per site, then the verdict."""
    outcomes = across(sites_of(config_file), call)
    if json_out:
        print(json.dumps({"sites": [_outcome_json(o) for o in outcomes]}))
    else:
        for o in outcomes:
            out.print(_outcome_line(o, done))
    check(outcomes, allow_partial, done)


def fleet_status(config_file: Path | None, *, redact: bool = True) -> "FleetStatusDoc":
    """Every site's status, merged (watcher.fleet); `redact=False` needs every site's token."""
    import time

    from watcher.fleet import SiteStatus, merge

    outcomes = across(sites_of(config_file), lambda c: c.status(redact=redact))
    return merge([SiteStatus(o.site.name, o.doc, o.error, o.reachable) for o in outcomes], time.time())


class Fleet:
    """The fleet as `watcher status --watch` polls it: the merged status, each time anew."""

    def __init__(self, config_file: Path | None) -> None:
        self._config_file = config_file

    def status(self, *, redact: bool = True) -> "FleetStatusDoc":
        return fleet_status(self._config_file, redact=redact)


def fleet_view(doc: "FleetStatusDoc") -> "RenderableType":
    """The merged status under one line per site that gave none."""
    from rich.console import Group
    from rich.text import Text

    from watcher.cli.status_view import status_view

    names = ", ".join(s["name"] for s in doc["sites"])
    rows: list[RenderableType] = [Text(f"sites: {names}", style="dim")]
    rows += [
        Text(
            f"site {s['name']} {'refused' if s['reachable'] else 'UNREACHABLE'}: {s['error']}",
            style="bold red",
        )
        for s in doc["sites"]
        if s["error"] is not None
    ]
    return Group(*rows, status_view(doc))


def check_status(doc: "FleetStatusDoc", allow_partial: bool) -> None:
    """DaemonError naming the sites that gave no status (see `_fail`)."""
    failed = [(s["name"], s["reachable"]) for s in doc["sites"] if s["error"] is not None]
    _fail(failed, len(doc["sites"]), allow_partial, "no status from", " (their incidents are blind)")


def _outcome_line(o: "Outcome[IncidentDoc]", done: str) -> str:
    from watcher.cli.base import escape

    if o.doc is not None:
        return f"{o.site.name}: {done} {o.doc['id']} ({o.doc['state']})"
    what = "refused" if o.reachable else "UNREACHABLE"
    return f"[red]{o.site.name}: {what}[/red]: {escape(o.error or '')}"


def _outcome_json(o: "Outcome[IncidentDoc]") -> dict[str, object]:
    return {
        "site": o.site.name,
        "ok": o.doc is not None,
        "reachable": o.reachable,
        "error": o.error,
        "incident": o.doc,
    }


@sites_app.command("rules", cls=Command)
@command
def sites_rules(config_file: ConfigOpt = None) -> None:
    """Print the Prometheus rule file of the expected sites (monitoring/rules/watcher-sites.rules.yml)
    from the config's [[sites]], for the global Prometheus."""
    sites = sites_of(config_file)
    out.print(expected_sites_rules([s.name for s in sites]), markup=False, highlight=False)


def expected_sites_rules(names: Sequence[str]) -> str:
    """The `watcher:expected_site` rules of `names` (checked site names: nothing to escape in quotes)."""
    head = (
        f"# The sites every fleet verdict needs ({len(names)}), from the [[sites]] of a watcher config\n"
        "# (`watcher sites rules`). Load beside watcher-fleet.rules.yml on the global Prometheus.\n"
        "groups:\n  - name: watcher-expected-sites\n    rules:\n"
    )
    rule = (
        "      - record: watcher:expected_site\n        expr: vector(1)\n"
        '        labels:\n          site: "{}"\n'
    )
    return head + "".join(rule.format(n) for n in names)
