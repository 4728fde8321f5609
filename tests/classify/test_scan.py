"""The fast path: prefilter adaptation, and identical results to the reference engine."""

from __future__ import annotations

import io
import itertools
import os
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import SHIPPED_CONFIG
from watcher.classify.context import Context, exact_pattern
from watcher.classify.grouping import ClassifyStats, continues_alone
from watcher.classify.lines import LineParser
from watcher.classify.readers import bad_lines, blank_lines
from watcher.classify.rules import Prefilter, RuleSet, SourceRules
from watcher.classify.scan import HYPERSCAN, Finder, adapt
from watcher.classify.stream import classify_stream
from watcher.config import RuleConfig, load
from watcher.config.base import Format
from watcher.events import ErrorEvent
from watcher.patterns import compile_linear

FAST = ["python", *(["hyperscan"] if HYPERSCAN else [])]
_SETTINGS = load(SHIPPED_CONFIG)
DEFAULT = RuleSet.compile(_SETTINGS.rules, _SETTINGS.ignore).for_source("f")
EXTRA = RuleSet.compile(
    [
        RuleConfig(name="at-end", regex=r"\bboom!$"),
        *_SETTINGS.rules,
        RuleConfig(name="caseless", regex=r"(?i)fatal\s+err|oomkill"),
        RuleConfig(name="words", regex=r"\bexit\b status \d+$"),
        RuleConfig(name="quant", regex=r"^xa{,2}b\Z"),
        RuleConfig(name="ahead", regex=r"boom!"),
        RuleConfig(name="escapes", regex=r"\u00e9t\U000000e9|x{,1}z\Z"),
        RuleConfig(name="unicode", regex="caf\u00e9|\u00c5"),
        RuleConfig(name="cls", regex=r"[\s\d]{3}x|[^a-z\n]K"),
        RuleConfig(name="method", field="http.method", values=["POST", "x/y"], case_sensitive=True),
        RuleConfig(name="slow", field="dur_ms", min=1000.5),
        RuleConfig(name="neg", field="delta", max=-2),
    ],
    _SETTINGS.ignore,
).for_source("f")
UNADAPTABLE = (Prefilter("neg-look", message=(r"(?<!x)boom",)),)
"""Refused in a rule (not linear); given to a Finder directly, neither engine can take it."""


class TestAdapt:
    def test_anchors_dropped(self) -> None:
        """Message anchors are dropped: the message may follow a timestamp or sit in JSON."""
        a = adapt(r"^(panic: |x)$")
        assert a is not None and a.python == "(panic: |x)"

    def test_anchored_line_patterns_kept(self) -> None:
        """Patterns written for the raw line keep their anchors."""
        a = adapt(r"(?:^|[ \t])k=", anchored=True)
        assert a is not None and a.python == r"(?:^|[ \t])k="

    def test_classes_and_escapes_untouched(self) -> None:
        """`^` in a class and escaped anchors stay."""
        a = adapt(r"[^^]\^\$[$]")
        assert a is not None and a.python == r"[^^]\^\$[$]"

    def test_global_flags_become_scoped(self) -> None:
        """A leading `(?i)` becomes `(?i:...)`, so patterns can be combined."""
        a = adapt("(?i)^err")
        assert a is not None and a.python == "(?i:err)"

    def test_hyperscan_dialect(self) -> None:
        """For hyperscan: \\b dropped, \\s widened, {,n} spelled out, extra catch-alls."""
        a = adapt(r"(?i)\ba\s{,2}b")
        assert a is not None and a.hyperscan == (r"(?i:a[\s\x1c-\x1f]{0,2}b)", "[\u0130\u0131\u017f\u212a]")
        b = adapt(r"\d+x")
        assert b is not None and b.hyperscan == (r"\d+x", r"[^\x00-\x7f]")

    def test_python_only(self) -> None:
        """Escapes and flags hyperscan does not know leave the pattern to `re`."""
        for pattern in [r"\u00e9", "(?i)\u00e9", "[x[:a:]]"]:
            a = adapt(pattern)
            assert a is not None and a.hyperscan is None, pattern


