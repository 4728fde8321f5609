"""Announcements as bodies: Slack Block Kit with a plain `text` fallback (Mattermost reads the
`text`), generic JSON, or a Teams Adaptive Card (teams.py).

Pure: news (watcher.notify.news) in, a JSON-ready dict out. Everything that came from
a log line or a user (titles, actions, reasons, source names) is redacted first and,
for Slack, has `&`, `<` and `>` escaped, so a log line can never ping `<!channel>` or
forge a link. Templates (config) are trusted text: they may contain Slack markup.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from string import Template
from typing import Any, Literal

from watcher.config.notify import DEFAULT_TEMPLATES
from watcher.details import (
    AlertDetail,
    BreakDetail,
    ChangedDetail,
    ClosedDetail,
    EscalatedDetail,
    GapDetail,
    ImpactDetail,
    MitigatedDetail,
    MitigationFailedDetail,
    OpenedDetail,
    ResolvedDetail,
    SourcesDetail,
    TextDetail,
)
from watcher.events import State
from watcher.notify import teams
from watcher.notify.news import (
    CheckNews,
    EscalationNews,
    HeartbeatLine,
    HeartbeatNews,
    News,
    StatusNews,
    TransitionNews,
    kind_of,
)
from watcher.notify.status_message import status_lines
from watcher.redact import redact, redact_doc
from watcher.times import format_duration, format_time

Format = Literal["slack", "json", "teams"]

# Slack's limits: 3,000 characters per section text, 50 blocks per message; the
# fallback `text` is cut at 40,000, but clients show far less, so it is kept short too.
SECTION_LIMIT = 3000
BLOCK_LIMIT = 50
TEXT_LIMIT = 3000
CUT = "… [truncated]"


def utc(at: object) -> str:
    """Short UTC time for people: `2026-11-27 14:05:03Z`."""
    if not isinstance(at, int | float):
        return "?"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def escape(text: str) -> str:
    """Slack's three control characters; nothing else is interpreted in mrkdwn text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters, never ending inside an escape such as `&amp;`."""
    if len(text) <= limit:
        return text
    return re.sub(r"&[a-z]*$", "", text[: limit - len(CUT)]) + CUT


@dataclass(frozen=True, slots=True)
class Renderer:
    fmt: Format = "slack"
    templates: Mapping[str, str] = field(default_factory=dict)
    secrets: Sequence[str] = ()
    """Literals to hide wherever they appear: the webhook URLs."""

    def body(self, news: News) -> dict[str, Any]:
        """The JSON document to POST."""
        if isinstance(news, HeartbeatNews):
            lines = [self._heartbeat_line(i) for i in news.incidents]
            headline = f"Heartbeat {utc(news.at)}: {len(lines)} open incident(s)"
            return self._assemble(news, headline, lines, code=None)
        if isinstance(news, CheckNews):
            text = f"watcher test message for the {news.channel} channel from {news.host}"
            return self._assemble(news, self._clean(text), [], code=None)
        if isinstance(news, StatusNews):
            headline, lines, code = status_lines(news, utc)
            return self._assemble(news, self._clean(headline), [self._clean(x) for x in lines], code)
        if isinstance(news, EscalationNews):
            text = f"*{news.incident}* ESCALATED at {utc(news.at)}: {news.cause}"
            return self._assemble(news, self._clean(text), [self._clean(news.title)], code=None)
        return self._transition(news)

    # ---- transitions ----------------------------------------------------------------

    def _transition(self, news: TransitionNews) -> dict[str, object]:
        fields = _template_fields(news)
        values = {k: self._clean(v) for k, v in fields.items()}
        kind = str(news.kind)
        template = self.templates.get(kind) or DEFAULT_TEMPLATES.get(kind, "*$incident* $kind at $at")
        headline = Template(template).safe_substitute(values)
        details: list[str] = []
        code = None
        d = news.detail
        if isinstance(d, OpenedDetail):
            named = f"; orgs named: {', '.join(d.orgs)}" if d.orgs else ""
            details.append(self._clean(f"scope {', '.join(d.scope)}, window {fields['window']}{named}"))
        elif isinstance(d, MitigatedDetail):
            details.append(f"streak clock started at {utc(d.streak_start)}")
        elif isinstance(d, ResolvedDetail):
            details.append(
                f"evidence: {values['lines']} lines checked in {values['sources']}; "
                f"clean from {values['since']} to {values['at']} ({values['window']})"
            )
            details += [self._clean(e) for e in (*d.evidence, *d.impact)]
        elif isinstance(d, GapDetail):
            details.append(f"unreadable from {utc(d.start)} to {utc(d.end)}")
        elif isinstance(d, BreakDetail):
            code = d.message
            details.append(f"streak restarts at {utc(d.streak_start)}")
        elif isinstance(d, AlertDetail):
            details.append(self._clean(" ".join(d.labels)))
        return self._assemble(news, headline, details, code)

    def _heartbeat_line(self, inc: HeartbeatLine) -> str:
        who, state = inc.incident, str(inc.state)
        if not inc.changed:
            return self._clean(f"{who}: still {state}, no change")
        if inc.state is State.INVESTIGATING:
            impact = "".join(f"; {i}" for i in inc.impact)
            return self._clean(f"{who} investigating: no mitigation yet, {inc.errors} error(s) seen{impact}")
        line = (
            f"{who} {state}: clean {format_duration(round(inc.clean_streak))} "
            f"of {format_duration(inc.window)} since {utc(inc.streak_start)}"
        )
        if inc.blind_sources:
            line += f"; cannot see {', '.join(inc.blind_sources)}"
        if inc.impact:
            line += "; " + "; ".join(inc.impact)
        return self._clean(line)

    # ---- assembly -------------------------------------------------------------------

    def _clean(self, text: str) -> str:
        text = redact(text, self.secrets)
        return escape(text) if self.fmt == "slack" else text

    def _assemble(self, news: News, headline: str, details: list[str], code: str | None) -> dict[str, object]:
        quoted = None if code is None else self._clean(code)
        plain = "\n".join([headline, *details] + ([quoted] if quoted is not None else []))
        if self.fmt == "teams":
            return teams.card(kind_of(news), headline, details, quoted)
        if self.fmt == "json":
            transition = news if isinstance(news, TransitionNews) else None
            return {
                "kind": kind_of(news),
                "incident": transition.incident if transition else None,
                "state": str(transition.state) if transition else None,
                "at": format_time(news.at),
                "text": truncate(plain, TEXT_LIMIT),
                "payload": redact_doc(news.to_json(), self.secrets),
            }
        blocks: list[dict[str, object]] = [_section(truncate(headline, SECTION_LIMIT))]
        blocks += [_section(chunk) for chunk in _chunks(details, SECTION_LIMIT)]
        if quoted is not None:
            # A log line cannot close the code block early.
            quoted = quoted.replace("```", "'''")
            blocks.append(_section("```" + truncate(quoted, SECTION_LIMIT - 6) + "```"))
        if len(blocks) > BLOCK_LIMIT:
            dropped = len(blocks) - BLOCK_LIMIT + 1
            blocks = [*blocks[: BLOCK_LIMIT - 1], _section(f"… and {dropped} more block(s) not shown")]
        return {"text": truncate(plain, TEXT_LIMIT), "blocks": blocks}


