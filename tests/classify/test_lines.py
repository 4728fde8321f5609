"""LineParser: a line's own time, its message and its fields."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.classify.lines import (
    MESSAGE_TOKEN,
    REALTIME,
    LineParser,
    later_in_line,
    logfmt_fields,
    sniff_format,
    timed_pattern,
)


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


class TestLeadingTimestamp:
    def test_docker_nanoseconds(self) -> None:
        """RFC3339Nano with Z is the time; the message starts after one space."""
        line = LineParser().parse("2026-11-27T14:05:00.123456789Z boom")
        assert line.at == pytest.approx(ts("2026-11-27T14:05:00.123456789"[:26]), abs=1e-6)
        assert line.message == "boom"

    def test_space_separator_and_comma_fraction(self) -> None:
        """Python logging's `2026-11-27 14:05:00,123` is a leading timestamp."""
        line = LineParser().parse("2026-11-27 14:05:00,123 ERROR x")
        assert line.at == pytest.approx(ts("2026-11-27T14:05:00.123"))
        assert line.message == "ERROR x"

    def test_offset(self) -> None:
        """An offset is applied: 15:05+01:00 is 14:05 UTC."""
        assert LineParser().parse("2026-11-27T15:05:00+01:00 x").at == ts("2026-11-27T14:05:00")

    def test_no_offset_is_utc(self) -> None:
        """A timestamp without an offset is UTC."""
        assert LineParser().parse("2026-11-27T14:05:00 x").at == ts("2026-11-27T14:05:00")

    def test_only_one_space_is_stripped(self) -> None:
        """Indentation after the timestamp stays: a traceback frame in `docker logs -t`."""
        assert LineParser().parse('2026-11-27T14:05:00Z   File "a.py"').message == '  File "a.py"'

    def test_inner_timestamp_stripped_outer_wins(self) -> None:
        """Python logging inside docker -t: both stamps go, Docker's time wins."""
        line = LineParser().parse("2026-11-27T14:05:00.5Z 2026-11-27 13:00:00,000 ERROR x")
        assert line.message == "ERROR x"
        assert line.at == ts("2026-11-27T14:05:00.5")

    def test_timestamp_only(self) -> None:
        """A line that is only a timestamp has an empty message."""
        assert LineParser().parse("2026-11-27T14:05:00Z").message == ""

    def test_not_a_timestamp(self) -> None:
        """A date alone is not a timestamp."""
        assert LineParser().parse("2026-11-27 nothing").at is None


class TestEmbeddedTime:
    def test_json_ts(self) -> None:
        """A JSON `ts` string is the time; the message is the whole JSON text."""
        text = '{"ts":"2026-11-27T14:05:00Z","level":"error"}'
        line = LineParser().parse(text)
        assert line.at == ts("2026-11-27T14:05:00")
        assert line.message == text
        assert line.fields == {"ts": "2026-11-27T14:05:00Z", "level": "error"}

    @pytest.mark.parametrize("key", ["time", "timestamp", "@timestamp"])
    def test_json_other_keys(self, key: str) -> None:
        """`time`, `timestamp` and `@timestamp` are time keys too."""
        assert LineParser().parse(f'{{"{key}": "2026-11-27T14:05:00Z"}}').at == ts("2026-11-27T14:05:00")

    def test_json_key_precedence(self) -> None:
        """`ts` wins over `time` wherever they are."""
        line = LineParser().parse('{"time":"2026-11-27T00:00:00Z","ts":"2026-11-27T14:05:00Z"}')
        assert line.at == ts("2026-11-27T14:05:00")

    def test_json_epoch_seconds_and_millis(self) -> None:
        """Epoch numbers: seconds, or milliseconds when above 1e11."""
        assert LineParser().parse('{"ts":1795788300.5}').at == 1795788300.5
        assert LineParser().parse('{"ts":1795788300500}').at == 1795788300.5

    def test_json_invalid_value_falls_to_next_key(self) -> None:
        """A time of day is no time; the next key is tried."""
        line = LineParser().parse('{"ts":"12:00","time":"2026-11-27T14:05:00Z"}')
        assert line.at == ts("2026-11-27T14:05:00")

    def test_logfmt(self) -> None:
        """logfmt `ts=` is the time and pairs are fields, quoted with escapes."""
        line = LineParser().parse('ts=2026-11-27T14:05:00Z level=error msg="a \\"b\\" c"')
        assert line.at == ts("2026-11-27T14:05:00")
        assert line.fields == {"ts": "2026-11-27T14:05:00Z", "level": "error", "msg": 'a "b" c'}

    def test_logfmt_quoted_time(self) -> None:
        """`time="2026-11-27 14:05:00"` with a space inside quotes."""
        assert LineParser().parse('time="2026-11-27 14:05:00" x=1').at == ts("2026-11-27T14:05:00")

    def test_custom_field_and_format(self) -> None:
        """A source may name its own time field and strptime format."""
        parser = LineParser("json", "logged_at", "%d/%b/%Y:%H:%M:%S %z")
        line = parser.parse('{"logged_at":"27/Nov/2026:15:05:00 +0100","ts":"2001-01-01T00:00:00Z"}')
        assert line.at == ts("2026-11-27T14:05:00")


