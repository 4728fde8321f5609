"""`watcher statuspage ID` and `watcher postmortem ID`: the runbook's phases 3 and 5 from the record.

Both read the incident's record through the daemon. `statuspage` prints (or writes) a
customer-safe draft only once impact is confirmed, and exits 3 while it is withheld, so a
script can tell "nothing to post yet" from an error; publishing stays a person's action.
`postmortem` writes `DIR/YYYY-MM-DD-<slug>.md` and refuses to overwrite a draft someone
may have edited, unless `--force`.
"""

import json
from pathlib import Path
from typing import Annotated

import typer

from watcher.cli.base import Command, ConfigOpt, JsonOpt, RedactOpt, command, endpoint, err, new_app, out
from watcher.cli.incidents import IncidentArg
from watcher.errors import InputError

cli = new_app()
WITHHELD = 3
"""`watcher statuspage`'s exit code while there is nothing to publish yet."""


@cli.command(cls=Command)
@command
def statuspage(
    incident: IncidentArg,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", help="Write the draft here instead of printing it."),
    ] = None,
    config_file: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """A customer-facing status draft, once impact is confirmed: counts and times, no log text,
    host names, hypotheses or causes. Exit 3 while it is withheld."""
    from watcher.cli.client import Client

    doc = Client(endpoint(config_file)).statuspage(incident)
    if json_out:
        print(json.dumps(doc))
    elif doc["text"] is None:
        err.print(f"withheld: {doc['withheld']}", markup=False)
    elif out_file is not None:
        _write(out_file, doc["text"] + "\n", force=True)
        out.print(f"wrote {out_file}", markup=False)
    else:
        out.print(doc["text"], markup=False)
    if not doc["publishable"]:
        raise typer.Exit(WITHHELD)


@cli.command(cls=Command)
@command
def postmortem(
    incident: IncidentArg,
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Where to write YYYY-MM-DD-SLUG.md (SLUG: the incident id without its date).",
        ),
    ] = Path("."),
    by: Annotated[
        bool, typer.Option("--by", help="Name who did what (blameless drafts leave people out).")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite a draft that is already there.")] = False,
    redact: RedactOpt = True,
    config_file: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Write the postmortem draft in the runbook's seven sections, every fact from the record."""
    from watcher.cli import postmortem as view
    from watcher.cli.client import Client

    doc = Client(endpoint(config_file)).postmortem(incident, redact=redact)
    if json_out:
        print(json.dumps(doc, indent=2))
        return
    path = out_dir / view.filename(doc)
    _write(path, view.render(doc, by=by), force=force)
    out.print(f"wrote {path} (due {view.due(doc)[0].isoformat()})", markup=False)


def _write(path: Path, text: str, *, force: bool) -> None:
    if path.exists() and not force:
        raise InputError(f"{path} exists (someone may have edited it): --force overwrites it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
