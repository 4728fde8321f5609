"""Every Prometheus metric the watcher exports, owned by one `Metrics` object.

The registry is injected so tests get a fresh one each and nothing lives in
module globals. Label values are only configured names (sources, rules,
channels) and incident ids, never log content, so cardinality stays bounded.
Every series of a known source, rule, channel and trigger exists from the start
at 0: `rate()` and `absent()` alerts then behave from the first scrape. A value
not known yet (a watermark, a streak's start) has no sample rather than a 0 that
queries would read as 1970. The exposition leaves out the `*_created` series
prometheus_client adds to every counter (nobody queries them, and they double the
counters' share of a scrape); the process and platform collectors are on.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Hashable, Iterable, Sequence
from typing import TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from watcher import __version__
from watcher.events import State, Trigger

STATES: tuple[str, ...] = tuple(s.value for s in State)
NOTIFY_RESULTS = ("sent", "retried", "dead")
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


class _WithoutCreated(Collector):
    """A read-only view of a registry without the `*_created` samples of its counters.

    prometheus_client can only turn them off process-wide (an environment variable or a
    module global read at collection); this view does it for our registry alone."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        for family in self._registry.collect():
            created = family.name + "_created"
            if not any(s.name == created for s in family.samples):
                yield family
                continue
            copy = Metric(family.name, family.documentation, family.type, family.unit)
            copy.samples = [s for s in family.samples if s.name != created]
            yield copy


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
        self._registry = registry
        self._exported = _WithoutCreated(registry)
        self._rules = list(rules)
        self._states = _IncidentStates()
        registry.register(self._states)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)

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
        self._streak_start = gauge(
            "watcher_incident_streak_start_timestamp_seconds",
            "Where the clean streak starts (Unix time): the latest of the mitigation, the last "
            "error and the end of the last gap in scope; absent before the first mitigation.",
            ["incident"],
        )
        self._verified_to = gauge(
            "watcher_incident_verified_to_timestamp_seconds",
            "Event time up to which every source in scope is read and proven (Unix time); "
            "absent until known.",
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
            "Webhook deliveries: sent, retried after a failure, or dead (given up).",
            ["channel", "result"],
        )
        self._pending = gauge("watcher_notification_outbox_pending", "Announcements waiting in the outbox.")
        self._snapshots = counter(
            "watcher_snapshots_total", "Evidence snapshots taken, by what triggered them.", ["trigger"]
        )
        Info(
            "watcher_build",
            "Version of the running watcher, and its site (config `site`).",
            registry=registry,
        ).info({"version": __version__, "site": site})

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
        self._states.current[incident] = str(state)
        if state == State.CLOSED:
            return  # its streak no longer moves: the last values stay until remove_incident
        self._streak.labels(incident).set(clean_streak)
        # 0, not absent, while unresolved: a regression must visibly reset it.
        self._resolved.labels(incident).set(resolved_at if resolved_at is not None else 0.0)
        for gauge, value in ((self._streak_start, streak_start), (self._verified_to, verified_to)):
            if value is None or not math.isfinite(value):
                with contextlib.suppress(KeyError):
                    gauge.remove(incident)
            else:
                gauge.labels(incident).set(value)

    def remove_incident(self, incident: str) -> None:
        """Stop exporting `incident` (closed, and its last state scraped)."""
        self._states.current.pop(incident, None)
        for gauge in (self._streak, self._window, self._resolved, self._streak_start, self._verified_to):
            with contextlib.suppress(KeyError):
                gauge.remove(incident)

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
        return generate_latest(self._exported), CONTENT_TYPE_PLAIN_0_0_4
