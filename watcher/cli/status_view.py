"""`watcher status` and an incident command's answer on a terminal: renderables, never printed here.

Long text (a last error, a down source's reason) wraps at the terminal's width rather than
being cut: during an incident the end of the line is often the part that matters. A
message is shown without a timestamp of its own when it starts with one: the time beside
it already says when.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Group, RenderableType
from rich.text import Text

from watcher.schema import ChannelDoc, IncidentDoc, IncidentListDoc, SourceDoc, StatusDoc
from watcher.times import format_duration, format_time, short_time, without_leading_stamp

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


def _lag(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(round(seconds, 1))


def incident_panel(
    doc: IncidentDoc, sources: Mapping[str, SourceDoc] | None = None, today: str = ""
) -> RenderableType:
    """One incident: state, streak against its window, the last error, and per source in scope
    the evidence (up or why not, verified to, lag, lines, errors) when `sources` is given.
    Times on `today` (UTC, `2026-11-27`) are shown without their date."""
    state = doc["state"]
    streak, window = doc["clean_streak"], doc["window"]
    head = Text.assemble(
        (f"{doc['id']} ", "bold"), (state.upper(), _STATE_STYLE.get(state, "")), f"  {doc['title']}"
    )
    rows: list[RenderableType] = [head]
    if doc["mitigated_at"]:
        rows.append(
            Text(
                f"  {_bar(streak / window if window else 0)} {format_duration(round(streak))} of "
                f"{format_duration(window)} clean since {short_time(doc['streak_start'], today)} "
                f"(verified to {short_time(doc['verified_to'], today)})"
            )
        )
    else:
        rows.append(Text("  no mitigation recorded yet: the streak clock has not started", style="yellow"))
    if doc["resolved_at"]:
        rows.append(Text(f"  resolved at {short_time(doc['resolved_at'], today)}", style="green"))
    last = doc["last_error"]
    if last is not None:
        message = without_leading_stamp(last["message"])
        rows.append(
            Text(
                f"  last error {short_time(last['time'], today)} {last['source']} [{last['rule']}] {message}"
            )
        )
    if doc["blind_sources"]:
        rows.append(Text(f"  blind: cannot see {', '.join(doc['blind_sources'])}", style="magenta"))
    for reason in doc.get("cannot_resolve", []):
        rows.append(Text(f"  cannot resolve: {reason}", style="bold red"))
    impact = doc.get("impact")
    if impact is not None and impact["lines"]:
        style = "yellow" if impact["affected"] else ""
        counts, *named = impact["lines"]
        if impact["confirmed_at"]:
            counts += f" (impact confirmed at {short_time(impact['confirmed_at'], today)})"
        rows += [Text(f"  impact: {line}", style=style) for line in (counts, *named)]
    if doc["mitigated_at"]:
        rows += [Text(f"  evidence: {e['text']}", style="dim") for e in doc.get("evidence", [])]
    if sources is not None:
        rows += [_evidence(name, sources.get(name), today) for name in doc["sources"]]
    return Group(*rows)


def incident_lines(doc: IncidentListDoc, today: str = "") -> RenderableType:
    """`watcher incident list`: one line per incident, oldest first, the title last (it may wrap;
    an id or a time cut in two could not be copied or grepped)."""
    if not doc["incidents"]:
        return Text("no incidents", style="dim")
    width = max(len(i["id"]) for i in doc["incidents"])
    lines = []
    for i in doc["incidents"]:
        line = Text(f"{i['id']:<{width}}  ")
        line.append(f"{i['state'].upper():<13}", style=_STATE_STYLE.get(i["state"], ""))
        line.append(f" opened {short_time(i['opened_at'], today)}")
        if i["closed_at"]:
            line.append(f", closed {short_time(i['closed_at'], today)}")
        line.append(f", {i['mitigations']} mitigation(s)  {i['title']}")
        lines.append(line)
    return Group(*lines)


def _evidence(name: str, s: SourceDoc | None, today: str) -> Text:
    if s is None:
        return Text(f"  {name}: not reported", style="yellow")
    if not s["up"]:
        return Text(
            f"  {name}: DOWN: {s['reason']}; verified to {short_time(s['watermark'], today)}", style="red"
        )
    return Text(
        f"  {name}: up, verified to {short_time(s['watermark'], today)} (lag {_lag(s['lag'])}), "
        f"{s['lines']:,} lines, {s['errors']:,} errors"
    )


def status_view(doc: StatusDoc) -> RenderableType:
    today = (format_time(doc["now"]) or "")[:10]
    by_name = {s["name"]: s for s in doc["sources"]}
    parts: list[RenderableType] = [incident_panel(i, by_name, today) for i in doc["incidents"]]
    if not parts:
        parts.append(Text("no incidents", style="dim"))
    from rich.table import Table  # not for an incident command's answer: it costs an import

    table = Table(show_edge=False)
    table.add_column("source", no_wrap=True)
    table.add_column("state", overflow="fold")
    table.add_column("running", overflow="fold")
    for col in ("verified to", "lag", "clock skew", "lines", "errors"):
        table.add_column(col, justify="right", no_wrap=True)
    for s in doc["sources"]:
        state = Text("up", style="green") if s["up"] else Text(f"DOWN: {s['reason']}", style="red")
        skew = s.get("clock_skew")
        table.add_row(
            s["name"],
            state,
            _running(s.get("running"), s.get("not_running")),
            short_time(s["watermark"], today),
            _lag(s["lag"]),
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