class TestBrokenInput:
    def test_broken_json_is_text(self) -> None:
        """Broken JSON never raises: it is text, whose pairs are still fields."""
        line = LineParser().parse('{"level":"error", oops level=fatal')
        assert line.at is None
        assert line.fields == {"level": "fatal"}

    def test_json_array_has_no_fields(self) -> None:
        """Only a JSON object has fields."""
        assert LineParser().parse("[1, 2]").fields == {}

    def test_deep_nesting(self) -> None:
        """Pathological nesting is just text."""
        assert LineParser("json").parse("{" * 100_000).fields == {}

    def test_nan_is_no_number(self) -> None:
        """NaN and Infinity do not become floats a range rule could compare."""
        assert LineParser().parse('{"status": NaN}').fields == {"status": None}


class TestFormats:
    def test_text_has_no_fields(self) -> None:
        """The text format reads only leading timestamps."""
        line = LineParser("text").parse("ts=2026-11-27T14:05:00Z level=error")
        assert (line.at, line.fields) == (None, {})

    def test_json_format_ignores_logfmt(self) -> None:
        """The json format does not read pairs."""
        assert LineParser("json").parse("level=error").fields == {}

    def test_logfmt_format_reads_braces_as_pairs(self) -> None:
        """The logfmt format reads pairs even on a line starting with `{`."""
        assert LineParser("logfmt").parse("{x level=error").fields == {"level": "error"}


class TestJournal:
    def test_record(self) -> None:
        """journalctl -o json: __REALTIME_TIMESTAMP (µs), MESSAGE, every field."""
        line = LineParser("journal").parse(
            '{"__REALTIME_TIMESTAMP":"1795788300123456","PRIORITY":"3","MESSAGE":"disk \\"full\\""}'
        )
        assert line.at == pytest.approx(1795788300.123456)
        assert line.message == 'disk "full"'
        assert line.fields["PRIORITY"] == "3"

    def test_message_as_bytes(self) -> None:
        """A MESSAGE that is not UTF-8 comes as byte values and is decoded with replacement."""
        line = LineParser("journal").parse('{"__REALTIME_TIMESTAMP":"1","MESSAGE":[104,105,255]}')
        assert line.message == "hi\ufffd"

    def test_missing_message(self) -> None:
        """A record without MESSAGE has an empty message."""
        assert LineParser("journal").parse('{"__REALTIME_TIMESTAMP":"1"}').message == ""

    def test_other_lines_are_auto(self) -> None:
        """A line that is not a record is parsed like any other."""
        assert LineParser("journal").parse("2026-11-27T14:05:00Z x").message == "x"

    def test_plain_and_escaped_messages(self) -> None:
        """A MESSAGE without escapes is taken as it is; one with escapes is decoded."""
        parser = LineParser("journal")
        assert parser.parse('{"__REALTIME_TIMESTAMP":"1","MESSAGE":"a\tb c"}').message == "a\tb c"
        assert parser.parse('{"__REALTIME_TIMESTAMP":"1","MESSAGE":"a\\tb \\u00e9"}').message == "a\tb \u00e9"


