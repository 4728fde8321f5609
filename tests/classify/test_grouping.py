"""Grouping lines into records, and one error event per record."""

from __future__ import annotations

import re

import pytest

from watcher.classify import framing
from watcher.classify.grouping import (
    CONTINUATION_FIRST,
    CONTINUATION_START,
    SourceClassifier,
    is_continuation,
    opens_context,
)
from watcher.classify.lines import LineParser, ParsedLine
from watcher.classify.rules import RuleSet
from watcher.config import RuleConfig

DEFAULT_RULES = [
    RuleConfig(name="level", field="level", values=["error", "fatal", "panic", "critical"]),
    RuleConfig(name="panic", regex=r"^(panic: |fatal error: |Traceback \(most recent call last\):)"),
    RuleConfig(name="java", regex='^Exception in thread "'),
    RuleConfig(name="text-level", regex="^(ERROR|FATAL|CRITICAL)[: ]"),
    RuleConfig(name="caused", regex="^Caused by: "),
]
IGNORE = [RuleConfig(name="maint", regex="planned maintenance")]


def classifier(fmt: str = "auto") -> SourceClassifier:
    rules = RuleSet.compile(DEFAULT_RULES, IGNORE).for_source("src")
    return SourceClassifier("src", rules, LineParser(fmt))  # type: ignore[arg-type]


def feed_all(clf: SourceClassifier, text: str) -> list[tuple[float | None, str, str]]:
    events = [clf.feed(line) for line in text.splitlines()]
    return [(e.at, e.rule, e.message) for e in events if e is not None]


T0 = "2026-11-27T14:05:00Z"
T0_AT = 1795788300.0


class TestIsContinuation:
    def test_first_line(self) -> None:
        """The first line of a source starts a record, whatever it looks like."""
        assert not is_continuation(None, "  frame")

    def test_no_timestamp_alone_is_not_a_continuation(self) -> None:
        """A line without a time of its own that does not look like a frame starts a record."""
        assert not is_continuation("x", "main.go:10")
        assert not is_continuation("x", "ERROR: database connection refused")

    @pytest.mark.parametrize(
        "message", ["", "   ", '  File "a.py", line 1', "\tat com.x.Y(Y.java:1)", "\t/a.go:1 +0x1d"]
    )
    def test_rule1_whitespace(self, message: str) -> None:
        """Empty, blank or indented messages continue the record."""
        assert is_continuation("x", message)

    def test_rule1_only_space_or_tab(self) -> None:
        """A message starting with other whitespace continues only if it is all whitespace."""
        assert is_continuation("x", "\r\x0b")
        assert not is_continuation("x", "\x0bword")

    @pytest.mark.parametrize(
        "message",
        [
            "Caused by: java.io.IOException: reset",
            "Suppressed: x",
            "... 5 more",
            "goroutine 1 [running]:",
            "[signal SIGSEGV: segmentation violation]",
            "created by main.main in goroutine 1",
            "exit status 2",
            "During handling of the above exception, another exception occurred:",
            "The above exception was the direct cause of the following exception:",
        ],
    )
    def test_rule2_prefixes(self, message: str) -> None:
        """Continuation prefixes of Java, Go and Python."""
        assert is_continuation("x", message)

    def test_rule2_exit_status_whole(self) -> None:
        """`exit status N` must be the whole message."""
        assert not is_continuation("x", "exit status 2 reported by job")

    def test_rule3_python_final_line(self) -> None:
        """After an indented frame, `ValueError: bad frame` ends the traceback."""
        assert is_continuation('    raise ValueError("bad frame")', "ValueError: bad frame")
        assert is_continuation("    x", "KeyboardInterrupt")
        assert not is_continuation("plain", "ValueError: bad frame")

    def test_rule3_go_function(self) -> None:
        """After `goroutine N [...]` or a tab line, a Go function line continues."""
        assert is_continuation("goroutine 1 [running]:", "main.(*Server).handle(0xc000010000)")
        assert is_continuation("\t/app/main.go:31 +0x5a", "main.main()")
        assert not is_continuation("plain", "main.main()")

    def test_rule4_chained_traceback(self) -> None:
        """After a blank line, `Traceback (most recent call last):` continues (chained exception)."""
        assert is_continuation("", "Traceback (most recent call last):")
        assert not is_continuation("x", "Traceback (most recent call last):")

    def test_plain_line_starts_a_record(self) -> None:
        """Everything else starts a new record."""
        assert not is_continuation("  frame", "INFO ok")

    def test_opens_context(self) -> None:
        """Only blank, indented and goroutine lines can make the next line a continuation."""
        assert opens_context("") and opens_context("  x") and opens_context("goroutine 5 [x]:")
        assert not opens_context("main.main()")


