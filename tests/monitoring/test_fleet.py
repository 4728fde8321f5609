"""One incident proven across two watchers, by the shipped rules on real Prometheus servers.

Two sites (a watcher each, with a file source), a Prometheus per site and a global
Prometheus federating both (tests/monitoring/fleet.py). The incident is opened and
mitigated with --all-sites; the global verdict must follow the resolution rule merged
across sites, and be blind, never resolved, while a site is gone. The dashboards'
queries and the README's are evaluated against the same servers.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.monitoring.fleet import WINDOW, Fleet, fleet
from tests.prometheus import Prometheus
from tests.support import ROOT, wait_for
from watcher.times import parse_time

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

DASHBOARDS = ROOT / "monitoring" / "dashboards"
RANGE_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with fleet(tmp_path_factory.mktemp("fleet")) as running:
        yield running


def fleet_value(prom: Prometheus, rule: str, incident: str) -> float | None:
    return prom.value(rule, incident=incident)


def cli_ok(sites: Fleet, *args: str) -> Any:
    res = sites.cli(*args)
    assert res.exit_code == 0, res.output
    return res


class TestGlobalVerdict:
    def test_errors_at_one_site_hold_the_fleet_and_both_clean_resolve_it(self, sites: Fleet) -> None:
        """Opened and mitigated at both sites at once. While site b keeps logging errors, site a
        resolves on its own but the global verdict stays unresolved (and not blind); once b is
        clean, the fleet resolves at max(streak starts) + window, and the alert fires."""
        a, b, glob = sites.watchers["a"], sites.watchers["b"], sites.global_
        cli_ok(
            sites,
            "incident",
            "open",
            "P1-fleet",
            "--title",
            "streams drop",
            "--window",
            f"{WINDOW}s",
            "--all-sites",
        )
        cli_ok(sites, "incident", "mitigate", "P1-fleet", "--action", "rolled back", "--all-sites")

        def a_resolved_globally_while_b_errs() -> bool:
            b.error()
            return (
                glob.value('watcher_incident_state{state="resolved"} == 1', incident="P1-fleet", site="a")
                == 1
            )

        wait_for(
            "site a resolved, as the global Prometheus sees it",
            a_resolved_globally_while_b_errs,
            40,
            every=0.3,
        )
        assert fleet_value(glob, "watcher:incident_fleet_resolved", "P1-fleet") == 0
        assert fleet_value(glob, "watcher:incident_fleet_blind", "P1-fleet") == 0
        streak = fleet_value(glob, "watcher:incident_fleet_clean_streak_seconds", "P1-fleet")
        assert streak is not None and streak < WINDOW
        last_error = b.error()

        wait_for(
            "the fleet to resolve",
            lambda: fleet_value(glob, "watcher:incident_fleet_resolved", "P1-fleet") == 1,
            40,
            every=0.3,
        )
        starts = [parse_time(w.incident("P1-fleet")["streak_start"]) for w in (a, b)]
        assert starts[1] == pytest.approx(last_error, abs=0.002)  # b's streak starts at its last error
        resolved_at = fleet_value(glob, "watcher:incident_fleet_resolved_timestamp_seconds", "P1-fleet")
        assert resolved_at == pytest.approx(max(starts) + WINDOW, abs=0.002)
        wait_for("the GloballyResolved alert", lambda: _firing(glob, "P1-fleet"), 20)

        merged = json.loads(cli_ok(sites, "status", "--all-sites", "--json").stdout)
        (inc,) = [i for i in merged["incidents"] if i["id"] == "P1-fleet"]
        assert inc["state"] == "resolved"
        assert parse_time(inc["resolved_at"]) == pytest.approx(resolved_at, abs=0.002)

    def test_dashboards_return_data(self, sites: Fleet) -> None:
        """Every query of both dashboards parses and returns data: the site dashboard against a
        site Prometheus, the fleet dashboard against the global one."""
        cli_ok(sites, "incident", "open", "P1-dash", "--title", "t", "--window", "2s", "--all-sites")
        cli_ok(sites, "incident", "mitigate", "P1-dash", "--action", "x", "--all-sites")
        for name, prom in (("watcher.json", sites.sites["a"]), ("watcher-fleet.json", sites.global_)):
            for title, expr in dashboard_queries(DASHBOARDS / name):
                wait_for(f"{name} {title!r}: {expr}", partial(_answers, prom, expr), 20, ignore=())

    def test_readme_queries(self, sites: Fleet) -> None:
        """The README's example queries parse; progress never reads above 1 (a resolved incident's
        streak goes on growing) and no source's lag is absurd (a 0 watermark would be 56 years)."""
        prom = sites.sites["a"]
        cli_ok(sites, "incident", "open", "P1-readme", "--title", "t", "--window", "2s", "--all-sites")
        cli_ok(sites, "incident", "mitigate", "P1-readme", "--action", "x", "--all-sites")
        wait_for(
            "a resolved streak to outgrow its window twice",
            lambda: (prom.value("watcher_incident_clean_streak_seconds", incident="P1-readme") or 0) > 4,
            30,
        )
        queries = readme_queries()
        assert len(queries) >= 5
        for expr in queries:
            samples = prom.query(expr)
            if "watcher_incident_window_seconds" in expr:
                assert samples and all(float(s["value"][1]) <= 1 for s in samples), (expr, samples)
            if "time() - watcher_source_watermark" in expr:
                assert samples and all(float(s["value"][1]) < 60 for s in samples), (expr, samples)

    def test_a_stopped_site_makes_it_blind_never_resolved(self, sites: Fleet) -> None:
        """Site b's watcher stops right after the mitigation: the global verdict goes blind and
        stays unresolved after site a alone has proven the window. (Last: site b stays down.)"""
        a, b, glob = sites.watchers["a"], sites.watchers["b"], sites.global_
        cli_ok(
            sites,
            "incident",
            "open",
            "P1-dark",
            "--title",
            "site b dark",
            "--window",
            f"{WINDOW}s",
            "--all-sites",
        )
        cli_ok(sites, "incident", "mitigate", "P1-dark", "--action", "restarted", "--all-sites")
        b.stop()
        wait_for("the fleet to go blind", lambda: glob.value("watcher:fleet_blind") == 1, 30, every=0.3)
        wait_for(
            "site a to resolve P1-dark alone",
            lambda: a.incident("P1-dark")["state"] == "resolved",
            30,
            every=0.3,
        )
        deadline = time.monotonic() + 3  # a's resolution reaches the global server meanwhile
        while time.monotonic() < deadline:
            assert fleet_value(glob, "watcher:incident_fleet_resolved", "P1-dark") == 0
            assert fleet_value(glob, "watcher:incident_fleet_blind", "P1-dark") == 1
            time.sleep(0.2)
        assert glob.value('watcher_incident_state{state="resolved"} == 1', incident="P1-dark", site="a") == 1
        assert not _firing(glob, "P1-dark")
        res = sites.cli("status", "--all-sites")
        assert res.exit_code == 1
        assert "P1-dark BLIND" in res.stdout and "site b UNREACHABLE" in res.stdout


