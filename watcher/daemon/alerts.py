"""Incidents opened by Alertmanager (or Grafana): `POST /api/v1/alerts/alertmanager`.

An alert group is one incident. The first notification with a firing alert that
matches `[alertmanager] matchers` opens it, named from the alerts' common labels and
annotations through the configured templates, its id suffixed with a hash of the
group key, so a group always maps to the same id. Every alert state (fingerprint,
start, firing or resolved) is recorded once (`store.alerts`): a retried notification,
Alertmanager's `repeat_interval` reminders and HA peers' duplicates change nothing.

A new alert of an open incident's group goes on its timeline (`alert_firing`), and
an alert that stops firing is put on the timeline and announced as "the alert
cleared" (`alert_cleared`), but it never resolves the incident: only the evidence in
the logs does. After the incident is closed, a new firing of its group opens the next
one (`<id>-2`, ...).

Everything a notification changes is one commit, so Alertmanager's retry after a
failure (a 503) finds either all of it or nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from string import Template
from typing import Protocol

from watcher.config.alerts import AlertmanagerConfig
from watcher.daemon.alert_payload import Alert, Notification
from watcher.daemon.pipeline import Pipeline
from watcher.details import AlertDetail
from watcher.events import Kind
from watcher.names import INCIDENT_ID
from watcher.schema import AlertDoc, IncidentDoc
from watcher.store.alerts import AlertKey

log = logging.getLogger(__name__)

HASH = 6
"""Hex digits of the group key's hash in an incident id."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
MAX_TITLE = 200
BY = "alertmanager"


class _Fields(dict[str, str]):
    """Template values; a field the alerts do not have reads as empty and is remembered."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.missing: set[str] = set()

    def __missing__(self, key: str) -> str:
        self.missing.add(key)
        return ""


def fields(alerts: Sequence[Alert]) -> dict[str, str]:
    """The alerts' common annotations and labels (labels win), and `date`: the UTC day
    (YYYYMMDD) the first of them started."""
    common = _shared([a.annotations for a in alerts]) | _shared([a.labels for a in alerts])
    starts = [a.starts_at for a in alerts if a.starts_at is not None]
    if starts:
        common["date"] = datetime.fromtimestamp(min(starts), UTC).strftime("%Y%m%d")
    return common


def _shared(maps: Sequence[dict[str, str]]) -> dict[str, str]:
    """The name=value pairs every map has."""
    shared = dict(maps[0]) if maps else {}
    for m in maps[1:]:
        shared = {k: v for k, v in shared.items() if m.get(k) == v}
    return shared


def incident_id(template: str, group_key: str, values: dict[str, str], episode: int = 1) -> str:
    """The id of the group's `episode`-th incident: the template's text made safe, the group's hash."""
    digest = hashlib.sha256(group_key.encode()).hexdigest()[:HASH]
    suffix = f"-{digest}" + (f"-{episode}" if episode > 1 else "")
    text = _UNSAFE.sub("-", Template(template).substitute(_Fields(values))).strip("-_.")
    text = re.sub(r"-{2,}", "-", text)[: 64 - len(suffix)].rstrip("-_.") or "alert"
    found = text + suffix
    assert INCIDENT_ID.fullmatch(found), found
    return found


def title(template: str, values: dict[str, str]) -> str:
    text = Template(template).substitute(_Fields(values)).strip(" :-")
    return (text or values.get("alertname") or "alert")[:MAX_TITLE]


def scope(templates: Sequence[str], values: dict[str, str]) -> list[str]:
    """Each glob whose fields the alerts all have; every source when none is left."""
    globs = []
    for t in templates:
        given = _Fields(values)
        glob = Template(t).substitute(given)
        if not given.missing and glob:
            globs.append(glob)
    return globs or ["*"]


def _detail(a: Alert) -> AlertDetail:
    return AlertDetail(
        alertname=a.name,
        summary=a.annotations.get("summary", ""),
        fingerprint=a.fingerprint,
        starts_at=a.starts_at,
        ends_at=a.ends_at if a.status == "resolved" else None,
        labels=tuple(f"{k}={v}" for k, v in sorted(a.labels.items())),
        generator_url=a.generator_url,
    )


def _key(a: Alert) -> AlertKey:
    return AlertKey(a.fingerprint, a.starts_at or 0.0, a.status)


class Opener(Protocol):
    """What the intake needs of the daemon's commands (watcher.daemon.commands.Commands)."""

    pipeline: Pipeline

    def open_now(
        self, incident: str, title: str, scope: list[str], window: float | None, by: str
    ) -> IncidentDoc:
        """Open `incident` in the current transaction."""
        ...


class AlertIntake:
    def __init__(self, cfg: AlertmanagerConfig, commands: Opener) -> None:
        self.cfg = cfg
        self.commands = commands

    def receive(self, n: Notification) -> AlertDoc:
        """Record what is new in `n`, opening the group's incident if it needs one; one commit."""
        p = self.commands.pipeline
        matching = [a for a in n.alerts if self.cfg.matching(a.labels)]
        doc: AlertDoc = {
            "incident": None,
            "opened": False,
            "new": 0,
            "ignored": len(n.alerts) - len(matching),
        }
        if n.truncated_alerts:
            log.warning("%s: Alertmanager left out %d alert(s) (max_alerts)", n.group_key, n.truncated_alerts)
        with p.store.transaction():
            seen = p.store.alerts.seen(n.group_key, [_key(a) for a in matching])
            new = [a for a in matching if _key(a) not in seen]
            incident = p.store.alerts.incident_of(n.group_key)
            row = None if incident is None else p.store.incident(incident)
            firing = [a for a in new if a.status == "firing"]
            opened = bool(firing) and (row is None or row.closed_at is not None)
            if opened:
                incident = self._free_id(n.group_key, firing)
            elif row is None:
                return doc  # nothing firing for a group we never opened an incident for
            assert incident is not None
            now = p.clock()
            # Recorded before the incident is opened: a failure here leaves the engine untouched.
            p.store.alerts.record(n.group_key, [_key(a) for a in new], incident, now)
            if opened:
                self._open(incident, n.group_key, firing)
            announce = opened or (row is not None and row.closed_at is None)
            for a in new:
                kind = Kind.ALERT_FIRING if a.status == "firing" else Kind.ALERT_CLEARED
                at = (a.starts_at if a.status == "firing" else a.ends_at) or now
                p.store.add_note(incident, at, kind, _detail(a))
                # The alerts that opened the incident are in its `opened` announcement.
                if announce and not (opened and a.status == "firing"):
                    p.announce(p.announcer.note(incident, kind, at, _detail(a), p.engine.status))
            p.persist(force=True)
        return {**doc, "incident": incident, "opened": opened, "new": len(new)}

    def _free_id(self, group_key: str, firing: Sequence[Alert]) -> str:
        """The id of the group's next incident: the first episode whose id is not taken."""
        values = fields(firing)
        store = self.commands.pipeline.store
        episode = 1
        while store.incident(found := incident_id(self.cfg.id, group_key, values, episode)) is not None:
            episode += 1
        return found

    def _open(self, incident: str, group_key: str, firing: Sequence[Alert]) -> None:
        values = fields(firing)
        name = title(self.cfg.title, values)
        self.commands.open_now(incident, name, scope(self.cfg.scope, values), self.cfg.window, BY)
        log.info("%s opened by Alertmanager group %s: %s", incident, group_key, name)