class TestHelpers:
    def test_bad_lines(self) -> None:
        """bad_lines finds each line that is not UTF-8."""
        buf = b"ok\n\xff\nok\xc3\xa9\nx\xc3\n"
        assert bad_lines(buf, 0, len(buf)) == [3, 10]

    def test_blank_lines(self) -> None:
        """blank_lines keeps offsets: bad lines become spaces."""
        assert blank_lines(b"a\n\xff\xfe\nb\n", [2], 7) == bytearray(b"a\n  \nb\n")

    def test_linear_search_resumes_at_the_next_line(self) -> None:
        """A match running into the next line does not hide that line's own match."""
        assert list(compile_linear("x[^y]*z", multiline=True).starts(b"x\nxz\n", 0, 5)) == [0, 2]

    def test_linear_offsets_in_bytes(self) -> None:
        """Match starts are byte offsets even after multi-byte characters."""
        buf = "\u00e9\u00e9\nb\n".encode()
        assert list(compile_linear("b", multiline=True).starts(buf, 0, len(buf))) == [5]

    def test_finder_every_line(self) -> None:
        """A prefilter neither hyperscan nor RE2 can take makes every line a candidate."""
        assert Finder(UNADAPTABLE, "auto", HYPERSCAN).every_line


# ---- identical results, on generated logs ----------------------------------------------

_TS = st.sampled_from(
    [
        "",
        "2026-11-27T14:05:00.123456789Z ",
        "2026-11-27 14:05:00,123 ",
        "2026-11-27T15:05:00+01:00",
        "2026-11-27T25:61:60.5+0130 ",
        "2026-11-27 x ",
    ]
)
_WORD = st.sampled_from(
    [
        "ok", "ERROR: x", "ERROR", "FATAL boom", "panic: nil", "fatal error: y", "fatal  ERR",
        'Exception in thread "main" x', "OOMKilled", "out of memory", "planned maintenance",
        "errors=0", "exit status 2", "xab", "xaab", "abab", "boom!", "caf\u00e9", "\u00c5",
        "\u212a", "\u0130", "OOM\u212aILL", "1 2x", "12 x", "\x1cx", "FATAL\x1cerr",
    ]
)  # fmt: skip
_CONT = st.sampled_from(
    [
        "", "   ", '  File "a.py", line 1', "\tat X.y(X.java:1)", "Caused by: e", "\t... 3 more",
        "goroutine 1 [running]:", "main.(*S).h(0xc0)", "\t/a.go:1 +0x1d", "ValueError: v",
        "Traceback (most recent call last):", "[signal SIGSEGV]", "created by main.main",
        "During handling of the above exception, another:", "\u3000", "\u00a0x", "\r",
    ]
)  # fmt: skip
_VALUE = st.sampled_from(
    [
        '"error"',
        '"ERROR"',
        '"cr\u0130t\u0131cal"',
        '"info"',
        "503",
        '"503"',
        "200",
        '"\\u0065rror"',
        "5e2",
        "NaN",
    ]
)
_KEY = st.sampled_from(["level", "status", "PRIORITY", "msg", "lev\\u0065l", "dur_ms", "delta"])
_JSON = st.builds(
    lambda ts, pairs, nested, close: (
        "{" + ",".join([*ts, *(f'"{k}":{v}' for k, v in pairs), *nested]) + close
    ),
    st.sampled_from(
        [
            [],
            ['"ts":"2026-11-27T14:05:01Z"'],
            ['"time":1795788301500'],
            ['"ts":"12:00"'],
            ['"ts":"2026-11-27t14:05:01.25-02:30"'],
            ['"ts": "2026-11-27 14:05:01,5"'],
            ['"time":"2026-11-27T14:05:09Z"', '"ts":"2026-11-27T14:05:01Z"'],
        ]
    ),
    st.lists(st.tuples(_KEY, _VALUE | st.sampled_from(["-3", "1000.5", '"-2.5"'])), max_size=3),
    st.sampled_from([[], ['"http":{"method":"POST"}'], ['"http":{"method":"x\\/y"}']]),
    st.sampled_from(["}", "", ",}"]),
)
_LOGFMT = st.builds(
    lambda ts, pairs: " ".join([*ts, *(f"{k}={v}" for k, v in pairs)]),
    st.sampled_from([[], ["ts=2026-11-27T14:05:02Z"], ['time="2026-11-27 14:05:03"'], ["ts=1795788304"]]),
    st.lists(st.tuples(_KEY, st.sampled_from(["error", '"fatal"', "503", "3", "x", '"a\\"b"'])), max_size=3),
)
_JOURNAL = st.builds(
    lambda t, prio, msg: f'{{"__REALTIME_TIMESTAMP":"{t}","PRIORITY":"{prio}","MESSAGE":{msg}}}',
    st.sampled_from(["1795788305000000", "x"]),
    st.sampled_from(["3", "6"]),
    st.sampled_from(['"ok"', '"  frame"', '""', '"\\tat x"', "[104,105,255]", '"panic: x"', '"a\\nb"']),
)
_TEXT_LINE = st.builds(lambda ts, body: ts + body, _TS, _WORD | _CONT | _JSON | _LOGFMT)
_LINE = st.one_of(_TEXT_LINE, _JSON, _LOGFMT, _CONT, _JOURNAL).map(str.encode) | st.sampled_from(
    [b"\xff\xfe ERROR: bad", b"2026-11-27T14:05:00Z \xc3", b"x" * 300, b"ERROR: " + b"y" * 200 + b"\xe2\x82"]
)