class TestRepeatedParse:
    def test_same_line_parsed_once(self) -> None:
        """The same short line parsed again (a live chunk's line, for its time, rules and evidence)
        gives the same result, without parsing again."""
        parser = LineParser("journal")
        text = '{"__REALTIME_TIMESTAMP":"1795788300123456","PRIORITY":"3","MESSAGE":"x"}'
        first = parser.parse(text)
        assert parser.parse(str(text)) is first
        assert parser.parse(text + " ") is not first

    def test_long_lines_not_kept(self) -> None:
        """A long line's result is not kept: what a parser holds stays small."""
        parser = LineParser()
        text = "ERROR: " + "x" * 10_000
        assert parser.parse(text) is not parser.parse(text)
        assert parser.parse(text) == parser.parse(text)


class TestSniff:
    def test_journal(self) -> None:
        """JSON objects with __REALTIME_TIMESTAMP are a journal."""
        head = b'{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1","MESSAGE":"a"}\n' * 3
        assert sniff_format(head) == "journal"

    def test_docker(self) -> None:
        """Lines that all start with an RFC3339Nano timestamp and a space are docker logs -t."""
        head = b"2026-11-27T14:05:00.123456789Z a\n2026-11-27T14:05:01Z b\n2026-11-27T14:05:0"
        assert sniff_format(head) == "docker"

    def test_mixed_is_auto(self) -> None:
        """Anything else is auto."""
        assert sniff_format(b'{"ts":1}\nts=2026-11-27T14:05:00Z x\n') == "auto"
        assert sniff_format(b"") == "auto"


class TestLogfmtFields:
    def test_unquoted_and_last_wins(self) -> None:
        """Bare values end at whitespace; a repeated key keeps its last value."""
        assert logfmt_fields("a=1 b=x=y a=2 word") == {"a": "2", "b": "x=y"}

    def test_unterminated_quote(self) -> None:
        """An unterminated quote is part of a bare value."""
        assert logfmt_fields('msg="abc') == {"msg": '"abc'}


_LINE = st.one_of(
    st.text(alphabet=st.sampled_from('{}":,tsimeap=@ 0123456789-TZ.\t'), max_size=40),
    st.builds(
        lambda pre, key, q, val, post: f"{pre}{key}{q}{val}{post}",
        st.sampled_from(["", "{", '{"a":1,', "x ", "{ "]),
        st.sampled_from(['"ts":', '"time" : ', '"@timestamp":', "ts=", "time=", '"__REALTIME_TIMESTAMP":']),
        st.sampled_from(["", '"']),
        st.sampled_from(
            ["2026-11-27T14:05:00Z", "2026-11-27 14:05", "1795788300", "12:00", "17957883001234567890"]
        ),
        st.sampled_from(["", '"', "}", " x", ",", "5", "'"]),
    ),
)


class TestTimedPattern:
    @pytest.mark.parametrize("fmt", ["auto", "json", "logfmt", "text", "journal"])
    @given(line=_LINE)
    def test_agrees_with_parse(self, fmt: str, line: str) -> None:
        """timed_pattern matches a line exactly when the parser finds its time."""
        parser = LineParser(fmt)  # type: ignore[arg-type]
        pattern = re.compile(timed_pattern(fmt))  # type: ignore[arg-type]
        assert (pattern.match(line) is not None) == (parser.parse(line).at is not None)


_QUOTED = st.lists(
    st.sampled_from(
        [
            '"__REALTIME_TIMESTAMP":"1795788305000000"',
            '"__REALTIME_TIMESTAMP" : "17"',
            '"__REALTIME_TIMESTAMP":"x"',
            '"__REALTIME_TIMESTAMP":',
            '"MESSAGE":"ok"',
            '"MESSAGE":"a\\"b"',
            '"MESSAGE":[1,2]',
            '"MESSAGE":"',
            '"MESSAGE"',
            '"x":"\\"MESSAGE\\":1"',
            '"',
            '""',
            "\n",
            ",",
            " ",
            "{",
        ]
    ),
    max_size=8,
).map("".join)


class TestLaterInLine:
    @pytest.mark.parametrize("x", [REALTIME, MESSAGE_TOKEN, '"MESSAGE"[ \t]*:[ \t]*"(?:"|[ \t\n])'])
    @given(line=_QUOTED)
    def test_same_as_a_lazy_search(self, x: str, line: str) -> None:
        """later_in_line(x) matches where `[^\\n]*?x` does, up to the same first x."""
        lazy = re.compile(rf"\{{[^\n]*?{x}", re.M).match("{" + line)
        fast = re.compile(rf"\{{{later_in_line(x)}", re.M).match("{" + line)
        assert (lazy and lazy.end()) == (fast and fast.end())
