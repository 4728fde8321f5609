"""Every Prometheus metric the watcher exports, owned by one `Metrics` object.

The registry is injected so tests get a fresh one each and nothing lives in
module globals. Label values are only configured names (sources, rules,
channels) and incident ids, never log content, so cardinality stays bounded.
Every series of a known source, rule, channel and trigger exists from the start
at 0: `rate()` and `absent()` alerts then behave from the first scrape.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from watcher import __version__
from watcher.events import Cause, State, Trigger

STATES: tuple[str, ...] = tuple(s.value for s in State)
RESOLVE_BUCKETS = tuple(60.0 * m for m in (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 360, 720, 1440))
NOTIFY_RESULTS = ("sent", "retried", "dead", "coalesced")
BAD_LINE_REASONS = ("bad_utf8", "truncated", "copytruncate")

_K = TypeVar("_K", bound=Hashable)
_M = TypeVar("_M", bound=MetricWrapperBase)


class _IncidentStates(Collector):
    """`watcher_incident_state{incident,state}`: exactly one state is 1 per incident.

    prometheus_client's Enum names its state label after the metric itself
    (`watcher_incident_state="resolved"`), which breaks the `{incident,state}`
    contract, so the same stateset shape is exported as a gauge here.
    """

    def __init__(self) -> None:
        self.current: dict[str, str] = {}

    def describe(self) -> Iterable[Metric]:
        # Registration calls describe(); without it the registry would collect() to learn names.
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        for incident, current in list(self.current.items()):
            for state in STATES:
                family.add_metric([incident, state], 1.0 if state == current else 0.0)
        return [family]

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "watcher_incident_state",
            "Current state of each tracked incident: 1 for the state it is in, 0 for the others.",
            labels=["incident", "state"],
        )


@dataclass(frozen=True, slots=True)
class Handling:
    """How an incident has been handled, as its record says (watcher.facts): counts only."""

    mitigations: int = 0
    failed: int = 0
    escalations: Mapping[str, int] = field(default_factory=dict)
    """Per cause (events.Cause)."""


class _Handled(Collector):
    """`watcher_incident_{mitigations,failed_mitigations,escalations}_total`: counted on the
    incident's record, so they survive restarts; mirrored here whenever the record changes."""

    def __init__(self) -> None:
        self.current: dict[str, Handling] = {}

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        mitigations, failed, escalations = self._families()
        for incident, h in list(self.current.items()):
            mitigations.add_metric([incident], h.mitigations)
            failed.add_metric([incident], h.failed)
            for cause in Cause:
                escalations.add_metric([incident, str(cause)], h.escalations.get(cause, 0))
        return [mitigations, failed, escalations]

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, CounterMetricFamily, CounterMetricFamily]:
        return (
            CounterMetricFamily(
                "watcher_incident_mitigations", "Mitigations recorded for the incident.", labels=["incident"]
            ),
            CounterMetricFamily(
                "watcher_incident_failed_mitigations",
                "Mitigations that failed: regressed after, or not resolved within twice the window.",
                labels=["incident"],
            ),
            CounterMetricFamily(
                "watcher_incident_escalations",
                "Escalations to the engineering lead, by cause (once per cause).",
                labels=["incident", "cause"],
            ),
        )