_BLOCKS = [
    [
        "Traceback (most recent call last):",
        '  File "a.py", line 1',
        "    raise ValueError()",
        "ValueError: v",
    ],
    ["ERROR: x", "  frame", "KeyError: 'k'", "", "Traceback (most recent call last):", "  f", "OSError"],
    ["panic: nil", "", "goroutine 1 [running]:", "main.(*S).h(0xc0)", "\t/a.go:1 +0x1d", "exit status 2"],
    ["INFO ok", "goroutine 2 [chan receive]:", "main.main()", "\t/m.go:9 +0x5a", "created by main.main"],
    ['Exception in thread "main" x', "\tat X.y(X.java:1)", "Caused by: e", "\t... 3 more"],
    ["INFO ok", "   ", "ValueError: after blank indent", "main.main()", "Traceback (most recent call last):"],
    ["INFO ok", "goroutine x", "main.main()", "\tmain.go:1", "main.f(0x1)"],
]


@st.composite
def block(draw: st.DrawFn) -> list[str]:
    """A multi-line record, every line or only its head stamped, or none."""
    lines = draw(st.sampled_from(_BLOCKS))
    stamp = draw(st.sampled_from(["none", "head", "all"]))
    ts = "2026-11-27T14:05:00Z "
    return [(ts if stamp == "all" or (stamp == "head" and i == 0) else "") + ln for i, ln in enumerate(lines)]


@st.composite
def logs(draw: st.DrawFn) -> bytes:
    parts = draw(
        st.lists(_LINE.map(lambda ln: [ln]) | block().map(lambda b: [ln.encode() for ln in b]), max_size=25)
    )
    lines = [ln for part in parts for ln in part]
    if draw(st.booleans()):  # a pure journal file, to sniff as one
        lines = [ln.encode() for ln in draw(st.lists(_JOURNAL, min_size=1, max_size=10))] + lines[:3]
    ends = draw(st.lists(st.sampled_from([b"\n", b"\r\n"]), min_size=len(lines), max_size=len(lines)))
    data = b"".join(ln + end for ln, end in zip(lines, ends, strict=True))
    return data[:-1] if data and draw(st.booleans()) else data


def run(
    data: bytes, rules: SourceRules, engine: str, **kw: object
) -> tuple[ClassifyStats, list[ErrorEvent], list[float]]:
    """Stats, error events and every line's own time (what replay collects), in order."""
    events: list[ErrorEvent] = []
    stamps: list[float] = []
    opts: dict[str, Any] = {"engine": engine, **kw}
    stats = classify_stream(
        io.BytesIO(data), "f", rules, on_error=events.append, on_stamps=stamps.extend, **opts
    )
    return stats, events, stamps


class TestSameResults:
    @settings(
        max_examples=int(os.environ.get("SCAN_EXAMPLES", "500")),  # more for a soak run
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        data=logs(),
        rules=st.sampled_from([DEFAULT, EXTRA]),
        fmt=st.sampled_from(["auto", "auto", "auto", "journal", "json", "logfmt", "text"]),
        chunk=st.integers(1, 300) | st.just(1 << 16),
        max_line=st.integers(8, 400),
    )
    def test_engines_agree(
        self, data: bytes, rules: SourceRules, fmt: str, chunk: int, max_line: int
    ) -> None:
        """reference, python and hyperscan give the same stats, the same events (at the same
        times, also for a record whose head has no stamp) and the same stamps, in order."""
        expected = run(data, rules, "reference", fmt=fmt, chunk_size=chunk, max_line_bytes=max_line)
        for engine in FAST:
            got = run(data, rules, engine, fmt=fmt, chunk_size=chunk, max_line_bytes=max_line)
            assert got == expected, engine

    def test_default_chunking_on_a_large_input(self) -> None:
        """Whole 16 MiB-style chunks and the windows that find long lines agree too."""
        block = (
            b"2026-11-27T14:05:00Z INFO a\n"
            b'{"ts":"2026-11-27T14:05:01Z","level":"error"}\n'
            b"ts=2026-11-27T14:05:02Z level=info errors=0\n"
            b"2026-11-27T14:05:03Z Traceback (most recent call last):\n"
            b'  File "a.py", line 1\n'
            b"ValueError: v\n"
        )
        data = block * 20_000 + b"2026-11-27T14:05:04Z ERROR: " + b"z" * 3_000_000 + b"\n" + block * 10
        expected = run(data, DEFAULT, "reference", max_line_bytes=1 << 20)
        for engine in FAST:
            assert run(data, DEFAULT, engine, max_line_bytes=1 << 20, chunk_size=1 << 20) == expected

    @pytest.mark.parametrize("engine", FAST)
    def test_first_and_last_time_found_far_from_the_ends(self, engine: str) -> None:
        """first_at/last_at when most lines have no time (an untimed file with a few)."""
        data = (
            b"x\n" * 50_000
            + b"2026-11-27T14:05:00Z a\n"
            + b"y\n" * 50_000
            + b'{"ts":1795788400} b\n'
            + b"z\n" * 9
        )
        assert run(data, DEFAULT, engine, chunk_size=1 << 16) == run(data, DEFAULT, "reference")


