"""The `[runbook]` section: the runbook's clock (escalation), impact by org, the customer-facing status.

The defaults are the runbook's: escalate to the engineering lead when an incident has no
hypothesis 20 minutes after it opened, or when its mitigations have failed twice.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from watcher.config.base import Model, within


class RunbookConfig(Model):
    no_hypothesis_after: Annotated[float, within("1s", "24h")] = 1200.0
    """Escalate an incident with no hypothesis this long after it opened."""
    failed_mitigations: int = Field(default=2, ge=1, le=100)
    """Escalate an incident when this many of its mitigations have failed (regressed after
    it, or not resolved within twice the window)."""
    max_orgs: int = Field(default=10_000, ge=1, le=1_000_000)
    """Orgs tracked per incident; the error records of orgs beyond are counted, not named."""
    impact_lookback: Annotated[float, within("0s", "24h")] = 1800.0
    """Errors read up to this long before an incident opened count toward its impact."""
    confirm_records: int = Field(default=10, ge=1, le=1_000_000)
    """Impact is confirmed (a customer-facing status may go out) once at least this many error
    records were seen in scope..."""
    confirm_over: Annotated[float, within("0s", "24h")] = 300.0
    """...over at least this long, from the first to the last."""
    service: str = Field(default="the service", min_length=1, max_length=100)
    """What the customer-facing status says is affected, e.g. "NovaVMS live view"."""
