"""How results look on a terminal and in --json: renderables and dicts, never printed here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from watcher.classify.rules import RuleSet
from watcher.classify.stream import ClassifyStats
from watcher.daemon.status import event_json
from watcher.events import ErrorEvent, Kind
from watcher.replay import Verdict
from watcher.times import format_duration, format_time

_MAX_SHOWN = 500


def event_line(event: ErrorEvent) -> str:
    when = format_time(event.at) or "-"
    return f"{when} {event.source} [{event.rule}] {event.message[:_MAX_SHOWN]}"


def _totals(results: Mapping[str, ClassifyStats]) -> dict[str, object]:
    by_rule: dict[str, int] = {}
    ignored: dict[str, int] = {}
    for s in results.values():
        for k, v in s.errors_by_rule.items():
            by_rule[k] = by_rule.get(k, 0) + v
        for k, v in s.ignored_by_rule.items():
            ignored[k] = ignored.get(k, 0) + v
    return {
        "lines": sum(s.lines for s in results.values()),
        "records": sum(s.records for s in results.values()),
        "errors": sum(by_rule.values()),
        "errors_by_rule": by_rule,
        "ignored_by_rule": ignored,
        "bad_utf8": sum(s.bad_utf8 for s in results.values()),
        "truncated": sum(s.truncated for s in results.values()),
    }


def classify_json(
    results: Mapping[str, ClassifyStats], events: Sequence[ErrorEvent] | None
) -> dict[str, object]:
    doc = _totals(results)
    doc["files"] = [
        {
            "source": name,
            "format": s.format,
            "timed": s.timed,
            "lines": s.lines,
            "records": s.records,
            "errors": s.errors,
            "errors_by_rule": s.errors_by_rule,
            "ignored_by_rule": s.ignored_by_rule,
            "bad_utf8": s.bad_utf8,
            "truncated": s.truncated,
            "first": format_time(s.first_at),
            "last": format_time(s.last_at),
        }
        for name, s in results.items()
    ]
    if events is not None:
        doc["events"] = [event_json(e) for e in events]
    return doc


def classify_table(results: Mapping[str, ClassifyStats], ruleset: RuleSet) -> RenderableType:
    totals = _totals(results)
    by_rule: dict[str, int] = totals["errors_by_rule"]  # type: ignore[assignment]
    ignored: dict[str, int] = totals["ignored_by_rule"]  # type: ignore[assignment]
    table = Table(title=None, show_edge=False)
    table.add_column("rule")
    table.add_column("error events", justify="right")
    for name in ruleset.rule_names:
        table.add_row(name, f"{by_rule.get(name, 0):,}")
    for name in ruleset.ignore_names:
        table.add_row(Text(f"ignore: {name}", style="dim"), f"{ignored.get(name, 0):,} suppressed")
    notes = [
        f"{totals['lines']:,} lines, {totals['records']:,} records, {totals['errors']:,} error events "
        f"in {len(results)} file(s)"
    ]
    if totals["bad_utf8"]:
        notes.append(f"{totals['bad_utf8']:,} lines had bytes that are not UTF-8 (replaced)")
    if totals["truncated"]:
        notes.append(f"{totals['truncated']:,} lines were longer than max_line_bytes and were truncated")
    for name, s in results.items():
        if not s.timed:
            notes.append(f"{name}: no timestamps found; every line is its own record")
    return Group(table, *(Text(n) for n in notes))


def verdict_text(v: Verdict) -> RenderableType:
    lines: list[Text] = []
    if v.resolved:
        lines.append(
            Text.assemble(
                ("RESOLVED", "bold green"),
                f" at {format_time(v.resolved_at)}: clean for {format_duration(v.window)} "
                f"from {format_time(v.streak_start)}",
            )
        )
    else:
        lines.append(
            Text.assemble(
                ("UNRESOLVED", "bold red"),
                f": clean streak {format_duration(round(v.clean_streak, 3))} of {format_duration(v.window)} "
                f"since {format_time(v.streak_start)}",
            )
        )
    regressions = sum(1 for t in v.history if t.kind is Kind.REGRESSED)
    lines.append(
        Text(
            f"  mitigated at {format_time(v.mitigated_at)}; {v.lines:,} lines in {len(v.files)} file(s), "
            f"{v.errors:,} error events" + (f", {regressions} regression(s)" if regressions else "")
        )
    )
    if v.last_error is not None:
        lines.append(Text("  last error " + event_line(v.last_error)))
    if not v.resolved:
        for name, s in v.files.items():
            if s.last_at is not None and s.last_at < v.streak_start + v.window:
                lines.append(
                    Text(
                        f"  {name} ends at {format_time(s.last_at)}: it proves nothing after its end "
                        "(--until T if it is complete)",
                        style="yellow",
                    )
                )
    return Group(*lines)


_STATE_STYLE = {
    "investigating": "yellow",
    "verifying": "cyan",
    "blind": "bold magenta",
    "resolved": "bold green",
    "regressed": "bold red",
    "closed": "dim",
}


def _num(doc: Mapping[str, object], key: str) -> float:
    value = doc.get(key)
    return float(value) if isinstance(value, int | float) else 0.0


def _bar(fraction: float, width: int = 30) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)


def incident_panel(doc: Mapping[str, object]) -> RenderableType:
    """One incident: state, streak progress against its window, last error, blind sources."""
    state = str(doc.get("state"))
    streak, window = _num(doc, "clean_streak"), _num(doc, "window")
    head = Text.assemble(
        (f"{doc.get('id')} ", "bold"), (state.upper(), _STATE_STYLE.get(state, "")), f"  {doc.get('title')}"
    )
    rows = [head]
    if doc.get("mitigated_at"):
        rows.append(
            Text(
                f"  {_bar(streak / window if window else 0)} {format_duration(round(streak))} of "
                f"{format_duration(window)} clean since {doc.get('streak_start')}"
            )
        )
    else:
        rows.append(Text("  no mitigation recorded yet: the streak clock has not started", style="yellow"))
    if doc.get("resolved_at"):
        rows.append(Text(f"  resolved at {doc.get('resolved_at')}", style="green"))
    last = doc.get("last_error")
    if isinstance(last, Mapping):
        rows.append(
            Text(
                f"  last error {last.get('time')} {last.get('source')} "
                f"[{last.get('rule')}] {last.get('message')}"
            )
        )
    blind = doc.get("blind_sources")
    if isinstance(blind, list) and blind:
        rows.append(Text(f"  blind: cannot see {', '.join(map(str, blind))}", style="magenta"))
    return Group(*rows)


def status_view(doc: Mapping[str, object]) -> RenderableType:
    parts: list[RenderableType] = []
    incidents = doc.get("incidents")
    if isinstance(incidents, list) and incidents:
        parts += [incident_panel(i) for i in incidents if isinstance(i, Mapping)]
    else:
        parts.append(Text("no incidents", style="dim"))
    table = Table(show_edge=False)
    for col, justify in (("source", "left"), ("up", "left"), ("watermark lag", "right"), ("lines", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    table.add_column("errors", justify="right")
    sources = doc.get("sources")
    for s in sources if isinstance(sources, list) else []:
        lag = s.get("lag")
        up = Text("up", style="green") if s.get("up") else Text(f"down: {s.get('reason')}", style="red")
        table.add_row(
            str(s.get("name")),
            up,
            "-" if lag is None else format_duration(round(float(lag), 1)),
            f"{s.get('lines', 0):,}",
            f"{s.get('errors', 0):,}",
        )
    parts += [Text(""), table]
    outbox = doc.get("outbox")
    channels = outbox.get("channels") if isinstance(outbox, Mapping) else None
    for name, c in channels.items() if isinstance(channels, Mapping) else []:
        parts.append(outbox_line(str(name), c))
    return Group(*parts)


def outbox_line(channel: str, c: Mapping[str, object]) -> Text:
    """`announcements to incident: 3 pending since …, 1 dead-lettered; last error: HTTP 404: …`."""
    text = f"announcements to {channel}: {c.get('pending', 0)} pending"
    if c.get("oldest_pending"):
        text += f" since {c.get('oldest_pending')}"
    if c.get("dead"):
        text += f", {c.get('dead')} dead-lettered (rejected, not retried)"
    if c.get("last_error"):
        text += f"; last error: {c.get('last_error')}"
    return Text(text, style="red" if c.get("dead") else "yellow")


def _describe(event: Mapping[str, object]) -> str:
    d = event.get("detail")
    detail: Mapping[str, object] = d if isinstance(d, Mapping) else {}
    kind = str(event.get("kind"))
    if kind == "opened":
        return (
            f"Incident opened: {detail.get('title')} (scope {', '.join(map(str, detail.get('scope') or []))})"  # type: ignore[call-overload]
        )
    if kind == "mitigated":
        return f"Mitigation: {detail.get('action')}"
    if kind in ("streak_reset", "regressed"):
        label = "Streak reset" if kind == "streak_reset" else "REGRESSION"
        msg = str(detail.get("message", "")).replace("`", "'")[:300]
        return f"{label} by {detail.get('source')} [{detail.get('rule')}]: `{msg}`"
    if kind == "gap":
        return f"Gap in {detail.get('source')}: {detail.get('reason')}"
    if kind in ("blind", "recovered"):
        names = ", ".join(map(str, detail.get("sources") or []))  # type: ignore[call-overload]
        return f"Blind: cannot see {names}" if kind == "blind" else f"Sources back: {names}"
    if kind == "resolved":
        window = detail.get("window")
        span = format_duration(float(window)) if isinstance(window, int | float) else "?"
        return f"RESOLVED: no errors for {span} in {', '.join(map(str, detail.get('sources') or []))}"  # type: ignore[call-overload]
    if kind == "closed":
        return f"Closed: {detail.get('reason') or 'no reason given'}"
    if kind == "snapshot":
        partial = "" if detail.get("complete", True) else " PARTIAL"
        return (
            f"Evidence snapshot{partial} ({detail.get('trigger')}): {detail.get('file')} "
            f"sha256:{detail.get('sha256')}, {detail.get('reason')}"
        )
    return kind


def timeline_markdown(doc: Mapping[str, object]) -> str:
    lines = [
        f"## Timeline: {doc.get('id')} — {doc.get('title')}",
        "",
        "| time (UTC) | event |",
        "| --- | --- |",
    ]
    events = doc.get("events")
    for e in events if isinstance(events, list) else []:
        text = _describe(e).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {e.get('at')} | {text} |")
    return "\n".join(lines)
