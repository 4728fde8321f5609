"""Announcements as webhook bodies: Slack Block Kit with a plain `text` fallback, or generic JSON.

Pure: an outbox payload in, a JSON-ready dict out. Everything that came from a log
line or a user (titles, actions, reasons, source names) is redacted first and, for
Slack, has `&`, `<` and `>` escaped, so a log line can never ping `<!channel>` or
forge a link. Templates (config) are trusted text: they may contain Slack markup.

Payload shapes (written by watcher.announce):
  transition: {incident, title, kind, at, state, detail}
  heartbeat:  {at, incidents: [{incident, title, state, changed, clean_streak, window,
               streak_start, errors, blind_sources}]}
  test:       {at, channel, host}
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from string import Template
from typing import Any, Literal

from watcher.redact import redact
from watcher.times import format_duration, format_time

Format = Literal["slack", "json"]
HEARTBEAT = "heartbeat"
TEST = "test"

# Slack's limits: 3,000 characters per section text, 50 blocks per message; the
# fallback `text` is cut at 40,000, but clients show far less, so it is kept short too.
SECTION_LIMIT = 3000
BLOCK_LIMIT = 50
TEXT_LIMIT = 3000
CUT = "… [truncated]"

DEFAULT_TEMPLATES: dict[str, str] = {
    "opened": "*$incident* opened: $title",
    "mitigated": "*$incident* mitigation recorded at $at: $action",
    "streak_reset": "*$incident* streak reset at $at by $source [$rule]$more",
    "gap": "*$incident* gap in $source: $reason",
    "blind": "*$incident* BLIND at $at: cannot see $sources, so it cannot resolve",
    "recovered": "*$incident* sources back at $at: $sources",
    "resolved": "*$incident* RESOLVED at $at: no errors for $window in $sources",
    "regressed": "*$incident* REGRESSION at $at by $source [$rule]",
    "closed": "*$incident* closed: $reason",
}
KINDS: tuple[str, ...] = (*DEFAULT_TEMPLATES, HEARTBEAT)
"""Every kind that can be announced and routed."""
TEMPLATE_FIELDS = frozenset(
    {"incident", "title", "kind", "state", "at", "action", "reason", "source", "rule", "sources"}
    | {"window", "lines", "since", "more"}
)


def check_template(kind: str, text: str) -> None:
    """Raise ValueError naming what is wrong with a template, at config load."""
    if kind not in DEFAULT_TEMPLATES:
        raise ValueError(f"no announcement kind {kind!r}; one of {', '.join(DEFAULT_TEMPLATES)}")
    template = Template(text)
    if not template.is_valid():
        raise ValueError(f"{kind}: invalid placeholder in {text!r}; write $$ for a literal $")
    unknown = sorted(set(template.get_identifiers()) - TEMPLATE_FIELDS)
    if unknown:
        raise ValueError(
            f"{kind}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(TEMPLATE_FIELDS))}"
        )


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

    def body(self, kind: str, payload: Mapping[str, object]) -> dict[str, Any]:
        """The JSON document to POST."""
        if kind == HEARTBEAT:
            lines = [self._heartbeat_line(_map(i)) for i in _list(payload.get("incidents"))]
            headline = f"Heartbeat {utc(payload.get('at'))}: {len(lines)} open incident(s)"
            return self._assemble(kind, payload, headline, lines, code=None)
        if kind == TEST:
            text = f"watcher test message for the {payload.get('channel')} channel from {payload.get('host')}"
            return self._assemble(kind, payload, self._clean(text), [], code=None)
        return self._transition(kind, payload)

    # ---- transitions ----------------------------------------------------------------

    def _transition(self, kind: str, payload: Mapping[str, object]) -> dict[str, object]:
        d = _map(payload.get("detail"))
        fields = {
            "incident": payload.get("incident"),
            "title": payload.get("title"),
            "kind": kind,
            "state": payload.get("state"),
            "at": utc(payload.get("at")),
            "action": d.get("action"),
            "reason": d.get("reason") or "no reason given",
            "source": d.get("source"),
            "rule": d.get("rule") or "gap",
            "sources": ", ".join(map(str, _list(d.get("sources")))) or "none",
            "window": _duration(d.get("window")),
            "lines": f"{d['lines']:,}" if isinstance(d.get("lines"), int) else "?",
            "since": utc(d.get("streak_start")),
            "more": f" (+{d['also']} more since the last message)" if d.get("also") else "",
        }
        values = {k: self._clean("" if v is None else str(v)) for k, v in fields.items()}
        template = self.templates.get(kind) or DEFAULT_TEMPLATES.get(kind, "*$incident* $kind at $at")
        headline = Template(template).safe_substitute(values)
        details: list[str] = []
        code = None
        if kind == "opened":
            details.append(
                self._clean(f"scope {', '.join(map(str, _list(d.get('scope'))))}, window {fields['window']}")
            )
        elif kind == "mitigated":
            details.append(f"streak clock started at {utc(d.get('streak_start'))}")
        elif kind == "resolved":
            details.append(
                f"evidence: {values['lines']} lines checked in {values['sources']}; "
                f"clean from {values['since']} to {values['at']} ({values['window']})"
            )
        elif kind == "gap":
            details.append(f"unreadable from {utc(d.get('start'))} to {utc(d.get('end'))}")
        elif kind in ("streak_reset", "regressed"):
            code = str(d.get("message", ""))
            details.append(f"streak restarts at {utc(d.get('streak_start'))}")
        return self._assemble(kind, payload, headline, details, code)

    def _heartbeat_line(self, inc: Mapping[str, object]) -> str:
        who, state = inc.get("incident"), str(inc.get("state"))
        if not inc.get("changed"):
            return self._clean(f"{who}: still {state}, no change")
        if state == "investigating":
            return self._clean(f"{who} investigating: no mitigation yet, {inc.get('errors')} error(s) seen")
        line = (
            f"{who} {state}: clean {_duration(round(_num(inc.get('clean_streak'))))} "
            f"of {_duration(inc.get('window'))} since {utc(inc.get('streak_start'))}"
        )
        blind = _list(inc.get("blind_sources"))
        if blind:
            line += f"; cannot see {', '.join(map(str, blind))}"
        return self._clean(line)

    # ---- assembly -------------------------------------------------------------------

    def _clean(self, text: str) -> str:
        text = redact(text, self.secrets)
        return escape(text) if self.fmt == "slack" else text

    def _assemble(
        self, kind: str, payload: Mapping[str, object], headline: str, details: list[str], code: str | None
    ) -> dict[str, object]:
        quoted = None if code is None else self._clean(code)
        plain = "\n".join([headline, *details] + ([quoted] if quoted is not None else []))
        if self.fmt == "json":
            return {
                "kind": kind,
                "incident": payload.get("incident"),
                "state": payload.get("state"),
                "at": format_time(_num(payload.get("at"))) if "at" in payload else None,
                "text": truncate(plain, TEXT_LIMIT),
                "payload": _redacted(payload, self.secrets),
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


def _redacted(value: object, secrets: Sequence[str]) -> object:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {str(k): _redacted(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v, secrets) for v in value]
    return value


def _map(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _duration(value: object) -> str:
    return format_duration(float(value)) if isinstance(value, int | float) else "?"
