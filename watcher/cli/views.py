"""`watcher classify` and `watcher replay` results on a terminal and in --json: never printed here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from watcher.classify.grouping import ClassifyStats
from watcher.events import ErrorEvent, Kind
from watcher.schema import error_doc
from watcher.times import format_duration, format_time

if TYPE_CHECKING:  # `classify --json` needs neither the engine nor rich
    from rich.console import RenderableType

    from watcher.classify.rules import RuleSet
    from watcher.replay import Verdict

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
        doc["events"] = [error_doc(e) for e in events]
    return doc


def classify_table(results: Mapping[str, ClassifyStats], ruleset: RuleSet) -> RenderableType:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

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
    from rich.console import Group
    from rich.text import Text

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
    lines += [Text(f"  evidence: {e.text()}", style="dim") for e in v.evidence]
    if not v.resolved:
        lines += [Text(f"  cannot resolve: {b.text()}", style="red") for b in v.cannot_resolve]
        for name, mark in v.watermarks.items():
            if mark < v.streak_start + v.window:
                lines.append(
                    Text(
                        f"  {name} ends at {format_time(mark)}: it proves nothing after its end "
                        "(--until T if it is complete)",
                        style="yellow",
                    )
                )
    return Group(*lines)
