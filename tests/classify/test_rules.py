"""Rules: which rule a line matches, ignore rules winning, and the prefilters' superset promise."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.classify.lines import LineParser, ParsedLine
from watcher.classify.rules import RuleSet, SourceRules, int_range, number_pattern
from watcher.config import RuleConfig


def rule(name: str, **kw: Any) -> RuleConfig:
    return RuleConfig(name=name, **kw)


def rules(*errors: RuleConfig, ignore: tuple[RuleConfig, ...] = ()) -> SourceRules:
    return RuleSet.compile(errors, ignore).for_source("src")


def match(source_rules: SourceRules, text: str, fmt: str = "auto") -> tuple[str | None, str | None]:
    return source_rules.match(LineParser(fmt).parse(text))  # type: ignore[arg-type]


class TestRegexRules:
    def test_anchor_after_timestamp(self) -> None:
        """`^` anchors at the message start, after a stripped leading timestamp."""
        r = rules(rule("panic", regex=r"^panic: "))
        assert match(r, "2026-11-27T14:05:00Z panic: boom") == ("panic", None)
        assert match(r, "2026-11-27T14:05:00Z not a panic: boom") == (None, None)

    def test_json_message_is_whole_text(self) -> None:
        """For a JSON line the message is the whole JSON text."""
        r = rules(rule("oom", regex="OOMKilled"))
        assert match(r, '{"msg":"container OOMKilled"}') == ("oom", None)

    def test_first_rule_wins(self) -> None:
        """Rules are tried in config order."""
        r = rules(rule("a", regex="x"), rule("b", regex="x"))
        assert match(r, "x") == ("a", None)


class TestIgnore:
    def test_ignore_wins(self) -> None:
        """A line an ignore rule matches is never an error, and the ignore rule is named."""
        r = rules(rule("level", field="level", values=["error"]), ignore=(rule("z", regex=r"\berrors?=0\b"),))
        assert match(r, "level=error errors=0") == (None, "z")

    def test_ignore_alone_is_nothing(self) -> None:
        """An ignore match without an error match is not reported."""
        r = rules(rule("level", field="level", values=["error"]), ignore=(rule("z", regex="errors=0"),))
        assert match(r, "level=info errors=0") == (None, None)


class TestFieldValues:
    def test_json_case_insensitive(self) -> None:
        """values match JSON strings, case-insensitively by default."""
        r = rules(rule("level", field="level", values=["error", "fatal"]))
        assert match(r, '{"level":"ERROR"}') == ("level", None)
        assert match(r, '{"level":"errors"}') == (None, None)

    def test_case_sensitive(self) -> None:
        """case_sensitive = true compares exactly."""
        r = rules(rule("level", field="level", values=["error"], case_sensitive=True))
        assert match(r, '{"level":"ERROR"}') == (None, None)
        assert match(r, '{"level":"error"}') == ("level", None)

    def test_logfmt(self) -> None:
        """values match logfmt pairs, quoted or not."""
        r = rules(rule("level", field="level", values=["error"]))
        assert match(r, "ts=2026-11-27T14:05:00Z level=error msg=x") == ("level", None)
        assert match(r, 'level="error"') == ("level", None)

    def test_journald_field(self) -> None:
        """values match journald fields."""
        r = rules(rule("unit", field="_SYSTEMD_UNIT", values=["gw.service"]))
        text = '{"__REALTIME_TIMESTAMP":"1","_SYSTEMD_UNIT":"gw.service","MESSAGE":"x"}'
        assert match(r, text, "journal") == ("unit", None)

    def test_numbers_are_not_values(self) -> None:
        """values compare strings; a JSON number needs min/max."""
        r = rules(rule("code", field="code", values=["42"]))
        assert match(r, '{"code":42}') == (None, None)

    def test_dotted_name_walks_nested_objects(self) -> None:
        """`http.status` walks nested JSON, and a literal dotted key is found too."""
        r = rules(rule("s", field="http.method", values=["POST"]))
        assert match(r, '{"http":{"method":"post"}}') == ("s", None)
        assert match(r, "http.method=POST") == ("s", None)
        assert match(r, '{"http":"POST"}') == (None, None)


class TestFieldRanges:
    @pytest.mark.parametrize(
        ("status", "hit"), [(500, True), (599, True), (503.5, True), (499, False), (600, False)]
    )
    def test_5xx(self, status: float, hit: bool) -> None:
        """min/max are inclusive; JSON numbers compare as numbers."""
        r = rules(rule("5xx", field="status", min=500, max=599))
        assert (match(r, f'{{"status":{status}}}')[0] == "5xx") is hit

    def test_priority_string(self) -> None:
        """journald's PRIORITY is a string such as "3"; max = 3 matches 0..3."""
        r = rules(rule("prio", field="PRIORITY", max=3))
        record = '{{"__REALTIME_TIMESTAMP":"1","PRIORITY":"{}","MESSAGE":"x"}}'
        assert match(r, record.format(3), "journal") == ("prio", None)
        assert match(r, record.format(2), "journal") == ("prio", None)
        assert match(r, record.format(4), "journal") == (None, None)

    @pytest.mark.parametrize("value", ['"abc"', "true", "null", '"3 "', "[3]"])
    def test_not_numbers(self, value: str) -> None:
        """Non-numeric strings, bools, null and lists never match a range."""
        assert match(rules(rule("r", field="x", max=3)), f'{{"x":{value}}}') == (None, None)

    def test_values_or_range(self) -> None:
        """With both, either a listed string or a number in range matches."""
        r = rules(rule("r", field="p", values=["err"], max=3))
        assert match(r, "p=err")[0] == "r"
        assert match(r, "p=1")[0] == "r"
        assert match(r, "p=9")[0] is None


