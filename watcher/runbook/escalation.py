"""The runbook's clock (DESIGN §6.1): which mitigations have failed, and when to escalate.

Pure: from an incident's row and what its record proves (watcher.facts), at `now` on the
daemon's clock. The daemon records each decision on the timeline in the commit that
announces it, and decides again from the store: a decision recorded is never made twice,
across restarts too.

- A mitigation at M (made since the incident last opened) has *failed* when the incident
  regressed after it and before the next mitigation, or was not resolved within twice
  its window (no RESOLVED in [M, M + 2 * window]; judged when the clock reaches that
  time, so a resolution proven later from a backlog does not undo it).
- Escalate (`mitigations_failed`) when the incident's failed mitigations reach
  `failed_mitigations`, at the time of the failure that reached it.
- Escalate (`no_hypothesis`) at open (or the latest reopening) + `no_hypothesis_after`
  when no hypothesis was recorded by then and the incident did not stand resolved then.
- Each cause escalates once per incident; a closed incident is not judged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from watcher.events import Cause
from watcher.facts import Facts, Failure
from watcher.store.rows import IncidentRow, MitigationRow
from watcher.times import format_duration, human_time


@dataclass(frozen=True, slots=True)
class Policy:
    no_hypothesis_after: float = 1200.0
    failed_mitigations: int = 2


@dataclass(frozen=True, slots=True)
class Escalate:
    at: float
    cause: Cause
    reason: str


@dataclass(frozen=True, slots=True)
class Decisions:
    failed: tuple[Failure, ...] = ()
    """Mitigations that failed, in the order they failed (after those the record holds)."""
    escalate: tuple[Escalate, ...] = ()
    due: float | None = None
    """When to decide again if nothing new is recorded before (None: only then)."""


def decide(incident: IncidentRow, f: Facts, policy: Policy, now: float) -> Decisions:
    """What the runbook's clock decides now that the record does not hold yet."""
    if f.closed_at is not None:
        return Decisions()
    failed, due = _failures(incident, f, now)
    escalate = []
    causes = {e.cause for e in f.escalations}
    if Cause.MITIGATIONS_FAILED not in causes:
        every = sorted([*f.failures, *failed], key=lambda x: x.at)
        if len(every) >= policy.failed_mitigations:
            actions = "; ".join(f"{x.action} ({x.reason})" for x in every)
            reason = f"{len(every)} mitigations failed: {actions}"
            at = every[policy.failed_mitigations - 1].at
            escalate.append(Escalate(at, Cause.MITIGATIONS_FAILED, reason))
    if Cause.NO_HYPOTHESIS not in causes:
        opened = f.reopened_at if f.reopened_at is not None else f.opened_at
        deadline = opened + policy.no_hypothesis_after
        answered = any(h.at <= deadline for h in f.hypotheses) or _resolved_at(f, deadline)
        if not answered and now >= deadline:
            late = format_duration(round(policy.no_hypothesis_after, 3))
            reason = f"no hypothesis recorded {late} after it opened ({human_time(opened)})"
            escalate.append(Escalate(deadline, Cause.NO_HYPOTHESIS, reason))
        elif not answered:
            due = min(due, deadline)
    return Decisions(tuple(failed), tuple(escalate), None if math.isinf(due) else due)


def _failures(incident: IncidentRow, f: Facts, now: float) -> tuple[list[Failure], float]:
    """The mitigations since the incident last opened that failed and are not yet on the record,
    in the order they failed; and the earliest time another one could fail without news."""
    since = f.reopened_at if f.reopened_at is not None else f.opened_at
    judged: Sequence[MitigationRow] = [m for m in incident.mitigations if m.at >= since]
    known = {(x.mitigated_at, x.action) for x in f.failures}
    found: list[Failure] = []
    due = math.inf
    limit = 2 * incident.window
    for i, m in enumerate(judged):
        if (m.at, m.action) in known:
            continue
        until = judged[i + 1].at if i + 1 < len(judged) else math.inf
        regressed = [t for t in f.regressed if m.at <= t < until]
        deadline = m.at + limit
        if regressed:
            found.append(Failure(regressed[0], m.at, m.action, f"regressed at {human_time(regressed[0])}"))
        elif any(m.at <= r <= deadline for r in f.resolutions):
            continue
        elif now >= deadline:
            within = format_duration(round(limit, 3))
            found.append(
                Failure(deadline, m.at, m.action, f"not resolved within {within} (twice its window)")
            )
        else:
            due = min(due, deadline)
    found.sort(key=lambda x: x.at)
    return found, due


def _resolved_at(f: Facts, at: float) -> bool:
    """Whether the incident stood resolved at `at` (resolved, and not regressed since)."""
    last_resolved = max((r for r in f.resolutions if r <= at), default=None)
    if last_resolved is None:
        return False
    return not any(last_resolved < t <= at for t in f.regressed)
