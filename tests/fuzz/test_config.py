"""Fuzz: config parsing. Whatever the TOML or the environment holds: Settings, or ConfigError lines."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.budget import budget
from watcher import config
from watcher.errors import ConfigError
from watcher.times import DAY, parse_duration

pytestmark = pytest.mark.fuzz

_SCALARS = (
    st.text(max_size=12)
    | st.sampled_from(["15", "15m", "0s", "inf", "nan", "1" + "0" * 400 + "s", "2h", "-1s", "(a+)+$", "x"])
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
)
_KEYS: dict[str, list[str]] = {
    "resolution": ["window", "blind_after"],
    "notify": [
        "heartbeat",
        "send_interval",
        "retry_max",
        "retry_after_max",
        "reset_every",
        "routes",
        "format",
    ],
    "http": ["listen"],
}
_SOURCE_KEYS = [
    "name",
    "kind",
    "hosts",
    "user",
    "port",
    "known_hosts",
    "path",
    "format",
    "keepalive_interval",
]
_RULE_KEYS = ["name", "regex", "field", "values", "min", "max", "sources", "case_sensitive"]
_KINDS = st.sampled_from(["docker", "journal", "file", "ftp"]) | st.text(max_size=5)


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    """A config as a TOML document would be after parsing: real keys, hostile values, typos."""
    data: dict[str, Any] = {}
    for section, keys in _KEYS.items():
        if draw(st.booleans()):
            data[section] = {k: draw(_VALUES) for k in draw(st.lists(st.sampled_from(keys), max_size=3))}
    if draw(st.booleans()):
        data["max_line_bytes"] = draw(st.integers() | _SCALARS)
    sources = []
    for _ in range(draw(st.integers(0, 2))):
        src = {k: draw(_VALUES) for k in draw(st.lists(st.sampled_from(_SOURCE_KEYS), max_size=4))}
        src["kind"] = draw(_KINDS)
        sources.append(src)
    rules = [
        {k: draw(_VALUES) for k in draw(st.lists(st.sampled_from(_RULE_KEYS), max_size=4))}
        for _ in range(draw(st.integers(0, 2)))
    ]
    if sources:
        data["sources"] = sources
    if rules:
        data["rules"] = rules
    if draw(st.booleans()):
        data[draw(st.text(max_size=6))] = draw(_VALUES)
    return data


def loads_or_refuses(data: dict[str, Any]) -> config.Settings | None:
    try:
        return config.load(None, overrides=data)
    except ConfigError as exc:
        assert exc.problems, data
        for problem in exc.problems:
            assert problem and "\n" not in problem and "Traceback" not in problem, problem
        return None


class TestConfigFuzz:
    @budget(400)
    @given(configs())
    @example({"resolution": {"window": math.inf}})  # case 1: crash loop
    @example({"resolution": {"window": "1" + "0" * 400 + "s"}})
    @example({"notify": {"heartbeat": "0s"}})
    @example({"resolution": {"window": 15}})
    @example({"rules": [{"name": "r", "regex": "(a+)+$"}]})  # case 4: linear, accepted
    @example({"rules": [{"name": "r", "regex": "(a)\\1"}]})
    @example({"sources": [{"name": "gw", "kind": "journal", "hosts": ["h"], "known_hosts": "/k"}]})  # case 10
    @example({"sources": [{"name": "x", "kind": "ftp"}]})
    @example({"rules": [{"name": "r", "field": "x", "min": math.nan}]})
    @example({"\n": []})  # found here: a quoted TOML key with a newline made a two-line problem
    @example({"rules": [{"name": []}]})  # found here: the raw cross-checks met an unhashable name
    def test_settings_or_one_line_per_problem(self, data: dict[str, Any]) -> None:
        """Never an exception but ConfigError; every duration that loads is finite and in range."""
        settings = loads_or_refuses(data)
        if settings is not None:
            assert 1 <= settings.resolution.window <= DAY
            assert 60 <= settings.notify.heartbeat <= DAY
            for cfg in settings.rules:
                assert cfg.min is None or math.isfinite(cfg.min)

    @budget(300)
    @given(st.text(max_size=200))
    @example("[resolution]\nwindow = inf\n")
    @example("[[sources]]\nname = 'a'\nkind = 'journal'\nhosts = ['h']\nknown_hosts = '/k'\n")
    def test_toml_text(self, text: str) -> None:
        """Any file: a TOML error is one line naming the file."""
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "c.toml"
            path.write_text(text)
            try:
                config.load(path)
            except ConfigError as exc:
                assert all(p and "\n" not in p for p in exc.problems)

    @budget(300)
    @given(
        st.sampled_from(
            ["WATCHER_SOURCES", "WATCHER_RULES", "WATCHER_RESOLUTION__WINDOW", "WATCHER_NOTIFY__ROUTES"]
        ),
        st.text(max_size=30) | st.sampled_from(["notjson", "[{", "inf", "15", "{}", "[]", "null"]),
    )
    @example("WATCHER_SOURCES", "notjson")  # case 1: exit 70
    def test_environment(self, variable: str, value: str) -> None:
        """A WATCHER_ variable with any value: Settings or ConfigError lines, never another exception."""
        if "\0" in value:
            return  # the environment cannot hold NUL
        old = os.environ.get(variable)
        os.environ[variable] = value
        try:
            loads_or_refuses({})
        finally:
            if old is None:
                del os.environ[variable]
            else:
                os.environ[variable] = old

    @budget(800)
    @given(st.text(max_size=40) | st.from_regex(r"[0-9.]{0,20}(ms|s|m|h|d){0,3}[0-9]{0,5}", fullmatch=True))
    @example("1" + "0" * 400 + "s")
    @example("999999999999d")  # case 1: --since
    @example("15")
    def test_durations(self, text: str) -> None:
        """A duration is finite and within its span, or a ValueError sentence."""
        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            assert str(exc) and "\n" not in str(exc)
        else:
            assert math.isfinite(seconds) and 0 <= seconds <= 366 * DAY