class TestForSource:
    def test_globs(self) -> None:
        """A rule applies to the sources its globs match; so does an ignore rule."""
        rs = RuleSet.compile(
            [rule("gw-only", regex="x", sources=["gw/*"]), rule("all", regex="x")],
            [rule("quiet", regex="y", sources=["cloud"])],
        )
        assert rs.for_source("gw/berlin").rule_names == ("gw-only", "all")
        assert rs.for_source("cloud").rule_names == ("all",)
        assert rs.for_source("cloud").ignore_names == ("quiet",)
        assert rs.for_source("gw/berlin").ignore_names == ()

    def test_selected(self) -> None:
        """A source's `rules = [...]` restricts it to those rules."""
        rs = RuleSet.compile([rule("a", regex="x"), rule("b", regex="x")], [])
        assert rs.for_source("s", ["b"]).rule_names == ("b",)
        assert rs.rule_names == ("a", "b")


class TestIntRange:
    @given(lo=st.integers(0, 5000), span=st.integers(0, 5000) | st.none(), n=st.integers(0, 20000))
    def test_exact(self, lo: int, span: int | None, n: int) -> None:
        """int_range matches exactly the integers lo..hi."""
        hi = None if span is None else lo + span
        pattern = re.compile("|".join(int_range(lo, hi)))
        assert (pattern.fullmatch(str(n)) is not None) == (n >= lo and (hi is None or n <= hi))

    def test_examples(self) -> None:
        """The classic shapes."""
        assert int_range(500, 599) == ["5[0-9][0-9]{1}"]
        assert int_range(0, 3) == ["[0-3]"]


_BOUND = st.none() | st.integers(-1000, 1000) | st.floats(-1000, 1000)
_NUMBER = st.builds(
    lambda sign, zeros, digits, frac, exp: f"{sign}{zeros}{digits}{frac}{exp}",
    st.sampled_from(["", "-", "+"]),
    st.sampled_from(["", "0", "00"]),
    st.integers(0, 2000),
    st.sampled_from(["", ".0", ".5", ".999"]),
    st.sampled_from(["", "e0", "E+1", "e-2"]),
)


class TestNumberPattern:
    @given(lo=_BOUND, hi=_BOUND, text=_NUMBER)
    def test_superset(self, lo: float | None, hi: float | None, text: str) -> None:
        """Every spelling of a number in lo..hi matches the prefilter."""
        value = float(text)
        if (lo is None or value >= lo) and (hi is None or value <= hi):
            assert re.match(number_pattern(lo, hi), text + ","), text


def _prefilter_lines(r: SourceRules, text: str) -> bool:
    for f in r.prefilters():
        for p in f.line:
            if re.search(p, text, re.M):
                return True
        for p in f.message:
            if re.search(p.replace("^", ""), text):
                return True
    return False


class TestPrefilters:
    @given(
        key=st.sampled_from(["level", "status", "lev\\u0065l", "http.status", "st"]),
        value=st.sampled_from(['"error"', '"ERROR"', "503", '"503"', '"\\u0065rror"', '"x\\/y"', "5.03e2"]),
        shape=st.sampled_from(['{{"{k}":{v}}}', '{{"{k}" : {v}}}', "{k}={v}", '{{"http":{{"{k}":{v}}}}}']),
    )
    def test_superset(self, key: str, value: str, shape: str) -> None:
        """A field rule's prefilter matches every raw line the rule matches."""
        r = rules(
            rule("lvl", field="level", values=["error", "x/y"]),
            rule("5xx", field="http.status", min=500, max=599),
        )
        text = shape.format(k=key, v=value)
        if match(r, text)[0] is not None:
            assert _prefilter_lines(r, text)

    def test_line(self) -> None:
        """A regex rule's prefilter is the regex itself, for the scanner to loosen."""
        (f,) = rules(rule("p", regex="^panic: ")).prefilters()
        assert f.message == ("^panic: ",)
        assert ParsedLine(None, "", {}).fields == {}
