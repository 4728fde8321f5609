from __future__ import annotations

import asyncio
from asyncio.subprocess import PIPE
from collections.abc import Callable

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import require_binary
from tests.daemon.fake_api import FakeControl, running
from watcher import __version__
from watcher.events import State, Trigger
from watcher.metrics import BAD_LINE_REASONS, NOTIFY_RESULTS, STATES, Handling, Metrics

SOURCES = ("cloud", "gw/gw-berlin-01")
RULES = ("json-level", "panic")


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry, sources=SOURCES, rules=RULES)


def states(registry: CollectorRegistry, incident: str) -> dict[str, float | None]:
    return {
        s: registry.get_sample_value("watcher_incident_state", {"incident": incident, "state": s})
        for s in STATES
    }


class TestSeriesFromTheStart:
    def test_source_series_exist_at_zero(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        """Every per-source series of a configured source is exported at 0 before any event, but the
        watermark: unknown is no sample, never 0 (which `time() - watermark` would read as 56 years)."""
        for source in SOURCES:
            labels = {"source": source}
            assert registry.get_sample_value("watcher_source_lines_total", labels) == 0
            assert registry.get_sample_value("watcher_source_gaps_total", labels) == 0
            assert registry.get_sample_value("watcher_source_up", labels) == 0
            assert registry.get_sample_value("watcher_source_watermark_timestamp_seconds", labels) is None
            for rule in RULES:
                assert registry.get_sample_value("watcher_source_errors_total", {**labels, "rule": rule}) == 0
            for reason in BAD_LINE_REASONS:
                assert (
                    registry.get_sample_value("watcher_source_bad_lines_total", {**labels, "reason": reason})
                    == 0
                )

    def test_global_series_exist_at_zero(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        """Notification, outbox and snapshot series exist at 0, and build info names the version and
        the site (empty for a watcher without one)."""
        for channel in ("incident", "oncall"):
            for result in NOTIFY_RESULTS:
                labels = {"channel": channel, "result": result}
                assert registry.get_sample_value("watcher_notifications_total", labels) == 0
        assert registry.get_sample_value("watcher_notification_outbox_pending") == 0
        for trigger in Trigger:
            assert registry.get_sample_value("watcher_snapshots_total", {"trigger": str(trigger)}) == 0
        assert registry.get_sample_value("watcher_build_info", {"version": __version__, "site": ""}) == 1

    def test_build_info_names_the_site(self, registry: CollectorRegistry) -> None:
        """The configured site is a label of watcher_build_info, and of nothing else."""
        Metrics(registry, sources=SOURCES, rules=RULES, site="eu1")
        assert registry.get_sample_value("watcher_build_info", {"version": __version__, "site": "eu1"}) == 1
        labelled = {s.name for fam in registry.collect() for s in fam.samples if "site" in s.labels}
        assert labelled == {"watcher_build_info"}

    def test_process_and_platform_collectors(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        """process_* (CPU, memory, file descriptors) and python_info are exported from our registry."""
        assert registry.get_sample_value("process_cpu_seconds_total") is not None
        assert registry.get_sample_value("process_resident_memory_bytes") > 0  # type: ignore[operator]
        assert registry.get_sample_value("process_open_fds") > 0  # type: ignore[operator]
        names = {fam.name for fam in registry.collect()}
        assert "python_info" in names

    def test_added_source_starts_at_zero(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        """add_source creates the new source's series, errors per known rule included."""
        metrics.add_source("gw/gw-paris-02")
        labels = {"source": "gw/gw-paris-02", "rule": "panic"}
        assert registry.get_sample_value("watcher_source_errors_total", labels) == 0
        assert registry.get_sample_value("watcher_source_lines_total", {"source": "gw/gw-paris-02"}) == 0

    def test_label_names_follow_the_contract(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        """Each family carries exactly the label names the README documents."""
        metrics.add_incident("P1-a", 900)
        metrics.incident(
            "P1-a", state="verifying", clean_streak=1, resolved_at=None, streak_start=1.0, verified_to=2.0
        )
        metrics.watermark("cloud", 1.0)
        metrics.running("cloud", True)
        metrics.clock_skew("cloud", 0.1)
        expected = {
            "watcher_incident_state": {"incident", "state"},
            "watcher_incident_clean_streak_seconds": {"incident"},
            "watcher_incident_window_seconds": {"incident"},
            "watcher_incident_resolved_timestamp_seconds": {"incident"},
            "watcher_incident_streak_start_timestamp_seconds": {"incident"},
            "watcher_incident_verified_to_timestamp_seconds": {"incident"},
            "watcher_source_up": {"source"},
            "watcher_source_watermark_timestamp_seconds": {"source"},
            "watcher_source_running": {"source"},
            "watcher_source_clock_skew_seconds": {"source"},
            "watcher_source_lines_total": {"source"},
            "watcher_source_errors_total": {"source", "rule"},
            "watcher_source_gaps_total": {"source"},
            "watcher_notifications_total": {"channel", "result"},
            "watcher_notification_outbox_pending": set(),
            "watcher_snapshots_total": {"trigger"},
        }
        seen = {s.name: set(s.labels) for fam in registry.collect() for s in fam.samples}
        for name, labels in expected.items():
            assert seen[name] == labels, name

    def test_registries_are_independent(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        """A second Metrics on its own registry neither collides nor shares counts."""
        other = CollectorRegistry()
        Metrics(other, sources=SOURCES, rules=RULES).lines("cloud", 5)
        assert registry.get_sample_value("watcher_source_lines_total", {"source": "cloud"}) == 0


class TestCounters:
    def test_lines_accumulate_batches(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        """lines() adds each batch to the source's counter."""
        metrics.lines("cloud", 1000)
        metrics.lines("cloud", 24)
        assert registry.get_sample_value("watcher_source_lines_total", {"source": "cloud"}) == 1024

    def test_lines_for_an_unknown_source(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        """A source the constructor did not name is counted rather than lost."""
        metrics.lines("edge", 3)
        assert registry.get_sample_value("watcher_source_lines_total", {"source": "edge"}) == 3

    def test_errors_gaps_bad_lines(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        """error, gap and bad_line each count under their own labels."""
        metrics.error("cloud", "panic")
        metrics.error("cloud", "panic")
        metrics.gap("gw/gw-berlin-01")
        metrics.bad_line("cloud", "bad_utf8", 4)
        get = registry.get_sample_value
        assert get("watcher_source_errors_total", {"source": "cloud", "rule": "panic"}) == 2
        assert get("watcher_source_errors_total", {"source": "cloud", "rule": "json-level"}) == 0
        assert get("watcher_source_gaps_total", {"source": "gw/gw-berlin-01"}) == 1
        assert get("watcher_source_bad_lines_total", {"source": "cloud", "reason": "bad_utf8"}) == 4

    def test_notifications_snapshots_outbox(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        """Notification results and snapshot triggers count; the outbox gauge follows the last value."""
        metrics.notification("incident", "retried")
        metrics.notification("incident", "sent")
        metrics.snapshot(Trigger.CONTAINER_STOP)
        metrics.outbox_pending(7)
        metrics.outbox_pending(2)
        get = registry.get_sample_value
        assert get("watcher_notifications_total", {"channel": "incident", "result": "sent"}) == 1
        assert get("watcher_notifications_total", {"channel": "incident", "result": "retried"}) == 1
        assert get("watcher_snapshots_total", {"trigger": "container_stop"}) == 1
        assert get("watcher_notification_outbox_pending") == 2

    def test_source_up_and_watermark(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        """source_up is 1 or 0 and the watermark gauge holds the last time given."""
        metrics.source_up("cloud", True)
        metrics.watermark("cloud", 1_795_000_000.5)
        assert registry.get_sample_value("watcher_source_up", {"source": "cloud"}) == 1
        metrics.source_up("cloud", False)
        assert registry.get_sample_value("watcher_source_up", {"source": "cloud"}) == 0
        assert (
            registry.get_sample_value("watcher_source_watermark_timestamp_seconds", {"source": "cloud"})
            == 1_795_000_000.5
        )

    @pytest.mark.parametrize(
        "call",
        [
            lambda m: m.bad_line("cloud", "weird"),
            lambda m: m.notification("incident", "lost"),
            lambda m: m.incident("P1-a", state="fixed", clean_streak=0, resolved_at=None),
        ],
    )
    def test_unbounded_values_are_refused(self, metrics: Metrics, call: Callable[[Metrics], object]) -> None:
        """A label value outside its fixed set raises instead of minting a new series."""
        with pytest.raises(ValueError, match="must be one of"):
            call(metrics)


class TestIncidents:
    def test_added_incident_is_investigating(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        """A new incident exports investigating=1, its window, and 0 for streak and resolution."""
        metrics.add_incident("P1-a", 900)
        assert states(registry, "P1-a") == {s: float(s == "investigating") for s in STATES}
        get = registry.get_sample_value
        assert get("watcher_incident_window_seconds", {"incident": "P1-a"}) == 900
        assert get("watcher_incident_clean_streak_seconds", {"incident": "P1-a"}) == 0
        assert get("watcher_incident_resolved_timestamp_seconds", {"incident": "P1-a"}) == 0

    def test_state_is_exclusive(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        """After every change exactly one state is 1, the current one."""
        metrics.add_incident("P1-a", 900)
        for state in ("verifying", "blind", "verifying", "resolved", "regressed", "closed"):
            metrics.incident("P1-a", state=state, clean_streak=10, resolved_at=None)
            assert states(registry, "P1-a") == {s: float(s == state) for s in STATES}

    def test_accepts_the_state_enum(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        """The engine's State values work as well as plain strings."""
        metrics.incident("P1-a", state=State.BLIND, clean_streak=0, resolved_at=None)
        assert states(registry, "P1-a")["blind"] == 1

    def test_resolution_and_regression(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        """resolved_timestamp is set on resolution and back to 0 on regression; the streak follows."""
        metrics.add_incident("P1-a", 900)
        metrics.incident("P1-a", state="resolved", clean_streak=900, resolved_at=1_795_000_900)
        get = registry.get_sample_value
        assert get("watcher_incident_resolved_timestamp_seconds", {"incident": "P1-a"}) == 1_795_000_900
        assert get("watcher_incident_clean_streak_seconds", {"incident": "P1-a"}) == 900
        metrics.incident("P1-a", state="regressed", clean_streak=0, resolved_at=None)
        assert get("watcher_incident_resolved_timestamp_seconds", {"incident": "P1-a"}) == 0
        assert get("watcher_incident_clean_streak_seconds", {"incident": "P1-a"}) == 0

    def test_streak_start_and_verified_to_absent_until_known(
        self, registry: CollectorRegistry, metrics: Metrics
    ) -> None:
        """Both timestamps have no sample while unknown (never 0, which reads as 1970 in
        `verified_to - streak_start`), the values once known, and none again if unknown."""
        get = registry.get_sample_value
        labels = {"incident": "P1-a"}
        metrics.add_incident("P1-a", 900)
        metrics.incident("P1-a", state="investigating", clean_streak=0, resolved_at=None)
        assert get("watcher_incident_streak_start_timestamp_seconds", labels) is None
        assert get("watcher_incident_verified_to_timestamp_seconds", labels) is None
        metrics.incident(
            "P1-a", state="verifying", clean_streak=0, resolved_at=None, streak_start=1_795_000_000.0
        )
        assert get("watcher_incident_streak_start_timestamp_seconds", labels) == 1_795_000_000.0
        assert get("watcher_incident_verified_to_timestamp_seconds", labels) is None
        metrics.incident(
            "P1-a",
            state="verifying",
            clean_streak=60,
            resolved_at=None,
            streak_start=1_795_000_000.0,
            verified_to=1_795_000_060.0,
        )
        assert get("watcher_incident_verified_to_timestamp_seconds", labels) == 1_795_000_060.0
        metrics.incident(
            "P1-a", state="blind", clean_streak=60, resolved_at=None, streak_start=1_795_000_000.0
        )
        assert get("watcher_incident_verified_to_timestamp_seconds", labels) is None

    def test_removed_incident_leaves_no_series(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        """remove_incident drops every series of the incident, its timestamps included."""
        metrics.add_incident("P1-a", 900)
        metrics.incident(
            "P1-a", state="closed", clean_streak=1, resolved_at=None, streak_start=1.0, verified_to=2.0
        )
        metrics.incident(
            "P1-b", state="verifying", clean_streak=1, resolved_at=None, streak_start=1.0, verified_to=2.0
        )
        metrics.remove_incident("P1-b")
        left = {s.labels.get("incident") for fam in registry.collect() for s in fam.samples}
        assert "P1-b" not in left and "P1-a" in left


class TestRunbookMetrics:
    def test_handling_per_incident(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        """Opened and first-mitigated times, mitigations, failed ones, escalations by cause."""
        metrics.add_incident("P1-a", 900)
        metrics.handled("P1-a", 1_795_000_000, None, Handling())
        inc = {"incident": "P1-a"}
        assert registry.get_sample_value("watcher_incident_opened_timestamp_seconds", inc) == 1_795_000_000
        assert registry.get_sample_value("watcher_incident_first_mitigated_timestamp_seconds", inc) is None
        metrics.handled("P1-a", 1_795_000_000, 1_795_000_100, Handling(2, 2, {"mitigations_failed": 1}))
        assert (
            registry.get_sample_value("watcher_incident_first_mitigated_timestamp_seconds", inc)
            == 1_795_000_100
        )
        assert registry.get_sample_value("watcher_incident_mitigations_total", inc) == 2
        assert registry.get_sample_value("watcher_incident_failed_mitigations_total", inc) == 2
        for cause, n in (("mitigations_failed", 1), ("no_hypothesis", 0)):
            labels = {**inc, "cause": cause}
            assert registry.get_sample_value("watcher_incident_escalations_total", labels) == n
        metrics.remove_incident("P1-a")
        assert registry.get_sample_value("watcher_incident_mitigations_total", inc) is None
        assert registry.get_sample_value("watcher_incident_opened_timestamp_seconds", inc) is None

    def test_time_to_resolve_histogram(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        """Across incidents, in seconds, with buckets from 5 minutes to a day."""
        for seconds in (240, 1500, 1500, 90_000):
            metrics.resolved_in(seconds)
        get = registry.get_sample_value
        assert get("watcher_incident_time_to_resolve_seconds_count") == 4
        assert get("watcher_incident_time_to_resolve_seconds_bucket", {"le": "300.0"}) == 1
        assert get("watcher_incident_time_to_resolve_seconds_bucket", {"le": "1800.0"}) == 3
        assert get("watcher_incident_time_to_resolve_seconds_bucket", {"le": "+Inf"}) == 4

    def test_impact_is_counts_only(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        """Orgs with errors, still affected, untracked records: no org id in any label."""
        metrics.impact("P1-a", orgs=3, affected=1, untracked=7)
        assert registry.get_sample_value("watcher_incident_orgs_affected", {"incident": "P1-a"}) == 1
        assert registry.get_sample_value("watcher_incident_untracked_org_records", {"incident": "P1-a"}) == 7
        labels = {k for fam in registry.collect() for s in fam.samples for k in s.labels}
        assert "org" not in labels and "org_id" not in labels


class TestExposition:
    def test_body_holds_what_the_registry_collects(
        self, registry: CollectorRegistry, metrics: Metrics
    ) -> None:
        """The text written straight from the families has exactly the samples a registry
        collects (process metrics aside, which move between two reads)."""
        metrics.add_incident("P1-a", 900)
        metrics.incident(
            "P1-a", state="verifying", clean_streak=5, resolved_at=None, streak_start=10.0, verified_to=15.0
        )
        metrics.lines("cloud", 7)
        metrics.error("gw/gw-berlin-01", "panic")

        def samples(families: object) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
            return {
                (s.name, tuple(sorted(s.labels.items())), s.value)
                for fam in families  # type: ignore[attr-defined]
                for s in fam.samples
                if not s.name.startswith(("process_", "python_gc_"))
            }

        body = metrics.exposition()[0].decode()
        assert samples(text_string_to_metric_families(body)) == samples(registry.collect())

    def test_no_created_series(self, metrics: Metrics) -> None:
        """The body has no `*_created` series (prometheus_client adds one per counter child), while
        the counters themselves are there; other registries keep theirs."""
        metrics.lines("cloud", 3)
        body = metrics.exposition()[0].decode()
        assert "_created" not in body
        assert 'watcher_source_lines_total{source="cloud"} 3.0' in body
        assert "process_cpu_seconds_total" in body
        other = CollectorRegistry()
        Counter("other", "x", registry=other).inc()
        assert b"other_created" in generate_latest(other)

    def test_body_parses_as_text_format(self, metrics: Metrics) -> None:
        """exposition() gives the 0.0.4 text format that the Prometheus parser reads back."""
        metrics.add_incident("P1-a", 900)
        body, content_type = metrics.exposition()
        assert content_type.startswith("text/plain; version=0.0.4")
        names = {fam.name for fam in text_string_to_metric_families(body.decode())}
        assert {"watcher_incident_state", "watcher_source_lines", "watcher_build_info"} <= names

    @pytest.mark.prometheus
    async def test_promtool_finds_nothing(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        """`promtool check metrics` on the served /metrics body reports no finding at all."""
        promtool = require_binary("promtool")
        metrics.add_incident("P1-a", 900)
        metrics.incident("P1-a", state="resolved", clean_streak=900, resolved_at=1_795_000_900)
        metrics.lines("cloud", 10)
        metrics.error("cloud", "panic")
        metrics.handled("P1-a", 1_795_000_000, 1_795_000_100, Handling(2, 1, {"no_hypothesis": 1}))
        metrics.impact("P1-a", orgs=3, affected=1, untracked=0)
        metrics.resolved_in(900)
        served = running(FakeControl(), metrics=metrics)
        async with (
            served as server,
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{server.port}/metrics") as resp,
        ):
            assert resp.status == 200
            body = await resp.read()
        proc = await asyncio.create_subprocess_exec(
            promtool, "check", "metrics", stdin=PIPE, stdout=PIPE, stderr=PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(body), timeout=30)
        assert (proc.returncode, out, err) == (0, b"", b"")