_NEAR_MISSES = [
    '{"level":"critical"}', "level=fatal", '{"status":503}', 'status="5e2"', '{"PRIORITY":"3"}',
    "ERROR: x", "OOMKilled", "fatal  err", "oomkill", "boom!", "exit status 2", "xab", "1 2x", "caf\u00e9",
    'Exception in thread "m"', "panic: x", '{"http":{"method":"POST"}}', "dur_ms=1000.6", "delta=-3",
]  # fmt: skip
_TRICKY = '\u0130\u0131\u017f\u212a\x1c\x1f\u00a0\u3000\u180e\u00e9\u00c5\u0560\U00010d30\\ \t"5-'


_FOLDS = {"i": "\u0130\u0131", "s": "\u017f", "k": "\u212a"}
_FINDERS = {
    (id(rules), engine): Finder(rules.prefilters(), "auto", engine == "hyperscan")
    for rules in (DEFAULT, EXTRA)
    for engine in FAST
}


@st.composite
def near_miss(draw: st.DrawFn) -> str:
    """A line some rule matches, with a few characters changed: swapped case, tricky ones."""
    chars = list(draw(st.sampled_from(_NEAR_MISSES)))
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(chars)))
        edit = draw(st.sampled_from(["swap", "insert", "replace", "fold"]))
        tricky = draw(st.sampled_from(_TRICKY))
        foldable = [j for j, c in enumerate(chars) if c.lower() in _FOLDS]
        if edit == "fold" and foldable:  # a letter Python's IGNORECASE also matches
            j = draw(st.sampled_from(foldable))
            chars[j] = draw(st.sampled_from(_FOLDS[chars[j].lower()]))
        elif edit == "insert" or i == len(chars):
            chars.insert(i, tricky)
        elif edit == "swap":
            chars[i] = chars[i].swapcase()
        else:
            chars[i] = tricky
    return "".join(chars)


class TestPrefilterSuperset:
    @settings(max_examples=3000, deadline=None)
    @given(text=near_miss(), rules=st.sampled_from([DEFAULT, EXTRA]))
    def test_every_matching_line_is_found(self, text: str, rules: SourceRules) -> None:
        """Whatever the characters, a line a rule matches is a candidate in every engine."""
        if rules.match(LineParser().parse(text))[0] is None:
            return
        buf = b"x\n" + text.encode() + b"\n"
        for engine in FAST:
            assert 2 in _FINDERS[id(rules), engine].find(buf, 0, len(buf)), (engine, text)


class TestTimedLinesAgree:
    @given(line=_LINE)
    def test_context_never_misses(self, line: bytes) -> None:
        """A line the grouping rules could treat specially is always found by the context search."""
        formats: tuple[Format, ...] = ("auto", "journal")
        for fmt in formats:
            finder = Finder((), fmt, False)
            buf = b"2026-11-27T14:05:00Z x\n" + line.replace(b"\n", b" ") + b"\n"
            text = buf.decode("utf-8", "replace")
            parsed = LineParser(fmt).parse(text.split("\n")[1])
            special = re.match(r"[ \t]|\s*$|goroutine |Caused by", parsed.message)
            if special and not bad_lines(buf, 0, len(buf)):
                assert 23 in finder.find(buf, 0, len(buf)), (fmt, line)


