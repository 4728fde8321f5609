"""The body of an Alertmanager (or Grafana) webhook notification, validated.

Alertmanager sends version "4": `status`, `groupKey`, `alerts[]` (`status`,
`labels`, `annotations`, `startsAt`, `endsAt`, `fingerprint`, `generatorURL`),
`truncatedAlerts` and group-wide labels. Grafana's webhook contact point sends the
same shape as version "1" with extra keys (`orgId`, `state`, `title`, per-alert
`values`, `silenceURL`, ...). Unknown keys are ignored: both add fields over time.

Times are Go's RFC 3339 with up to nine fractional digits; a firing alert's `endsAt`
is the zero time `0001-01-01T00:00:00Z`, read as "not ended". An alert without a
fingerprint (some Grafana versions) gets one from its labels, stable like
Alertmanager's.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from watcher.times import parse_time

MAX_LABELS = 256
MAX_VALUE = 16 * 1024


def _go_time(value: object) -> float | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected an RFC 3339 time, got {value!r}")
    if value.startswith("0001-01-01"):
        return None  # Go's zero time: a firing alert's end
    return parse_time(value)


def _labels(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_LABELS:
        raise ValueError(f"expected an object of at most {MAX_LABELS} string values")
    if not all(isinstance(k, str) and isinstance(v, str) and len(v) <= MAX_VALUE for k, v in value.items()):
        raise ValueError(f"expected string values of at most {MAX_VALUE} characters")
    return value


Labels = Annotated[dict[str, str], BeforeValidator(_labels)]
Time = Annotated[float | None, BeforeValidator(_go_time)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Alert(_Model):
    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Labels = {}
    starts_at: Time = Field(default=None, alias="startsAt")
    ends_at: Time = Field(default=None, alias="endsAt")
    fingerprint: str = Field(default="", max_length=128)
    generator_url: str = Field(default="", alias="generatorURL", max_length=MAX_VALUE)

    @model_validator(mode="after")
    def _identity(self) -> Self:
        if not self.fingerprint:
            text = "\0".join(f"{k}\0{v}" for k, v in sorted(self.labels.items()))
            object.__setattr__(self, "fingerprint", hashlib.sha256(text.encode()).hexdigest()[:16])
        return self

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")


class Notification(_Model):
    version: str = Field(default="", max_length=16)
    status: Literal["firing", "resolved"]
    receiver: str = Field(default="", max_length=1024)
    group_key: str = Field(alias="groupKey", min_length=1, max_length=MAX_VALUE)
    alerts: list[Alert]
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts", ge=0)
    external_url: str = Field(default="", alias="externalURL", max_length=MAX_VALUE)


def parse(doc: object, max_alerts: int) -> Notification:
    """`doc` (parsed JSON) as a notification; ValueError with one sentence when it is not one."""
    if not isinstance(doc, dict):
        raise ValueError("the notification must be a JSON object")
    alerts = doc.get("alerts")
    if isinstance(alerts, list) and len(alerts) > max_alerts:
        raise ValueError(
            f"{len(alerts)} alerts in one notification, more than alertmanager.max_alerts = {max_alerts}; "
            "set the webhook's max_alerts in Alertmanager below it"
        )
    try:
        return Notification.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(x) for x in err["loc"])
        if err["type"] == "missing":
            sentence = f"the notification has no {where}"
        else:
            sentence = (
                f"the notification's {where} is not valid: {err.get('ctx', {}).get('error', err['msg'])}"
            )
        raise ValueError(sentence) from None
