"""Every Prometheus metric the watcher exports, owned by one `Metrics` object.

The registry is injected so tests get a fresh one each and nothing lives in
module globals. Label values are only configured names (sources, rules,
channels) and incident ids, never log content, so cardinality stays bounded.
Every series of a known source, rule, channel and trigger exists from the start
at 0: `rate()` and `absent()` alerts then behave from the first scrape. A value
not known yet (a watermark, a streak's start) has no sample rather than a 0 that
queries would read as 1970.

The watcher's own families are `series.Family` objects, written straight to the text
format (a scrape of 1,000 sources costs milliseconds, not a quarter of a second); the
process, platform and GC collectors and the build info are prometheus_client's, on a
registry of their own that the injected one also collects. No `*_created` series: our
counters have none, and prometheus_client's collectors export counter families without one
(prometheus_client adds them to its `Counter` objects, which the watcher does not use).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from watcher import __version__
from watcher.events import Cause, State, Trigger
from watcher.series import Family, Histogram

STATES: tuple[str, ...] = tuple(s.value for s in State)
RESOLVE_BUCKETS = tuple(60.0 * m for m in (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 360, 720, 1440))
NOTIFY_RESULTS = ("sent", "retried", "dead", "coalesced")
BAD_LINE_REASONS = ("bad_utf8", "truncated", "copytruncate")


@dataclass(frozen=True, slots=True)
class Handling:
    """How an incident has been handled, as its record says (watcher.facts): counts only."""

    mitigations: int = 0
    failed: int = 0
    escalations: Mapping[str, int] = field(default_factory=dict)
    """Per cause (events.Cause)."""


class Metrics:
    """The watcher's metrics; the daemon calls one method per notable event."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        sources: Sequence[str],
        rules: Sequence[str],
        channels: Sequence[str] = ("incident", "oncall"),
        site: str = "",
    ) -> None:
        self._rules = list(rules)
        self._families: list[Family | Histogram] = []

        def family(name: str, doc: str, labels: Sequence[str], kind: str = "gauge") -> Family:
            f = Family(name, doc, labels, "counter" if kind == "counter" else "gauge")
            registry.register(f)
            self._families.append(f)
            return f

        self._state = family(
            "watcher_incident_state",
            "Current state of each tracked incident: 1 for the state it is in, 0 for the others.",
            ["incident", "state"],
        )
        self._streak = family(
            "watcher_incident_clean_streak_seconds",
            "Error-free time proven so far since the streak started, in event time.",
            ["incident"],
        )
        self._window = family(
            "watcher_incident_window_seconds",
            "Clean streak an incident needs to count as resolved.",
            ["incident"],
        )
        self._resolved = family(
            "watcher_incident_resolved_timestamp_seconds",
            "When the incident was proven resolved (Unix time); 0 while it is not.",
            ["incident"],
        )
        self._streak_start = family(
            "watcher_incident_streak_start_timestamp_seconds",
            "Where the clean streak starts (Unix time): the latest of the mitigation, the last "
            "error and the end of the last gap in scope; absent before the first mitigation.",
            ["incident"],
        )
        self._verified_to = family(
            "watcher_incident_verified_to_timestamp_seconds",
            "Event time up to which every source in scope is read and proven (Unix time); "
            "absent until known.",
            ["incident"],
        )
        self._up = family("watcher_source_up", "1 while the source is connected and readable.", ["source"])
        self._watermark = family(
            "watcher_source_watermark_timestamp_seconds",
            "Event time up to which every record of the source has been read (Unix time); "
            "absent until known.",
            ["source"],
        )
        self._running = family(
            "watcher_source_running",
            "1 while what the source reads runs (a container, a unit), 0 while it does not; "
            "absent for sources that do not report it.",
            ["source"],
        )
        self._skew = family(
            "watcher_source_clock_skew_seconds",
            "The newest live line's own timestamp minus its arrival (positive: the source's clock "
            "is ahead); absent until measured.",
            ["source"],
        )
        self._lines = family("watcher_source_lines_total", "Log lines read.", ["source"], "counter")
        self._errors = family(
            "watcher_source_errors_total",
            "Error records, by the rule that matched.",
            ["source", "rule"],
            "counter",
        )
        self._gaps = family(
            "watcher_source_gaps_total",
            "Intervals of logs that can never be read back.",
            ["source"],
            "counter",
        )
        self._bad = family(
            "watcher_source_bad_lines_total",
            "Lines read damaged: invalid UTF-8, cut at max_line_bytes, or lost to a copytruncate.",
            ["source", "reason"],
            "counter",
        )
        self._notifications = family(
            "watcher_notifications_total",
            "Announcement deliveries: sent, retried after a failure, dead (given up), or coalesced"
            " (a status superseded before it was sent).",
            ["channel", "result"],
            "counter",
        )
        self._pending = family(
            "watcher_notification_outbox_pending", "Announcements waiting in the outbox.", []
        )
        self._snapshots = family(
            "watcher_snapshots_total",
            "Evidence snapshots taken, by what triggered them.",
            ["trigger"],
            "counter",
        )
        self._pending.set((), 0.0)
        self._runbook_families(family)
        self._time_to_resolve = Histogram(
            "watcher_incident_time_to_resolve_seconds",
            "From an incident's opening to the resolution that stands, observed when it is first closed.",
            RESOLVE_BUCKETS,
        )
        registry.register(self._time_to_resolve)
        self._families.append(self._time_to_resolve)

        # prometheus_client's collectors on a registry of their own, which the injected one
        # collects too: the exposition renders it after our families.
        self._standard = standard = CollectorRegistry()
        ProcessCollector(registry=standard)
        PlatformCollector(registry=standard)
        GCCollector(registry=standard)
        Info(
            "watcher_build",
            "Version of the running watcher, and its site (config `site`).",
            registry=standard,
        ).info({"version": __version__, "site": site})
        registry.register(standard)

        for source in sources:
            self.add_source(source)
        for channel in channels:
            for result in NOTIFY_RESULTS:
                self._notifications.ensure((channel, result))
        for trigger in Trigger:
            self._snapshots.ensure(str(trigger))

    def _runbook_families(self, family: Callable[..., Family]) -> None:
        """The runbook's series of each incident: its handling (counted on its record, so they
        survive restarts) and whom its errors hit (counts only: an org id is never a label)."""
        self._opened = family(
            "watcher_incident_opened_timestamp_seconds", "When the incident opened (Unix time).", ["incident"]
        )
        self._first_mitigated = family(
            "watcher_incident_first_mitigated_timestamp_seconds",
            "When the incident's first mitigation was made (Unix time); absent until then.",
            ["incident"],
        )
        self._mitigations = family(
            "watcher_incident_mitigations_total",
            "Mitigations recorded for the incident.",
            ["incident"],
            "counter",
        )
        self._failed = family(
            "watcher_incident_failed_mitigations_total",
            "Mitigations that failed: regressed after, or not resolved within twice the window.",
            ["incident"],
            "counter",
        )
        self._escalations = family(
            "watcher_incident_escalations_total",
            "Escalations to the engineering lead, by cause (once per cause).",
            ["incident", "cause"],
            "counter",
        )
        self._orgs = family(
            "watcher_incident_orgs",
            "Distinct orgs (a source's impact_field) whose errors the incident counted, up to "
            "runbook.max_orgs.",
            ["incident"],
        )
        self._affected = family(
            "watcher_incident_orgs_affected",
            "Of those, the orgs still affected: an error within the window before the verified time.",
            ["incident"],
        )
        self._untracked = family(
            "watcher_incident_untracked_org_records",
            "Error records of orgs beyond runbook.max_orgs: counted, not named.",
            ["incident"],
        )

    # Sources

    def add_source(self, source: str) -> None:
        """Create every series of `source` at 0 (idempotent)."""
        self._lines.ensure(source)
        self._gaps.ensure(source)
        self._up.ensure(source)
        # No watermark sample until one is known: a 0 would read as "lagging since 1970".
        for rule in self._rules:
            self._errors.ensure((source, rule))
        for reason in BAD_LINE_REASONS:
            self._bad.ensure((source, reason))

    def lines(self, source: str, n: int) -> None:
        self._lines.inc(source, n)

    def error(self, source: str, rule: str) -> None:
        self._errors.inc((source, rule))

    def gap(self, source: str) -> None:
        self._gaps.inc(source)

    def bad_line(self, source: str, reason: str, n: int = 1) -> None:
        if reason not in BAD_LINE_REASONS:
            raise ValueError(f"bad line reason must be one of {', '.join(BAD_LINE_REASONS)}, got {reason!r}")
        self._bad.inc((source, reason), n)

    def source_up(self, source: str, up: bool) -> None:
        self._up.set(source, 1.0 if up else 0.0)

    def watermark(self, source: str, at: float) -> None:
        self._watermark.set(source, at)

    def running(self, source: str, running: bool) -> None:
        self._running.set(source, 1.0 if running else 0.0)

    def clock_skew(self, source: str, skew: float) -> None:
        self._skew.set(source, skew)

    # Incidents

    def add_incident(self, incident: str, window: float) -> None:
        """Start exporting `incident`, as investigating until `incident()` says otherwise."""
        if self._state.get((incident, State.INVESTIGATING.value)) is None:
            self._set_state(incident, State.INVESTIGATING.value)
        self._window.set(incident, window)
        self._streak.ensure(incident)
        self._resolved.ensure(incident)

    def incident(
        self,
        incident: str,
        *,
        state: str,
        clean_streak: float,
        resolved_at: float | None,
        streak_start: float | None = None,
        verified_to: float | None = None,
    ) -> None:
        """The incident's current state; a streak start or verified_to of None (not known) has no
        sample, so `verified_to - streak_start` across sites never meets a 0 that reads as 1970."""
        if state not in STATES:
            raise ValueError(f"incident state must be one of {', '.join(STATES)}, got {state!r}")
        self._set_state(incident, str(state))
        if state == State.CLOSED:
            return  # its streak no longer moves: the last values stay until remove_incident
        self._streak.set(incident, clean_streak)
        # 0, not absent, while unresolved: a regression must visibly reset it.
        self._resolved.set(incident, resolved_at if resolved_at is not None else 0.0)
        for family, value in ((self._streak_start, streak_start), (self._verified_to, verified_to)):
            if value is None or not math.isfinite(value):
                family.remove(incident)
            else:
                family.set(incident, value)

    def _set_state(self, incident: str, current: str) -> None:
        for state in STATES:
            self._state.set((incident, state), 1.0 if state == current else 0.0)

    def remove_incident(self, incident: str) -> None:
        """Stop exporting `incident` (closed, and its last state scraped)."""
        for state in STATES:
            self._state.remove((incident, state))
        for family in (self._streak, self._window, self._resolved, self._streak_start, self._verified_to):
            family.remove(incident)
        for family in (self._opened, self._first_mitigated, self._mitigations, self._failed):
            family.remove(incident)
        for family in (self._orgs, self._affected, self._untracked):
            family.remove(incident)
        for cause in Cause:
            self._escalations.remove((incident, str(cause)))

    def handled(
        self, incident: str, opened_at: float, first_mitigated_at: float | None, handling: Handling
    ) -> None:
        """How an incident has been handled, from its record."""
        self._opened.set(incident, opened_at)
        if first_mitigated_at is not None:
            self._first_mitigated.set(incident, first_mitigated_at)
        self._mitigations.set(incident, handling.mitigations)
        self._failed.set(incident, handling.failed)
        for cause in Cause:
            self._escalations.set((incident, str(cause)), handling.escalations.get(cause, 0))

    def impact(self, incident: str, orgs: int, affected: int, untracked: int) -> None:
        """Whom an incident's errors hit, in counts (org ids are never labels)."""
        self._orgs.set(incident, orgs)
        self._affected.set(incident, affected)
        self._untracked.set(incident, untracked)

    def resolved_in(self, seconds: float) -> None:
        """A closed incident's time from opening to the resolution that stands."""
        self._time_to_resolve.observe(seconds)

    # Notifications and snapshots

    def notification(self, channel: str, result: str) -> None:
        if result not in NOTIFY_RESULTS:
            raise ValueError(
                f"notification result must be one of {', '.join(NOTIFY_RESULTS)}, got {result!r}"
            )
        self._notifications.inc((channel, result))

    def outbox_pending(self, n: int) -> None:
        self._pending.set((), float(n))

    def snapshot(self, trigger: Trigger) -> None:
        self._snapshots.inc(str(trigger))

    def exposition(self) -> tuple[bytes, str]:
        """The /metrics body in the Prometheus text format, and its content type."""
        out: list[str] = []
        for family in self._families:
            family.render(out)
        # 0.0.4 explicitly: every name here is a classic one, and Prometheus 2.x scrapers
        # and promtool all understand it.
        return "".join(out).encode() + generate_latest(self._standard), CONTENT_TYPE_PLAIN_0_0_4
