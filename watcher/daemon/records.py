"""What the API reads from an incident's record: the list of incidents, the customer-facing
status draft and the postmortem's document. Open or closed, an incident is read from the
store (its impact too, once the pipeline committed what it read); an open one's state and
impact as the engine holds them now.
"""

from __future__ import annotations

from watcher.config import Settings
from watcher.daemon.pipeline import Pipeline
from watcher.daemon.status import delivery_doc, impact_doc, incident_row_doc, org_doc, timeline_doc
from watcher.engine.impact import Impact, ImpactSummary
from watcher.events import State
from watcher.facts import UNREAD, Facts, facts
from watcher.runbook.statuspage import Situation, draft
from watcher.schema import IncidentListDoc, PostmortemDoc, StatuspageDoc
from watcher.store.rows import IncidentRow
from watcher.times import format_time


def incident_list(pipeline: Pipeline, include_closed: bool) -> IncidentListDoc:
    engine = pipeline.engine
    known = set(engine.incident_ids())

    def state(row: IncidentRow) -> str:
        if row.closed_at is not None or row.id not in known:
            return str(State.CLOSED)
        return str(engine.status(row.id).state)

    return {"incidents": [incident_row_doc(r, state(r)) for r in pipeline.store.incidents(include_closed)]}


def statuspage(settings: Settings, pipeline: Pipeline, incident: str) -> StatuspageDoc:
    row = pipeline.store.require(incident)
    f = facts(row, pipeline.store.timeline(incident, skip=UNREAD))
    summary, _ = _impact(pipeline, row, f)
    names_orgs = any(s.impact_field or s.impact_regex for s in settings.sources)
    open_ = row.closed_at is None and incident in pipeline.engine.incident_ids()
    situation = Situation(
        state=pipeline.engine.status(incident).state if open_ else State.CLOSED,
        hypothesised=bool(f.hypotheses),
        confirmed_at=summary.confirmed_at,
        started_at=summary.first if summary.first is not None else f.opened_at,
        last_error=summary.last,
        orgs=summary.orgs if names_orgs else None,
        more_orgs=summary.untracked > 0,
    )
    now = pipeline.clock()
    d = draft(situation, settings.runbook.service, now)
    return {
        "incident": incident,
        "publishable": d.publishable,
        "withheld": d.withheld,
        "phase": d.phase,
        "started_at": format_time(d.started_at),
        "ended_at": format_time(d.ended_at),
        "affected_orgs": situation.orgs,
        "more_orgs": situation.more_orgs,
        "updated_at": format_time(now),
        "text": d.text,
    }


def postmortem(pipeline: Pipeline, incident: str) -> PostmortemDoc:
    pipeline.persist(force=True)  # what was read so far is in the store
    store, now = pipeline.store, pipeline.clock()
    row = store.require(incident)
    rows = store.timeline(incident)
    f = facts(row, rows)
    summary, impact = _impact(pipeline, row, f)
    upto = _upto(pipeline, row, f)
    return {
        "timeline": timeline_doc(row, rows, now),
        "impact": impact_doc(summary),
        "orgs": [org_doc(o) for o in impact.statuses(upto, row.window)],
        "announcements": [delivery_doc(d) for d in store.outbox.about(incident)],
        "generated_at": format_time(now),
    }


def _impact(pipeline: Pipeline, row: IncidentRow, f: Facts) -> tuple[ImpactSummary, Impact]:
    """Its impact summed up as of its verified time, and every org, from the store."""
    impact = Impact(pipeline.engine.impact.cap, row.orgs)
    saved = pipeline.store.impact.load(row.id)
    impact.load(saved.totals, saved.orgs)
    if row.closed_at is None and row.id in pipeline.engine.incident_ids():
        return pipeline.engine.status(row.id).impact, impact
    return impact.summary(_upto(pipeline, row, f), row.window), impact


def _upto(pipeline: Pipeline, row: IncidentRow, f: Facts) -> float | None:
    """The time up to which an org's errors are judged: verified now (open), else its end."""
    if row.closed_at is None and row.id in pipeline.engine.incident_ids():
        return pipeline.engine.status(row.id).verified_to
    return f.resolved_at if f.resolved_at is not None else f.closed_at
