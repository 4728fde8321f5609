"""Fuzz: line framing and classification. Any bytes, any linear rule: every engine agrees, fast."""

from __future__ import annotations

import io
import time

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.budget import budget
from watcher.classify.rules import RuleSet
from watcher.classify.scan import HYPERSCAN
from watcher.classify.stream import StreamScanner, classify_stream
from watcher.config import RuleConfig
from watcher.events import ErrorEvent

pytestmark = pytest.mark.fuzz

ENGINES = ["reference", "python", *(["hyperscan"] if HYPERSCAN else [])]
_PIECES = st.sampled_from(
    [
        b"\n", b"\r\n", b" ", b"\t", b"ERROR", b"error", b"a", b"aaaaaaaa", b"!", b"\xff", b"\xc3",
        b"\xc3\xa9",
        b"\x1b[2J", b'{"level":"error","msg":"', b'"}', b"2026-11-27T14:05:00Z ", b"ts=2026-11-27T14:05:01Z ",
        b"level=error ", b"panic: ", b"Traceback (most recent call last):", b'  File "a.py", line 1',
        b'{"__REALTIME_TIMESTAMP":"1795788305000000","PRIORITY":"3","MESSAGE":"', b"\\u0000", b"\\ud800",
        b"password=hunter2 ", b"status=503 ", b'"status":"503"', b"\x00",
    ]
)  # fmt: skip
_DATA = st.lists(_PIECES | st.binary(max_size=8), max_size=60).map(b"".join)
_REGEXES = st.sampled_from(
    [
        "(a+)+$", "(x+x+)+y", "(a|aa)*c", "^(panic: |Traceback)", r"\bERROR\b", "(?i)error", r"\w+\s*=\s*\d+",
        "[\\x00-\\x1f]", "caf\u00e9", r"\u00e9", "a{,3}!\\Z", "^$", ".*", "(?s).", "^\\s+File",
    ]
)  # fmt: skip


@st.composite
def rule_sets(draw: st.DrawFn) -> RuleSet:
    rules = [RuleConfig(name=f"r{i}", regex=draw(_REGEXES)) for i in range(draw(st.integers(0, 3)))]
    rules.append(RuleConfig(name="level", field="level", values=["error", "FATAL"]))
    if draw(st.booleans()):
        rules.append(RuleConfig(name="status", field="status", min=500, max=599))
    ignore = [RuleConfig(name="ig", regex=draw(_REGEXES))] if draw(st.booleans()) else []
    return RuleSet.compile(rules, ignore)


def run(
    data: bytes, rules: RuleSet, engine: str, chunk: int, max_line: int
) -> tuple[object, list[ErrorEvent]]:
    events: list[ErrorEvent] = []
    stats = classify_stream(
        io.BytesIO(data),
        "f",
        rules.for_source("f"),
        on_error=events.append,
        engine=engine,  # type: ignore[arg-type]
        chunk_size=chunk,
        max_line_bytes=max_line,
    )
    return stats, events


class TestClassifyFuzz:
    @budget(600)
    @given(_DATA, rule_sets(), st.integers(1, 70) | st.just(1 << 16), st.integers(8, 200))
    @example(
        b"a" * 34 + b"!\n", RuleSet.compile([RuleConfig(name="n", regex="(a+)+$")], []), 1 << 16, 1 << 10
    )
    def test_engines_agree_on_any_bytes(self, data: bytes, rules: RuleSet, chunk: int, max_line: int) -> None:
        """Reference, python and hyperscan give the same counts and events, and none takes long."""
        started = time.perf_counter()
        expected = run(data, rules, "reference", chunk, max_line)
        for engine in ENGINES[1:]:
            assert run(data, rules, engine, chunk, max_line) == expected, engine
        assert time.perf_counter() - started < 10

    @budget(200)
    @given(st.lists(_DATA, max_size=6), rule_sets())
    def test_a_live_source_fed_line_by_line(self, chunks: list[bytes], rules: RuleSet) -> None:
        """The daemon's scanner takes whole lines in pieces of any size without an exception."""
        scanner = StreamScanner("f", rules.for_source("f"), max_line_bytes=256)
        for chunk in chunks:
            whole = chunk[: chunk.rfind(b"\n") + 1]
            for event in scanner.feed(whole).errors:
                assert len(event.message) <= 256 * 4 + 64

    @budget(20)
    @given(st.sampled_from([b"a", b"a.", b"xy", b'{"', b" \t", b"\xc3\xa9", b"eyJ-", b"token."]), rule_sets())
    def test_a_megabyte_line_of_one_shape_is_linear(self, shape: bytes, rules: RuleSet) -> None:
        """A 1 MB line of a repeated shape, under every engine: seconds at most."""
        data = b"2026-11-27T14:05:00Z " + shape * (1_000_000 // len(shape)) + b"\n"
        for engine in ENGINES:
            started = time.perf_counter()
            run(data, rules, engine, 1 << 20, 2 << 20)
            assert time.perf_counter() - started < 5, engine
