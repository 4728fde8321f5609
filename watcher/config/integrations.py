"""`[notify.slack_app]` and `[notify.pagerduty]`: the integrations beside incoming webhooks.

Both hold a credential (a bot token, routing keys): give it as `*_file`; it is a
`SecretStr` from here on and never printed. The API base URLs are configurable so
that a test (or a proxy) can stand in for Slack's and PagerDuty's servers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import SecretStr, field_validator, model_validator

from watcher.config.base import Model, within
from watcher.config.secrets import secret_or_file
from watcher.events import Kind

_URL = re.compile(r"^https?://[^/\s]+")
_SLACK_CHANNEL = re.compile(r"^(#?[a-z0-9][a-z0-9._-]{0,79}|[CGD][A-Z0-9]{2,})$")


def _base_url(value: str) -> str:
    if not _URL.match(value):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value if value.endswith("/") else value + "/"


class SlackAppConfig(Model):
    """A Slack app's bot token (scope `chat:write`) and the channels it keeps a status message in."""

    token: SecretStr | None = None
    token_file: Path | None = None
    incident_channel: str | None = None
    """A channel ID (C0123ABC) or name; the bot must be a member."""
    oncall_channel: str | None = None
    heartbeat: Literal["edit", "line"] = "edit"
    """edit: the on-call update edits each incident's message there; line: it posts one message."""
    refresh: Annotated[float, within("0s", "1h")] = 60.0
    """How often a verifying incident's status message is edited so its bar moves; 0: only on events."""
    send_interval: Annotated[float, within("10ms", "1m")] = 1.0
    """At least this long between two calls for one channel (Slack: about one message per second)."""
    api_url: str = "https://slack.com/api/"

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, v: str) -> str:
        return _base_url(v)

    @field_validator("incident_channel", "oncall_channel")
    @classmethod
    def _channel(cls, v: str | None) -> str | None:
        if v is not None and not _SLACK_CHANNEL.match(v):
            raise ValueError(f"expected a Slack channel ID such as C0123ABCD or a name, got {v!r}")
        return v

    @model_validator(mode="after")
    def _secret(self) -> SlackAppConfig:
        object.__setattr__(self, "token", secret_or_file("token", self.token, self.token_file))
        if self.token is None:
            raise ValueError("token: set token_file to a file holding the bot token (xoxb-...)")
        if self.incident_channel is None and self.oncall_channel is None:
            raise ValueError("set incident_channel, oncall_channel or both")
        return self

    def channels(self) -> dict[str, str]:
        """Logical channel (incident, oncall) -> Slack channel, for those configured."""
        named = {"incident": self.incident_channel, "oncall": self.oncall_channel}
        return {k: v for k, v in named.items() if v is not None}

    def bot_token(self) -> str:
        assert self.token is not None  # the validator refuses a config without one
        return self.token.get_secret_value()


class PagerDutyConfig(Model):
    """Events API v2: routing keys (integration keys) of the services to page."""

    routing_key: SecretStr | None = None
    routing_key_file: Path | None = None
    """Paged when an incident opens and when it regresses; resolved on RESOLVED only."""
    escalation_routing_key: SecretStr | None = None
    escalation_routing_key_file: Path | None = None
    """Paged when the runbook escalates (the engineering lead's service)."""
    severity: Literal["critical", "error", "warning", "info"] = "critical"
    source: str | None = None
    """`payload.source` of the events; default: this host's name."""
    changes: list[Kind] = [Kind.MITIGATED]
    """Kinds sent as change events (context on the service's timeline, never a page)."""
    events_url: str = "https://events.pagerduty.com/v2/"

    @field_validator("events_url")
    @classmethod
    def _events_url(cls, v: str) -> str:
        return _base_url(v)

    @field_validator("changes")
    @classmethod
    def _not_paging(cls, v: list[Kind]) -> list[Kind]:
        paging = sorted({str(k) for k in v} & {Kind.OPENED, Kind.REGRESSED, Kind.RESOLVED})
        if paging:
            raise ValueError(f"{', '.join(paging)} already trigger or resolve; they cannot be change events")
        return v

    @model_validator(mode="after")
    def _secrets(self) -> PagerDutyConfig:
        for key in ("routing_key", "escalation_routing_key"):
            value = secret_or_file(key, getattr(self, key), getattr(self, f"{key}_file"))
            if value is not None and not re.fullmatch(r"[A-Za-z0-9]{32}", value.get_secret_value()):
                # Not quoted back: the value is a secret.
                raise ValueError(f"{key}: expected a 32-character integration key")
            object.__setattr__(self, key, value)
        if self.routing_key is None and self.escalation_routing_key is None:
            raise ValueError("set routing_key_file, escalation_routing_key_file or both")
        return self

    def routing_keys(self) -> tuple[str | None, str | None]:
        """(the incident key, the escalation key), each None when not configured."""
        main, esc = self.routing_key, self.escalation_routing_key
        return (
            None if main is None else main.get_secret_value(),
            None if esc is None else esc.get_secret_value(),
        )