def _section(text: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _chunks(lines: Sequence[str], limit: int) -> list[str]:
    """Lines packed into texts of at most `limit` characters; an overlong line is cut."""
    out: list[str] = []
    for line in lines:
        line = truncate(line, limit)
        if out and len(out[-1]) + 1 + len(line) <= limit:
            out[-1] += "\n" + line
        else:
            out.append(line)
    return out


def _template_fields(news: TransitionNews) -> dict[str, str]:
    """Every `$field` a template may use, as text (not yet redacted or escaped)."""
    fields = {
        "incident": news.incident,
        "title": news.title,
        "kind": str(news.kind),
        "state": str(news.state),
        "at": utc(news.at),
        "action": "",
        "reason": "",
        "source": "",
        "rule": "gap",
        "sources": "",
        "window": "?",
        "lines": "?",
        "since": "?",
        "more": f" (+{news.also} more since the last message)" if news.also else "",
        "text": "",
        "alert": "",
    }
    d = news.detail
    if isinstance(d, OpenedDetail):
        fields["window"] = format_duration(d.window)
    elif isinstance(d, MitigatedDetail):
        fields |= {"action": d.action, "since": utc(d.streak_start)}
    elif isinstance(d, BreakDetail):
        fields |= {"source": d.source, "rule": d.rule or "gap", "since": utc(d.streak_start)}
    elif isinstance(d, GapDetail):
        fields |= {"source": d.source, "reason": d.reason}
    elif isinstance(d, SourcesDetail):
        fields["sources"] = ", ".join(d.sources)
    elif isinstance(d, ResolvedDetail):
        fields |= {
            "window": format_duration(d.window),
            "lines": f"{d.lines:,}",
            "sources": ", ".join(d.sources),
            "since": utc(d.streak_start),
        }
    elif isinstance(d, ClosedDetail):
        fields["reason"] = d.reason
    elif isinstance(d, AlertDetail):
        fields["alert"] = d.summary or d.alertname
    else:
        fields |= _runbook_fields(d)
    fields["reason"] = fields["reason"] or "no reason given"
    fields["sources"] = fields["sources"] or "none"
    return fields


def _runbook_fields(d: object) -> dict[str, str]:
    """The template fields of the runbook's entries: `$text`, and a failure's `$action`/`$reason`."""
    if isinstance(d, TextDetail):
        return {"text": d.text}
    if isinstance(d, ChangedDetail):
        streak = f"; streak from {utc(d.streak_start)}" if d.streak_start is not None else ""
        return {"text": "; ".join(d.changes()) + streak}
    if isinstance(d, ImpactDetail):
        since = f" since {utc(d.first)}" if d.first is not None else ""
        return {"text": f"{d.records:,} error records{since}, {d.orgs:,} org(s)"}
    if isinstance(d, MitigationFailedDetail):
        return {"action": d.action, "reason": f"{d.reason} ({d.failures} failed so far)"}
    if isinstance(d, EscalatedDetail):
        return {"reason": d.reason}
    return {}
