"""The customer-facing status draft (runbook phase 3): pure, from numbers and times only.

The runbook posts externally only once impact is confirmed and never with speculation.
So the draft is withheld until the incident's impact is confirmed (engine/impact.py:
enough error records over long enough), and what it says is built from fixed
sentences, the configured service name, counts and UTC times: never a log line, a
source or host name, the incident's title, a hypothesis, a cause or a person. Its phase
follows the incident, in the words status pages use:

- investigating: open without a mitigation and without a hypothesis, or regressed
  (the errors are back);
- identified: a hypothesis is recorded, no mitigation yet;
- monitoring: mitigated and being verified (verifying, blind);
- resolved: resolved (the resolution stands) or closed.

Publishing stays a person's action: this only drafts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from watcher.events import State


@dataclass(frozen=True, slots=True)
class Situation:
    """What the draft may be built from, and nothing more."""

    state: State
    hypothesised: bool
    confirmed_at: float | None
    started_at: float | None
    """The first error record in scope, else the opening."""
    last_error: float | None
    orgs: int | None
    """Distinct affected orgs; None when no source names orgs."""
    more_orgs: bool
    """Orgs beyond the tracked cap were affected too."""


@dataclass(frozen=True, slots=True)
class Draft:
    publishable: bool
    withheld: str | None
    phase: str | None
    started_at: float | None
    ended_at: float | None
    text: str | None


_HEAD = {
    "investigating": "Investigating",
    "identified": "Identified",
    "monitoring": "Monitoring",
    "resolved": "Resolved",
}


def phase(s: Situation) -> str:
    if s.state in (State.RESOLVED, State.CLOSED):
        return "resolved"
    if s.state in (State.VERIFYING, State.BLIND):
        return "monitoring"
    if s.state is State.INVESTIGATING and s.hypothesised:
        return "identified"
    return "investigating"


def draft(s: Situation, service: str, now: float) -> Draft:
    if s.confirmed_at is None:
        return Draft(
            False,
            "impact not confirmed yet: the runbook posts externally only once impact is confirmed",
            None,
            s.started_at,
            None,
            None,
        )
    current = phase(s)
    ended = s.last_error if current == "resolved" else None
    who = _who(s)
    since = _utc(s.started_at)
    body = {
        "investigating": f"We are investigating a problem with {service} affecting {who} since {since}.",
        "identified": (
            f"We have identified the cause of a problem with {service} affecting {who} since {since} "
            "and are working on a fix."
        ),
        "monitoring": (
            f"A fix for a problem with {service} affecting {who} since {since} has been applied. "
            "We are monitoring the results."
        ),
        "resolved": (
            f"This incident has been resolved. A problem with {service} affected {who} "
            f"from {since} to {_utc(ended)}."
        ),
    }[current]
    text = f"{_HEAD[current]}: {service}\n\n{body}\n\nPosted {_utc(now)}."
    return Draft(True, None, current, s.started_at, ended, text)


def _who(s: Situation) -> str:
    if not s.orgs:
        return "some customers"
    noun = "organisation" if s.orgs == 1 and not s.more_orgs else "organisations"
    return f"{'more than ' if s.more_orgs else ''}{s.orgs:,} {noun}"


def _utc(at: float | None) -> str:
    if at is None:
        return "an unknown time"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")