class TestContinuationShapes:
    @pytest.mark.parametrize(
        "message", ["", " x", "\tx", "\r", "\u3000", "\u00a0", "Caused by: x", "exit status 1", "goroutine x"]
    )
    def test_start_covers_rules_1_2_and_openers(self, message: str) -> None:
        """CONTINUATION_START (bytes) matches every message rules 1-2 or an opener need."""
        data = message.encode() + b"\n"
        assert re.match(CONTINUATION_START.encode(), data)
        assert re.match(CONTINUATION_FIRST.encode(), data)

    def test_first_bytes_agree(self) -> None:
        """CONTINUATION_FIRST admits the first byte of every CONTINUATION_START alternative."""
        start, first = re.compile(CONTINUATION_START.encode()), re.compile(CONTINUATION_FIRST.encode())
        for b in range(256):
            if any(start.match(bytes([b]) + tail) for tail in _TAILS):
                assert first.match(bytes([b])), b


_TAILS = [
    b"",
    b"aused by: ",
    b"uppressed: ",
    b".. 1 more",
    b"oroutine ",
    b"signal ",
    b"reated by ",
    b"xit status 1",
    b"uring handling of the above exception",
    b"he above exception was the direct cause",
    b"\x85",
    b"\xa0",
    b"\x9a\x80",
    b"\x80\x80",
    b"\x81\x9f",
]


class TestRecords:
    def test_python_traceback_is_one_event(self) -> None:
        """A Python traceback in a timed file is one event at its head's time."""
        clf = classifier()
        events = feed_all(
            clf,
            f"{T0} Traceback (most recent call last):\n"
            '  File "/app/a.py", line 1, in f\n'
            "    raise ValueError('bad')\n"
            "ValueError: bad\n"
            f"{T0} INFO next\n",
        )
        assert events == [(T0_AT, "panic", "Traceback (most recent call last):")]
        assert (clf.stats.lines, clf.stats.records) == (5, 2)

    def test_chained_traceback_untimed(self) -> None:
        """In an untimed file a chained traceback is still one record."""
        clf = classifier()
        feed_all(
            clf,
            "Traceback (most recent call last):\n"
            '  File "a.py", line 1\n'
            "KeyError: 'x'\n"
            "\n"
            "During handling of the above exception, another exception occurred:\n"
            "\n"
            "Traceback (most recent call last):\n"
            '  File "a.py", line 3\n'
            "ValueError: y\n"
            "INFO next\n",
        )
        assert (clf.stats.records, clf.stats.errors) == (2, 1)

    def test_go_panic_after_info_line(self) -> None:
        """A Go panic printed without timestamps after an info line is a record of its own,
        one event at the newest stamp before it."""
        clf = classifier()
        events = feed_all(
            clf,
            f"{T0} INFO serving\n"
            "panic: runtime error: invalid memory address\n"
            "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a]\n"
            "\n"
            "goroutine 1 [running]:\n"
            "main.(*Server).handle(0xc000010000)\n"
            "\t/app/server.go:42 +0x1d\n"
            "exit status 2\n",
        )
        assert events == [(T0_AT, "panic", "panic: runtime error: invalid memory address")]
        assert clf.stats.records == 2

    def test_go_panic_untimed_goroutine_dump(self) -> None:
        """Untimed, the goroutine dump still joins the panic through the continuation rules."""
        clf = classifier()
        feed_all(
            clf,
            "fatal error: concurrent map writes\n"
            "\n"
            "goroutine 7 [running]:\n"
            "main.(*Registry).add(...)\n"
            "\t/app/registry.go:20 +0x8c\n"
            "created by main.main in goroutine 1\n"
            "\t/app/main.go:31 +0x5a\n"
            "exit status 2\n",
        )
        assert (clf.stats.records, clf.stats.errors) == (1, 1)

    def test_java_trace(self) -> None:
        """A Java trace with Caused by and `... 5 more` counts once, under its first rule."""
        clf = classifier()
        events = feed_all(
            clf,
            'Exception in thread "main" java.lang.IllegalStateException: no session\n'
            "\tat com.novavms.Gw.run(Gw.java:10)\n"
            "Caused by: java.io.IOException: reset\n"
            "\t... 5 more\n",
        )
        assert [e[1] for e in events] == ["java"]
        assert clf.stats.records == 1

    def test_error_in_continuation_line(self) -> None:
        """A record whose first matching line is a continuation is an event with that line."""
        clf = classifier()
        events = feed_all(clf, f"{T0} INFO wrapped\nCaused by: boom\n")
        assert events == [(T0_AT, "caused", "Caused by: boom")]

    def test_ignored_line_counted(self) -> None:
        """An ignore rule that suppresses an error is counted per line."""
        clf = classifier()
        assert feed_all(clf, f'{T0} {{"level":"error","msg":"planned maintenance"}}') == []
        assert clf.stats.ignored_by_rule == {"maint": 1}
        assert clf.stats.errors_by_rule == dict.fromkeys(
            ["level", "panic", "java", "text-level", "caused"], 0
        )

    def test_untimed_error_lines_are_each_an_error(self) -> None:
        """`ERROR: ...` lines without a stamp after a stamped one are not its continuations."""
        clf = classifier()
        lines = [f"{T0} INFO pool ready"] + ["ERROR: database connection refused"] * 24
        events = feed_all(clf, "\n".join(lines))
        assert len(events) == 24 and {at for at, _, _ in events} == {T0_AT}
        assert clf.stats.records == 25

    def test_an_unparsable_stamp_is_a_record_of_its_own(self) -> None:
        """A line stamped 9999-12-31 (no time this parser knows) is not merged into the one before."""
        rules = RuleSet.compile([RuleConfig(name="error", regex="ERROR")], []).for_source("src")
        clf = SourceClassifier("src", rules, LineParser())
        events = feed_all(clf, f"{T0} ERROR: a\n9999-12-31T23:59:59Z ERROR: b\n")
        assert [m for _, _, m in events] == ["ERROR: a", "9999-12-31T23:59:59Z ERROR: b"]

    def test_break_context(self) -> None:
        """A frame-like line that did not arrive with the line before it starts a record."""
        clf = classifier()
        clf.feed(f"{T0} ERROR: failed")
        clf.break_context()
        assert clf.feed("Caused by: late") is not None
        assert clf.stats.records == 2

    def test_first_and_last_at(self) -> None:
        """first_at and last_at are the first and last own timestamps."""
        clf = classifier()
        feed_all(clf, f"{T0} a\nno time\n2026-11-27T14:06:00Z b\nno time\n")
        assert (clf.stats.first_at, clf.stats.last_at) == (T0_AT, T0_AT + 60)


