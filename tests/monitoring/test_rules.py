"""The mixin's rules pass `promtool check rules` and their unit tests (`promtool test rules`), and
every rule has a test; the example Prometheus configs pass `promtool check config`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_binary
from tests.monitoring.fleet import FEDERATE_MATCH
from tests.support import ROOT

pytestmark = pytest.mark.prometheus

MONITORING = ROOT / "monitoring"
RULE_FILES = sorted((MONITORING / "rules").glob("*.yml"))
TESTS = sorted((MONITORING / "tests").glob("*_test.yml"))


def promtool(*args: str | Path, cwd: Path = ROOT) -> str:
    proc = subprocess.run(
        [require_binary("promtool"), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_rules_check() -> None:
    """`promtool check rules` accepts every rule file."""
    assert RULE_FILES
    out = promtool("check", "rules", *RULE_FILES)
    assert out.count("SUCCESS") == len(RULE_FILES)


@pytest.mark.parametrize("test_file", TESTS, ids=lambda p: p.name)
def test_rules_unit_tests(test_file: Path) -> None:
    """`promtool test rules` passes: each recording rule's values and each alert's firing."""
    assert "SUCCESS" in promtool("test", "rules", test_file)


def test_every_rule_has_a_test() -> None:
    """Each recording rule is an `expr:` of some promql_expr_test and each alert an `alertname:`
    of some alert_rule_test (the expected sites are data, not logic)."""
    tests = "\n".join(p.read_text() for p in TESTS)
    tested_exprs = set(re.findall(r"expr: ([\w:]+)", tests))
    tested_alerts = set(re.findall(r"alertname: (\w+)", tests))
    untested = []
    for path in RULE_FILES:
        text = path.read_text()
        records = set(re.findall(r"^\s*- record: ([\w:]+)", text, re.M)) - {"watcher:expected_site"}
        alerts = set(re.findall(r"^\s*- alert: (\w+)", text, re.M))
        untested += sorted(records - tested_exprs) + sorted(alerts - tested_alerts)
    assert untested == []


def test_example_configs() -> None:
    """The topology's example configs (docs/monitoring.md) load, rule files included, and the
    global one federates what the fleet test federates (tests/monitoring/fleet.py)."""
    examples = sorted((MONITORING / "examples").glob("*.yml"))
    assert len(examples) >= 2
    for config in examples:
        promtool("check", "config", config.name, cwd=config.parent)
    assert f"- '{FEDERATE_MATCH}'" in (MONITORING / "examples" / "global.prometheus.yml").read_text()
