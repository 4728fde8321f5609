"""The `[notify]` section: webhooks (or files holding them), routes, templates, pacing.

The templates' defaults and the fields they may use are part of this contract: a
template is checked here, at load, so a typo is a config error and not a broken
announcement at 3 a.m.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template
from typing import Annotated, Literal

from pydantic import SecretStr, field_validator, model_validator

from watcher.config.base import Model, within
from watcher.config.integrations import PagerDutyConfig, SlackAppConfig
from watcher.config.secrets import secret_or_file
from watcher.events import ANNOUNCED

DEFAULT_TEMPLATES: dict[str, str] = {
    "opened": "*$incident* opened: $title",
    "mitigated": "*$incident* mitigation recorded at $at: $action",
    "streak_reset": "*$incident* streak reset at $at by $source [$rule]$more",
    "gap": "*$incident* gap in $source: $reason",
    "blind": "*$incident* BLIND at $at: cannot see $sources, so it cannot resolve",
    "recovered": "*$incident* sources back at $at: $sources",
    "resolved": "*$incident* RESOLVED at $at: no errors for $window in $sources",
    "regressed": "*$incident* REGRESSION at $at by $source [$rule]",
    "reopened": "*$incident* reopened: $title",
    "changed": "*$incident* changed at $at: $text",
    "impact_confirmed": "*$incident* impact confirmed: $text",
    "closed": "*$incident* closed: $reason",
    "alert_firing": "*$incident* alert firing: $alert",
    "alert_cleared": "*$incident* the alert cleared: $alert (only the logs' evidence resolves an incident)",
    "note": "*$incident* note: $text",
    "hypothesis": "*$incident* hypothesis: $text",
    "mitigation_failed": "*$incident* mitigation failed: $action: $reason",
    "escalated": "*$incident* ESCALATE to the engineering lead: $reason",
}
TEMPLATE_FIELDS = frozenset(
    {"incident", "title", "kind", "state", "at", "action", "reason", "source", "rule", "sources"}
    | {"window", "lines", "since", "more", "alert", "text"}
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


class NotifyConfig(Model):
    incident_webhook: SecretStr | None = None
    incident_webhook_file: Path | None = None
    oncall_webhook: SecretStr | None = None
    oncall_webhook_file: Path | None = None
    heartbeat: Annotated[float, within("1m", "24h")] = 900.0
    format: Literal["slack", "json", "teams"] = "slack"
    """slack: Block Kit with a text fallback (Mattermost reads the text); json: a generic document
    for other receivers; teams: an Adaptive Card for a Microsoft Teams Workflows webhook."""
    routes: dict[str, list[Literal["incident", "oncall"]]] = {}
    """Kind -> channels, over the defaults (incident kinds to incident, heartbeat to oncall)."""
    templates: dict[str, str] = {}
    """Kind -> headline, `string.Template` fields such as $incident, $at, $source."""
    send_interval: Annotated[float, within("10ms", "1m")] = 1.0
    retry_initial: Annotated[float, within("10ms", "1h")] = 1.0
    retry_max: Annotated[float, within("10ms", "1h")] = 60.0
    retry_after_max: Annotated[float, within("1s", "1h")] = 300.0
    """The longest a receiver's 429 `Retry-After` is honoured; a longer one is cut to this."""
    timeout: Annotated[float, within("100ms", "5m")] = 10.0
    reset_every: Annotated[float, within("0s", "24h")] = 60.0
    shutdown_grace: Annotated[float, within("0s", "5m")] = 2.0
    slack_app: SlackAppConfig | None = None
    pagerduty: PagerDutyConfig | None = None

    @field_validator("routes")
    @classmethod
    def _known_kinds(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(v) - set(ANNOUNCED))
        if unknown:
            raise ValueError(f"no announcement kind {', '.join(unknown)}; one of {', '.join(ANNOUNCED)}")
        return v

    @field_validator("templates")
    @classmethod
    def _valid_templates(cls, v: dict[str, str]) -> dict[str, str]:
        for kind, text in v.items():
            check_template(kind, text)
        return v

    def secrets(self) -> tuple[str, ...]:
        """Every credential configured here: hidden wherever one would appear in a message."""
        out = list(self.webhooks().values())
        if self.slack_app is not None:
            out.append(self.slack_app.bot_token())
        if self.pagerduty is not None:
            out += [k for k in self.pagerduty.routing_keys() if k is not None]
        return tuple(out)

    def webhooks(self) -> dict[str, str]:
        """Channel -> URL, for the channels that have one."""
        urls = {"incident": self.incident_webhook, "oncall": self.oncall_webhook}
        return {channel: url.get_secret_value() for channel, url in urls.items() if url is not None}

    @model_validator(mode="after")
    def _read_secret_files(self) -> NotifyConfig:
        for channel in ("incident", "oncall"):
            key = f"{channel}_webhook"
            secret = secret_or_file(key, getattr(self, key), getattr(self, f"{key}_file"))
            object.__setattr__(self, key, secret)
        for channel, url in self.webhooks().items():
            if not re.match(r"^https?://[^/\s]+", url):
                # Not quoted back: the value is a secret.
                raise ValueError(f"{channel}_webhook: expected an http:// or https:// URL")
        return self