class TestFeedArguments:
    def test_source_time_wins(self) -> None:
        """`at` from the source (Docker) is the line's time; the text is still parsed."""
        clf = classifier()
        event = clf.feed('{"level":"error"}', at=10.0)
        assert event is not None and event.at == 10.0

    def test_given_fields(self) -> None:
        """With `fields` (journald) the text is the message as is."""
        rules = RuleSet.compile([RuleConfig(name="prio", field="PRIORITY", max=3)], []).for_source("gw")
        clf = SourceClassifier("gw", rules, LineParser())
        event = clf.feed("2026-11-27T14:05:00Z disk full", at=5.0, fields={"PRIORITY": "2"})
        assert event is not None and (event.at, event.message) == (5.0, "2026-11-27T14:05:00Z disk full")

    def test_empty_fields_mean_parse(self) -> None:
        """A source that passes no fields gets them parsed from the text."""
        event = classifier().feed('{"level":"error"}', at=1.0, fields={})
        assert event is not None and event.rule == "level"

    def test_now_when_head_has_no_time(self) -> None:
        """The receive time is the record's time only when its head has none."""
        clf = classifier()
        event = clf.feed("ERROR: x", now=99.0)
        assert event is not None and event.at == 99.0

    def test_feed_line_counts_bad_utf8_and_truncation(self) -> None:
        """feed_line decodes with replacement and counts bad and cut lines."""
        clf = classifier()
        event = clf.feed_line(framing.Line(b"ERROR: \xff", 7))
        assert event is not None and event.message == "ERROR: \ufffd…[truncated 7 bytes]"
        assert (clf.stats.bad_utf8, clf.stats.truncated) == (1, 1)

    def test_skip(self) -> None:
        """skip() counts records in bulk; the next line may continue the last one."""
        clf = classifier()
        clf.skip(3, lambda: ParsedLine(7.0, "INFO x", {}))
        event = clf.feed("Caused by: y")
        assert event is not None and event.at == 7.0
        assert (clf.stats.lines, clf.stats.records) == (4, 3)

    def test_skipped_line_parsed_only_when_continued(self) -> None:
        """The last skipped line is parsed only when the next line continues its record."""
        clf = classifier()
        parsed: list[int] = []

        def last() -> ParsedLine:
            parsed.append(1)
            return ParsedLine(7.0, "INFO x", {})

        clf.skip(2, last)
        assert clf.feed("ERROR: y") is not None and parsed == []
        clf.skip(2, last)
        clf.break_context()
        assert clf.feed("  frame") is None and parsed == []
        assert (clf.stats.lines, clf.stats.records) == (6, 6)
