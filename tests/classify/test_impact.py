"""Whom an error record hit: a source's `impact_field` (JSON, logfmt, journald) or `impact_regex` group."""

from __future__ import annotations

import pytest

from watcher.classify.impact import MAX_VALUE, ImpactKey
from watcher.classify.rules import RuleSet
from watcher.classify.stream import StreamScanner
from watcher.config import RuleConfig

RULES = [
    RuleConfig(name="level", field="level", values=["error"]),
    RuleConfig(name="text", regex="ERROR"),
]


def orgs(data: bytes, key: ImpactKey, engine_hint: str = "") -> list[str | None]:
    """The org of each error record the scanner finds in `data`."""
    rules = RuleSet.compile(RULES, []).for_source("edge")
    kw: dict[str, str] = {"timestamp_field": engine_hint} if engine_hint else {}
    sc = StreamScanner("edge", rules, max_line_bytes=1 << 20, impact=key, **kw)  # type: ignore[arg-type]
    return [e.org for e in sc.feed(data).errors]


class TestImpactKey:
    @pytest.mark.parametrize("engine_hint", ["", "ts"], ids=["fast", "reference"])
    def test_json_field(self, engine_hint: str) -> None:
        """A JSON field names the org; a number is an id too; a record without it names none."""
        data = (
            b'{"ts":"2026-12-03T14:02:00Z","level":"error","org_id":"org-a","msg":"sfu"}\n'
            b'{"ts":"2026-12-03T14:02:01Z","level":"info","org_id":"org-b"}\n'
            b'{"ts":"2026-12-03T14:02:02Z","level":"error","org_id":42}\n'
            b'{"ts":"2026-12-03T14:02:03Z","level":"error"}\n'
            b'{"ts":"2026-12-03T14:02:04Z","level":"error","org_id":{"nested":1}}\n'
        )
        assert orgs(data, ImpactKey("org_id"), engine_hint) == ["org-a", "42", None, None]

    def test_nested_json_field(self) -> None:
        """A dotted name reaches into nested JSON."""
        data = b'{"ts":"2026-12-03T14:02:00Z","level":"error","tenant":{"org":"org-c"}}\n'
        assert orgs(data, ImpactKey("tenant.org")) == ["org-c"]

    def test_logfmt_field(self) -> None:
        """logfmt works the same way."""
        data = b'ts=2026-12-03T14:02:00Z level=error org_id=org-d msg="keyframe lost"\n'
        assert orgs(data, ImpactKey("org_id")) == ["org-d"]

    def test_regex_group(self) -> None:
        """Text logs: the one group of impact_regex over the message."""
        data = b"2026-12-03T14:02:00Z ERROR org=org-e camera=7 lost\n2026-12-03T14:02:01Z ERROR no org\n"
        assert orgs(data, ImpactKey(regex=r"org=(\S+)")) == ["org-e", None]

    def test_a_long_value_is_cut_to_an_id(self) -> None:
        """An attacker-sized value is an id of MAX_VALUE characters, not a message."""
        data = b'{"ts":"2026-12-03T14:02:00Z","level":"error","org_id":"' + b"x" * 5000 + b'"}\n'
        assert [len(o or "") for o in orgs(data, ImpactKey("org_id"))] == [MAX_VALUE]

    def test_none_configured(self) -> None:
        """No impact_field, no impact_regex: no key at all."""
        assert ImpactKey.of(None, None) is None