_RECORD_FIELDS = st.lists(
    st.sampled_from(
        [
            '"__REALTIME_TIMESTAMP":"1795788305000000"',
            '"__REALTIME_TIMESTAMP" : "1"',
            '"__REALTIME_TIMESTAMP":"x"',
            '"__CURSOR":"s=1;i=2"',
            '"PRIORITY":"6"',
            '"MESSAGE":"ok"',
            '"MESSAGE":""',
            '"MESSAGE" :"  frame"',
            '"MESSAGE":"a\\"b"',
            '"MESSAGE":[104,105]',
            '"MESSAGE":"goroutine 1 [running]:"',
            '"MESSAGE":"\u00a0x"',
            '"MESSAGE":"',
            '"X":"\\"MESSAGE\\":\\"\\""',
            '"',
            " ",
        ]
    ),
    max_size=6,
)
_RECORD = st.builds(
    lambda fields, close: "{" + ",".join(fields) + close, _RECORD_FIELDS, st.sampled_from(["}", ""])
)


class TestJournalRecords:
    @given(
        lines=st.lists(_RECORD.map(str.encode) | _LINE, min_size=1, max_size=8),
        end=st.sampled_from([b"\n", b"\r\n", b""]),
    )
    def test_same_lines_as_the_one_pattern(self, lines: list[bytes], end: bytes) -> None:
        """Context's searches, key by key, find exactly the lines exact_pattern("journal") matches at."""
        data = b"\n".join(ln.replace(b"\n", b" ") for ln in lines) + end
        spec = re.compile(exact_pattern("journal").encode(), re.M)
        starts = [0, *(i + 1 for i, b in enumerate(data) if b == 10 and i + 1 < len(data))]
        expected = {ls for ls in starts if spec.match(data, ls, len(data))}
        ctx = Context("journal")
        assert ctx.find(data, 0, len(data)) == expected
        assert {ls for ls in starts if ctx.confirm(data, ls, len(data))} == expected


@pytest.mark.skipif(not HYPERSCAN, reason="hyperscan is Linux x86_64 only")
class TestContinuationsInHyperscan:
    @settings(max_examples=int(os.environ.get("SCAN_EXAMPLES", "500")), deadline=None)
    @given(data=logs(), fmt=st.sampled_from(["auto", "docker", "json", "logfmt", "text"]))
    def test_same_lines_as_the_exact_search(self, data: bytes, fmt: Format) -> None:
        """The shapes hyperscan looks for, confirmed by the exact search, find exactly the
        lines the exact search alone finds (the first line is looked at anyway)."""
        data = data if data.endswith(b"\n") else data + b"\n"
        exact = Context(fmt).find(data, 0, len(data))
        fast = Finder((), fmt, True).find(
            blank_lines(data, bad_lines(data, 0, len(data)), len(data)), 0, len(data)
        )
        bad = set(bad_lines(data, 0, len(data)))
        assert fast - {0} - bad == exact - {0} - bad

    def test_every_shape_after_stamps(self) -> None:
        """Each continuation shape, after none, one or two timestamps, is found."""
        shapes = ["", " x", "\tat y", "\x1cz", "\u00a0w", "goroutine 1 [", "Caused by: e", "... 3 more"]
        stamps = ["", "2026-11-27T14:05:00Z ", "2026-11-27 14:05:00,5 ", "2026-11-27T14:05:00+0100"]
        lines = [f"{a}{b}{shape}" for shape in shapes for a in stamps for b in ["", *stamps[1:2]]]
        data = ("x\n" + "\n".join(lines) + "\n").encode()
        starts = list(itertools.accumulate((len(ln.encode()) + 1 for ln in lines), initial=2))[:-1]
        parsed = [LineParser().parse(ln).message for ln in lines]
        continued = {at for at, msg in zip(starts, parsed, strict=True) if continues_alone(msg)}
        assert len(continued) > len(lines) // 2
        exact = Context("auto").find(data, 0, len(data))
        assert continued <= exact
        assert Finder((), "auto", True).find(data, 0, len(data)) - {0} == exact

    def test_a_storm_of_matches(self) -> None:
        """A window whose prefilter matches end at every byte is scanned the careful way, with
        the same results."""
        rules = RuleSet.compile([RuleConfig(name="xs", regex="x+y"), *_SETTINGS.rules], []).for_source("f")
        data = (
            b"2026-11-27T14:05:00Z " + b"x" * 20_000 + b"\n"
            b"  frame\n"
            b"2026-11-27T14:05:01Z xxy\n"
            b"2026-11-27T14:05:02Z ok\n" * 100 + b"Traceback (most recent call last):\n  f\nValueError: v\n"
        )
        assert run(data, rules, "hyperscan") == run(data, rules, "reference")