class _RunbookSeries:
    """The runbook's series of each incident (its handling, whom its errors hit) and the time to
    resolve across incidents."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, ["incident"], registry=registry)

        self._handled = _Handled()
        registry.register(self._handled)
        self._opened = gauge(
            "watcher_incident_opened_timestamp_seconds", "When the incident opened (Unix time)."
        )
        self._first_mitigated = gauge(
            "watcher_incident_first_mitigated_timestamp_seconds",
            "When the incident's first mitigation was made (Unix time); absent until then.",
        )
        self._orgs = gauge(
            "watcher_incident_orgs",
            "Distinct orgs (a source's impact_field) whose errors the incident counted, up to "
            "runbook.max_orgs.",
        )
        self._affected = gauge(
            "watcher_incident_orgs_affected",
            "Of those, the orgs still affected: an error within the window before the verified time.",
        )
        self._untracked = gauge(
            "watcher_incident_untracked_org_records",
            "Error records of orgs beyond runbook.max_orgs: counted, not named.",
        )
        self.time_to_resolve = Histogram(
            "watcher_incident_time_to_resolve_seconds",
            "From an incident's opening to the resolution that stands, observed when it is first closed.",
            buckets=RESOLVE_BUCKETS,
            registry=registry,
        )

    def handled(self, incident: str, opened: float, first_mitigated: float | None, h: Handling) -> None:
        self._opened.labels(incident).set(opened)
        if first_mitigated is not None:
            self._first_mitigated.labels(incident).set(first_mitigated)
        self._handled.current[incident] = h

    def impact(self, incident: str, orgs: int, affected: int, untracked: int) -> None:
        self._orgs.labels(incident).set(orgs)
        self._affected.labels(incident).set(affected)
        self._untracked.labels(incident).set(untracked)

    def remove(self, incident: str) -> None:
        self._handled.current.pop(incident, None)
        for gauge in (self._opened, self._first_mitigated, self._orgs, self._affected, self._untracked):
            with contextlib.suppress(KeyError):
                gauge.remove(incident)


class Metrics:
    """The watcher's metrics; the daemon calls one method per notable event."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        sources: Sequence[str],
        rules: Sequence[str],
        channels: Sequence[str] = ("incident", "oncall"),
    ) -> None:
        self._registry = registry
        self._rules = list(rules)
        self._states = _IncidentStates()
        registry.register(self._states)
        self._runbook = _RunbookSeries(registry)

        def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
            return Gauge(name, doc, labels, registry=registry)

        def counter(name: str, doc: str, labels: Sequence[str]) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        self._streak = gauge(
            "watcher_incident_clean_streak_seconds",
            "Error-free time proven so far since the streak started, in event time.",
            ["incident"],
        )
        self._window = gauge(
            "watcher_incident_window_seconds",
            "Clean streak an incident needs to count as resolved.",
            ["incident"],
        )
        self._resolved = gauge(
            "watcher_incident_resolved_timestamp_seconds",
            "When the incident was proven resolved (Unix time); 0 while it is not.",
            ["incident"],
        )
        self._up = gauge("watcher_source_up", "1 while the source is connected and readable.", ["source"])
        self._watermark = gauge(
            "watcher_source_watermark_timestamp_seconds",
            "Event time up to which every record of the source has been read (Unix time); "
            "absent until known.",
            ["source"],
        )
        self._running = gauge(
            "watcher_source_running",
            "1 while what the source reads runs (a container, a unit), 0 while it does not; "
            "absent for sources that do not report it.",
            ["source"],
        )
        self._skew = gauge(
            "watcher_source_clock_skew_seconds",
            "The newest live line's own timestamp minus its arrival (positive: the source's clock "
            "is ahead); absent until measured.",
            ["source"],
        )
        self._lines = counter("watcher_source_lines_total", "Log lines read.", ["source"])
        self._errors = counter(
            "watcher_source_errors_total", "Error records, by the rule that matched.", ["source", "rule"]
        )
        self._gaps = counter(
            "watcher_source_gaps_total", "Intervals of logs that can never be read back.", ["source"]
        )
        self._bad = counter(
            "watcher_source_bad_lines_total",
            "Lines read damaged: invalid UTF-8, cut at max_line_bytes, or lost to a copytruncate.",
            ["source", "reason"],
        )
        self._notifications = counter(
            "watcher_notifications_total",
            "Announcement deliveries: sent, retried after a failure, dead (given up), or coalesced"
            " (a status superseded before it was sent).",
            ["channel", "result"],
        )
        self._pending = gauge("watcher_notification_outbox_pending", "Announcements waiting in the outbox.")
        self._snapshots = counter(
            "watcher_snapshots_total", "Evidence snapshots taken, by what triggered them.", ["trigger"]
        )
        Info("watcher_build", "Version of the running watcher.", registry=registry).info(
            {"version": __version__}
        )

        # Labelled children cached by label values: .labels() hashes and locks on every
        # call, which matters on the line-counting hot path.
        self._c_lines: dict[str, Counter] = {}
        self._c_errors: dict[tuple[str, str], Counter] = {}
        self._c_gaps: dict[str, Counter] = {}
        self._c_bad: dict[tuple[str, str], Counter] = {}
        self._c_up: dict[str, Gauge] = {}
        self._c_watermark: dict[str, Gauge] = {}
        self._c_notifications: dict[tuple[str, str], Counter] = {}
        self._c_snapshots: dict[str, Counter] = {}

        for source in sources:
            self.add_source(source)
        for channel in channels:
            for result in NOTIFY_RESULTS:
                self._child(self._c_notifications, self._notifications, (channel, result))
        for trigger in Trigger:
            self._child(self._c_snapshots, self._snapshots, str(trigger))

    @staticmethod
    def _child(cache: dict[_K, _M], metric: _M, key: _K) -> _M:
        child = cache.get(key)
        if child is None:
            values = key if isinstance(key, tuple) else (key,)
            child = cache[key] = metric.labels(*values)
        return child

    # Sources

    def add_source(self, source: str) -> None:
        """Create every series of `source` at 0 (idempotent)."""
        self._child(self._c_lines, self._lines, source)
        self._child(self._c_gaps, self._gaps, source)
        self._child(self._c_up, self._up, source)
        # No watermark sample until one is known: a 0 would read as "lagging since 1970".
        for rule in self._rules:
            self._child(self._c_errors, self._errors, (source, rule))
        for reason in BAD_LINE_REASONS:
            self._child(self._c_bad, self._bad, (source, reason))

    def lines(self, source: str, n: int) -> None:
        child = self._c_lines.get(source)
        if child is None:
            child = self._child(self._c_lines, self._lines, source)
        child.inc(n)

    def error(self, source: str, rule: str) -> None:
        self._child(self._c_errors, self._errors, (source, rule)).inc()

    def gap(self, source: str) -> None:
        self._child(self._c_gaps, self._gaps, source).inc()

    def bad_line(self, source: str, reason: str, n: int = 1) -> None:
        if reason not in BAD_LINE_REASONS:
            raise ValueError(f"bad line reason must be one of {', '.join(BAD_LINE_REASONS)}, got {reason!r}")
        self._child(self._c_bad, self._bad, (source, reason)).inc(n)

    def source_up(self, source: str, up: bool) -> None:
        self._child(self._c_up, self._up, source).set(1.0 if up else 0.0)

    def watermark(self, source: str, at: float) -> None:
        self._child(self._c_watermark, self._watermark, source).set(at)

    def running(self, source: str, running: bool) -> None:
        self._running.labels(source).set(1.0 if running else 0.0)

    def clock_skew(self, source: str, skew: float) -> None:
        self._skew.labels(source).set(skew)

    # Incidents

    def add_incident(self, incident: str, window: float) -> None:
        """Start exporting `incident`, as investigating until `incident()` says otherwise."""
        self._states.current.setdefault(incident, State.INVESTIGATING.value)
        self._window.labels(incident).set(window)
        self._streak.labels(incident)
        self._resolved.labels(incident)

    def incident(self, incident: str, *, state: str, clean_streak: float, resolved_at: float | None) -> None:
        if state not in STATES:
            raise ValueError(f"incident state must be one of {', '.join(STATES)}, got {state!r}")
        self._states.current[incident] = str(state)
        if state == State.CLOSED:
            return  # its streak no longer moves: the last values stay until remove_incident
        self._streak.labels(incident).set(clean_streak)
        # 0, not absent, while unresolved: a regression must visibly reset it.
        self._resolved.labels(incident).set(resolved_at if resolved_at is not None else 0.0)

    def remove_incident(self, incident: str) -> None:
        """Stop exporting `incident` (closed, and its last state scraped)."""
        self._states.current.pop(incident, None)
        self._runbook.remove(incident)
        for gauge in (self._streak, self._window, self._resolved):
            with contextlib.suppress(KeyError):
                gauge.remove(incident)

    def handled(
        self, incident: str, opened_at: float, first_mitigated_at: float | None, handling: Handling
    ) -> None:
        """How an incident has been handled, from its record."""
        self._runbook.handled(incident, opened_at, first_mitigated_at, handling)

    def impact(self, incident: str, orgs: int, affected: int, untracked: int) -> None:
        """Whom an incident's errors hit, in counts (org ids are never labels)."""
        self._runbook.impact(incident, orgs, affected, untracked)

    def resolved_in(self, seconds: float) -> None:
        """A closed incident's time from opening to the resolution that stands."""
        self._runbook.time_to_resolve.observe(seconds)

    # Notifications and snapshots

    def notification(self, channel: str, result: str) -> None:
        if result not in NOTIFY_RESULTS:
            raise ValueError(
                f"notification result must be one of {', '.join(NOTIFY_RESULTS)}, got {result!r}"
            )
        self._child(self._c_notifications, self._notifications, (channel, result)).inc()

    def outbox_pending(self, n: int) -> None:
        self._pending.set(n)

    def snapshot(self, trigger: Trigger) -> None:
        self._child(self._c_snapshots, self._snapshots, str(trigger)).inc()

    def exposition(self) -> tuple[bytes, str]:
        """The /metrics body in the Prometheus text format, and its content type."""
        # 0.0.4 explicitly: every name here is a classic one, and Prometheus 2.x scrapers
        # and promtool all understand it.
        return generate_latest(self._registry), CONTENT_TYPE_PLAIN_0_0_4
