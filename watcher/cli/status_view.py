"""`watcher status` and an incident command's answer on a terminal: renderables, never printed here."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from watcher.schema import ChannelDoc, IncidentDoc, StatusDoc
from watcher.times import format_duration

_STATE_STYLE = {
    "investigating": "yellow",
    "verifying": "cyan",
    "blind": "bold magenta",
    "resolved": "bold green",
    "regressed": "bold red",
    "closed": "dim",
}


def _bar(fraction: float, width: int = 30) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)


def incident_panel(doc: IncidentDoc) -> RenderableType:
    """One incident: state, streak progress against its window, last error, blind sources."""
    state = doc["state"]
    streak, window = doc["clean_streak"], doc["window"]
    head = Text.assemble(
        (f"{doc['id']} ", "bold"), (state.upper(), _STATE_STYLE.get(state, "")), f"  {doc['title']}"
    )
    rows = [head]
    if doc["mitigated_at"]:
        rows.append(
            Text(
                f"  {_bar(streak / window if window else 0)} {format_duration(round(streak))} of "
                f"{format_duration(window)} clean since {doc['streak_start']}"
            )
        )
    else:
        rows.append(Text("  no mitigation recorded yet: the streak clock has not started", style="yellow"))
    if doc["resolved_at"]:
        rows.append(Text(f"  resolved at {doc['resolved_at']}", style="green"))
    last = doc["last_error"]
    if last is not None:
        rows.append(Text(f"  last error {last['time']} {last['source']} [{last['rule']}] {last['message']}"))
    if doc["blind_sources"]:
        rows.append(Text(f"  blind: cannot see {', '.join(doc['blind_sources'])}", style="magenta"))
    for reason in doc.get("cannot_resolve", []):
        rows.append(Text(f"  cannot resolve: {reason}", style="bold red"))
    if doc["mitigated_at"]:
        rows += [Text(f"  evidence: {e['text']}", style="dim") for e in doc.get("evidence", [])]
    return Group(*rows)


def status_view(doc: StatusDoc) -> RenderableType:
    parts: list[RenderableType] = [incident_panel(i) for i in doc["incidents"]]
    if not parts:
        parts.append(Text("no incidents", style="dim"))
    table = Table(show_edge=False)
    table.add_column("source")
    table.add_column("up")
    table.add_column("running")
    for col in ("watermark lag", "clock skew", "lines", "errors"):
        table.add_column(col, justify="right")
    for s in doc["sources"]:
        lag, skew = s["lag"], s.get("clock_skew")
        up = Text("up", style="green") if s["up"] else Text(f"down: {s['reason']}", style="red")
        table.add_row(
            s["name"],
            up,
            _running(s.get("running"), s.get("not_running")),
            "-" if lag is None else format_duration(round(lag, 1)),
            "-" if skew is None else f"{skew:+.1f}s",
            f"{s['lines']:,}",
            f"{s['errors']:,}",
        )
    parts += [Text(""), table]
    parts += [outbox_line(name, c) for name, c in doc["outbox"]["channels"].items()]
    return Group(*parts)


def _running(running: bool | None, why: str | None) -> Text:
    if running is None:
        return Text("-", style="dim")
    return Text("yes", style="green") if running else Text(f"no: {why}", style="red")


def outbox_line(channel: str, c: ChannelDoc) -> Text:
    """`announcements to incident: 3 pending since …, 1 dead-lettered; last error: HTTP 404: …`."""
    text = f"announcements to {channel}: {c['pending']} pending"
    if c["oldest_pending"]:
        text += f" since {c['oldest_pending']}"
    if c["dead"]:
        text += f", {c['dead']} dead-lettered (rejected, not retried)"
    if c["last_error"]:
        text += f"; last error: {c['last_error']}"
    return Text(text, style="red" if c["dead"] else "yellow")