def _answers(prom: Prometheus, expr: str) -> bool:
    return bool(prom.query(expr))


def _firing(prom: Prometheus, incident: str) -> bool:
    return any(
        a["labels"].get("alertname") == "WatcherIncidentGloballyResolved"
        and a["labels"].get("incident") == incident
        and a["state"] == "firing"
        for a in prom.alerts()
    )


def dashboard_queries(path: Path) -> list[tuple[str, str]]:
    """(panel title, expr) of every target, with Grafana's range variables set; the dashboard's
    structure checked on the way (ids unique, each panel placed on the 24-column grid, the
    datasource variable used, refIds unique per panel)."""
    doc = json.loads(path.read_text())
    assert [v["name"] for v in doc["templating"]["list"]] == ["datasource"]
    panels = list(_walk(doc["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
    out = []
    for p in panels:
        grid = p["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, p["title"]
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            expr = t["expr"]
            for var, value in RANGE_VARIABLES.items():
                expr = expr.replace(var, value)
            assert "$" not in expr, f"{p['title']}: unknown variable in {expr}"
            out.append((p["title"], expr))
    return out


def _walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from _walk(p.get("panels", []))


def readme_queries() -> list[str]:
    """The queries of the README's ```promql block under "## Metrics" (one per line, # comments)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("\n## Metrics") :]
    block = re.search(r"```promql\n(.*?)```", section, re.S)
    assert block is not None, "README: no ```promql block under ## Metrics"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]
