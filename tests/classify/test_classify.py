"""classify_stream: a whole file or stdin, in every engine."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator

import pytest

from tests.support import SHIPPED_CONFIG
from watcher.classify import framing
from watcher.classify.grouping import ClassifyStats
from watcher.classify.rules import RuleSet, SourceRules
from watcher.classify.scan import HYPERSCAN
from watcher.classify.stream import CONTINUATION_GRACE, Engine, StreamScanner, classify_stream
from watcher.config import RuleConfig, load
from watcher.errors import InputError
from watcher.events import ErrorEvent

AT = 1795788300.0  # 2026-11-27T14:05:00Z

ENGINES = ["reference", "python", *(["hyperscan"] if HYPERSCAN else [])]
T0 = "2026-11-27T14:05:00Z"


@pytest.fixture(scope="module")
def default_rules() -> SourceRules:
    settings = load(SHIPPED_CONFIG)
    return RuleSet.compile(settings.rules, settings.ignore).for_source("edge")


def classify(
    data: bytes, rules: SourceRules, engine: str, **kw: object
) -> tuple[ClassifyStats, list[ErrorEvent]]:
    events: list[ErrorEvent] = []
    stats = classify_stream(io.BytesIO(data), "edge", rules, on_error=events.append, engine=engine, **kw)  # type: ignore[arg-type]
    return stats, events


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    yield request.param


class TestFormatsAndTiming:
    def test_docker_logs(self, default_rules: SourceRules, engine: Engine) -> None:
        """`docker logs -t` output: sniffed as docker, timed, errors at Docker's times."""
        data = (
            b"2026-11-27T14:05:00.000000001Z starting\n"
            b'2026-11-27T14:05:01.5Z {"level":"error","msg":"x"}\n'
            b"2026-11-27T14:05:02Z Traceback (most recent call last):\n"
            b'2026-11-27T14:05:02Z   File "a.py", line 1\n'
        )
        stats, events = classify(data, default_rules, engine)
        assert (stats.format, stats.timed, stats.lines, stats.records, stats.errors) == (
            "docker",
            True,
            4,
            3,
            2,
        )
        assert [e.rule for e in events] == ["level", "panic"]
        assert stats.last_at == 1795788302.0
        assert stats.bytes == len(data)

    def test_journal(self, default_rules: SourceRules, engine: Engine) -> None:
        """`journalctl -o json` output: PRIORITY as a string, MESSAGE as the message."""
        rec = '{{"__CURSOR":"c","__REALTIME_TIMESTAMP":"{}","PRIORITY":"{}","MESSAGE":"{}"}}\n'
        data = (rec.format(1795788300000000, 6, "ok") + rec.format(1795788301000000, 3, "disk")).encode()
        stats, events = classify(data, default_rules, engine)
        assert stats.format == "journal"
        assert [(e.at, e.rule, e.message) for e in events] == [(1795788301.0, "priority", "disk")]

    def test_untimed_file(self, default_rules: SourceRules, engine: Engine) -> None:
        """Without timestamps every line is its own record except pattern continuations."""
        data = b"ERROR: a\nplain line\nERROR: b\n  indented\n"
        stats, events = classify(data, default_rules, engine)
        assert (stats.timed, stats.records, stats.errors) == (False, 3, 2)
        assert [e.at for e in events] == [None, None]
        assert (stats.first_at, stats.last_at) == (None, None)

    def test_explicit_format(self, default_rules: SourceRules, engine: Engine) -> None:
        """An explicit format is not sniffed."""
        stats, _ = classify(b"level=error\n", default_rules, engine, fmt="text")
        assert (stats.format, stats.errors) == ("text", 0)

    def test_empty(self, default_rules: SourceRules, engine: Engine) -> None:
        """An empty input has no lines and is not timed."""
        stats, _ = classify(b"", default_rules, engine)
        assert (stats.lines, stats.records, stats.timed, stats.errors_by_rule["level"]) == (0, 0, False, 0)


class TestBadInput:
    def test_non_utf8_counted(self, default_rules: SourceRules, engine: Engine) -> None:
        """Bytes that are not UTF-8 are replaced and counted, never an exception."""
        data = f"{T0} ERROR: \xff\xfe bad\n{T0} ok\n".encode("latin-1") + b"\xc3\n"
        stats, events = classify(data, default_rules, engine)
        assert stats.bad_utf8 == 2
        assert events[0].message == "ERROR: \ufffd\ufffd bad"

    def test_long_line_truncated(self, default_rules: SourceRules, engine: Engine) -> None:
        """A 10 MB line keeps max_line_bytes, gets the marker and is counted."""
        data = f"{T0} ERROR: ".encode() + b"x" * 10_000_000 + f"\n{T0} ok\n".encode()
        stats, events = classify(data, default_rules, engine, max_line_bytes=1 << 20)
        assert (stats.truncated, stats.lines, stats.errors) == (1, 2, 1)
        cut = len(data.split(b"\n")[0]) - (1 << 20)
        assert events[0].message.endswith(framing.TRUNCATION_MARKER.format(cut))

    def test_crlf(self, default_rules: SourceRules, engine: Engine) -> None:
        """CRLF line ends are plain line ends."""
        stats, events = classify(f"{T0} ERROR: x\r\n{T0}\r\n".encode(), default_rules, engine)
        assert [e.message for e in events] == ["ERROR: x"]
        assert stats.records == 1

    def test_no_final_newline(self, default_rules: SourceRules, engine: Engine) -> None:
        """The last line counts without its newline."""
        stats, _ = classify(f"{T0} ok\n{T0} ERROR: x".encode(), default_rules, engine)
        assert (stats.lines, stats.errors) == (2, 1)


class TestStreams:
    def test_stdin_pipe(self, default_rules: SourceRules, engine: Engine) -> None:
        """A pipe that delivers in small pieces reads like a file."""
        data = b"".join(f"{T0} line {i}\n".encode() for i in range(5000)) + f"{T0} ERROR: end\n".encode()
        read_fd, write_fd = os.pipe()

        def writer() -> None:
            with os.fdopen(write_fd, "wb", buffering=0) as w:
                for i in range(0, len(data), 4096):
                    w.write(data[i : i + 4096])

        thread = threading.Thread(target=writer)
        thread.start()
        with os.fdopen(read_fd, "rb") as r:
            stats = classify_stream(r, "stdin", default_rules, engine=engine)
        thread.join()
        assert (stats.lines, stats.errors, stats.bytes) == (5001, 1, len(data))

    def test_progress(self, default_rules: SourceRules, engine: Engine) -> None:
        """progress gets the bytes read so far after each chunk."""
        seen: list[int] = []
        data = f"{T0} x\n".encode() * 100
        classify_stream(
            io.BytesIO(data), "e", default_rules, progress=seen.append, engine=engine, chunk_size=1000
        )
        assert seen[-1] == len(data) and seen == sorted(seen)

    def test_hyperscan_unavailable(self, default_rules: SourceRules, monkeypatch: pytest.MonkeyPatch) -> None:
        """Asking for hyperscan where it is not installed is an InputError."""
        monkeypatch.setattr("watcher.classify.stream.HYPERSCAN", False)
        with pytest.raises(InputError, match="hyperscan"):
            classify(b"", default_rules, "hyperscan")


class TestStreamScanner:
    """A live source's chunks: continuations must arrive with their head, and what it wrote when."""

    def scanner(self, **kw: object) -> StreamScanner:
        error = RuleConfig(name="error", regex="ERROR|Traceback")
        rules = RuleSet.compile([error], []).for_source("edge")
        return StreamScanner("edge", rules, max_line_bytes=1 << 20, **kw)  # type: ignore[arg-type]

    def test_a_frame_with_its_head_continues_it(self) -> None:
        """Lines fed within CONTINUATION_GRACE of each other group as in a file."""
        sc = self.scanner()
        sc.feed(b"2026-11-27T14:05:00Z Traceback (most recent call last):\n", now=100.0)
        sc.feed(b'  File "a.py", line 1\nValueError: bad\n', now=100.0 + CONTINUATION_GRACE / 2)
        assert (sc.stats.records, sc.stats.errors) == (1, 1)

    def test_a_frame_arriving_late_is_a_record_of_its_own(self) -> None:
        """An indented error line read seconds after the line before it is its own record, at its arrival."""
        sc = self.scanner()
        sc.feed(b"2026-11-27T14:05:00Z INFO handled\n", now=100.0)
        found = sc.feed(b"    ERROR: worker lost\n", now=105.0)
        assert [(e.at, e.message) for e in found.errors] == [(105.0, "    ERROR: worker lost")]
        assert sc.stats.records == 2

    def test_times_are_the_first_and_last_stamps_or_every_one_when_sparse(self) -> None:
        """A live chunk's record times: its first and last stamps; all of them when it spans long."""
        sc = self.scanner()
        dense = b"2026-11-27T14:05:00Z a\n2026-11-27T14:05:00.5Z b\n2026-11-27T14:05:01Z c\n"
        got = sc.feed(dense, now=1.0)
        assert got.times == [AT, AT + 1] and got.newest == AT + 1
        sparse = b"2026-11-27T14:05:00Z a\n2026-11-27T14:06:00Z b\n2026-11-27T14:07:00Z c\n"
        assert sc.feed(sparse, now=2.0).times == [AT, AT + 60, AT + 120]
        assert sc.feed(b"no stamp here\n", now=3.0).times == [3.0]

    def test_expect_match_times_only_matching_records(self) -> None:
        """With expect_match, only its records are times of evidence."""
        sc = self.scanner(expect_match="heartbeat ok")
        data = b"2026-11-27T14:05:00Z heartbeat ok\n2026-11-27T14:05:01Z other\nheartbeat ok\n"
        got = sc.feed(data, now=9.0)
        assert got.times == [AT, 9.0] and got.newest == AT + 1


class TestBacktrackingRule:
    """Issue case 4: `regex = '(a+)+$'` froze the daemon on a 34-character line."""

    @pytest.mark.parametrize("engine", ENGINES)
    def test_every_engine_classifies_the_issues_lines_at_once(self, engine: str) -> None:
        """34 a's and a '!', then a megabyte of them: done within seconds (a thread, so a hang fails)."""
        rules = RuleSet.compile([RuleConfig(name="nested", regex="(a+)+$")], []).for_source("edge")
        data = b"a" * 34 + b"!\n" + b"a" * 1_000_000 + b"!\n" + b"a" * 34 + b"\n"
        done: list[tuple[ClassifyStats, list[ErrorEvent]]] = []
        worker = threading.Thread(target=lambda: done.append(classify(data, rules, engine)), daemon=True)
        worker.start()
        worker.join(timeout=20)
        assert done, f"{engine}: still matching after 20 s"
        stats, events = done[0]
        assert stats.lines == 3 and [e.message for e in events] == ["a" * 34]
