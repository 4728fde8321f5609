"""Multi-line records: a head line and its continuation lines make one record, one event.

A line continues the record before it only when it *looks like* a continuation
(`is_continuation`); a line without a timestamp of its own that does not is a record
of its own (DESIGN §2.1: `ERROR: ...` lines written without a stamp after a stamped
one are each an error). A continuation line:

1. has a message that is empty or only whitespace, or starts with a space or tab
   (traceback frames, Java's `\\tat ...`, Go's `\\t/app/main.go:10 +0x1d`);
2. has a message that starts with `Caused by: `, `Suppressed: `, `... N more`, `goroutine N [`,
   `[signal `, `created by `, `During handling of the above exception`,
   `The above exception was the direct cause`, or is `exit status N`;
3. the message before starts with a space or tab and this one is the last line of a
   Python traceback (`ValueError: bad frame`), or the message before starts with
   `goroutine ` or a tab and this one is a Go function line (`main.(*Srv).handle(0xc0)`);
4. the message before is blank and this one is `Traceback (most recent call last):`
   (a chained exception).

Everything else, and the first line of a source, starts a new record. The decision
depends only on this line and the one before it, which is what lets the fast scanner
(scan.py) skip the lines that cannot be continuations. A live source also needs the
line to arrive with its head (`SourceClassifier.break_context`, called by
stream.StreamScanner when lines come more than a moment apart): a frame-like line read
long after the line before it is a record of its own. A record is an error when
any of its lines matches an error rule that no ignore rule vetoes; it counts once,
under the rule of its first matching line, with that line as the event's message and
the head's time as its time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from watcher.classify import framing
from watcher.classify.lines import LineParser, ParsedLine
from watcher.classify.rules import SourceRules
from watcher.config.base import Format
from watcher.events import ErrorEvent

_PREFIXES = (
    "Caused by: ",
    "Suppressed: ",
    r"\.\.\. [0-9]+ more",
    r"goroutine [0-9]+ \[",
    r"\[signal ",
    "created by ",
    "During handling of the above exception",
    "The above exception was the direct cause",
)
_CONTINUES = re.compile("|".join(_PREFIXES) + r"|exit status [0-9]+\Z")
_PY_FINAL = re.compile(
    r"[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Failure|Fault)(?:: .*)?", re.S
)
_GO_FUNC = re.compile(r"[\w./*()\[\]-]+\.[\w.*()\[\]-]*\(.*\)", re.S)
_TRACEBACK = "Traceback (most recent call last):"

# Regex source, to compile as bytes, for the start of every message that may continue a
# record whatever came before (rules 1 and 2) or make the next line one (rules 3 and 4):
# whitespace, including the non-ASCII spaces str.isspace() knows (as UTF-8), the end of
# the line, or a prefix. `goroutine ` is wider than rule 2's `goroutine N [` because
# rule 3 looks for it.
BLANK_BYTES = r"[ \t\n\x0b\x0c\r\x1c-\x1f]"
NON_ASCII_SPACES = r"\xc2[\x85\xa0]|\xe1\x9a\x80|\xe2\x80[\x80-\x8a\xa8\xa9\xaf]|\xe2\x81\x9f|\xe3\x80\x80"
"""The spaces str.isspace() knows beyond ASCII, as UTF-8."""
PREFIX_STARTS = ("goroutine ", "exit status [0-9]", *_PREFIXES)
CONTINUATION_START = "|".join([BLANK_BYTES, NON_ASCII_SPACES, *PREFIX_STARTS])
CONTINUATION_FIRST = r"[ \t\n\x0b\x0c\r\x1c-\x1f\xc2\xe1\xe2\xe3geCS.\[cDT]"
"""The first bytes of CONTINUATION_START's alternatives (tests check they agree)."""


def is_continuation(prev_message: str | None, message: str) -> bool:
    """Whether `message` continues the record of `prev_message` (None: no line before it, or
    none it arrived with)."""
    if prev_message is None:
        return False
    if continues_alone(message):
        return True
    first = prev_message[:1]
    if first in (" ", "\t") and _PY_FINAL.fullmatch(message):
        return True
    if (first == "\t" or prev_message.startswith("goroutine ")) and _GO_FUNC.fullmatch(message):
        return True
    return message == _TRACEBACK and (not prev_message or prev_message.isspace())


def continues_alone(message: str) -> bool:
    """Whether `message` continues a record whatever the line before it (rules 1 and 2)."""
    return not message or message[0] in " \t" or message.isspace() or bool(_CONTINUES.match(message))


def opens_context(message: str) -> bool:
    """Whether the line after this message can be a continuation by rule 3 or 4 alone."""
    return not message or message[0] in " \t" or message.isspace() or message.startswith("goroutine ")


@dataclass(slots=True)
class ClassifyStats:
    """What a classifier counted; `format` and `bytes` describe a whole file."""

    lines: int = 0
    records: int = 0
    errors_by_rule: dict[str, int] = field(default_factory=dict)
    """Error records per rule, every rule of the source present (0 when none)."""
    ignored_by_rule: dict[str, int] = field(default_factory=dict)
    """Lines an ignore rule kept from being errors, per ignore rule."""
    bad_utf8: int = 0
    truncated: int = 0
    first_at: float | None = None
    """The first own timestamp seen."""
    last_at: float | None = None
    """The last own timestamp seen (a file's watermark for replay)."""
    format: Format = "auto"
    bytes: int = 0

    @property
    def errors(self) -> int:
        return sum(self.errors_by_rule.values())

    @property
    def timed(self) -> bool:
        """Whether any line carried a time of its own."""
        return self.first_at is not None


class SourceClassifier:
    """Streaming classifier for one source: feed it lines in order, get error events back."""

    def __init__(
        self,
        source: str,
        rules: SourceRules,
        parser: LineParser,
        impact: Callable[[ParsedLine], str | None] | None = None,
    ) -> None:
        """`impact`: whom an error record hit (classify/impact.py), asked of its matching line."""
        self.source = source
        self.rules = rules
        self.parser = parser
        self.impact = impact
        self.stats = ClassifyStats(
            errors_by_rule=dict.fromkeys(rules.rule_names, 0),
            ignored_by_rule=dict.fromkeys(rules.ignore_names, 0),
            format=parser.fmt,
        )
        self.prev_message: str | None = None
        self.line_at: float | None = None
        """The own time of the last line fed (None when it had none)."""
        self.stamp_before: Callable[[], float | None] = lambda: self.last_stamp
        """The newest own time of a line before the one being fed: the time of a record whose
        head has none, in a recorded file (the fast scanner replaces it, as it skips lines)."""
        self.last_stamp: float | None = None
        self.arrival: float | None = None
        """When the lines being fed arrived (a live source): the time of a record whose head
        has none. None for a recorded file."""
        self._head_at: float | None = None
        self._counted = False
        self._skipped: Callable[[], ParsedLine] | None = None
        """The last line skip() counted, parsed only if the next line continues its record."""

    def break_context(self) -> None:
        """The next line did not arrive with the one before it: it starts a record."""
        self.prev_message = None
        self._skipped = None

    def feed(
        self,
        text: str,
        at: float | None = None,
        fields: Mapping[str, object] | None = None,
        now: float | None = None,
    ) -> ErrorEvent | None:
        """One line. `at`/`fields` come from sources that know them (Docker's time, journald's
        fields, with `text` then being the message as is); otherwise they are parsed from
        `text`. A record whose head has no time of its own has time `now`, else `arrival`
        (the receive time), else the newest own time before it (a recorded file), else None.
        """
        if fields:  # an empty mapping is a source with nothing to add: parse the text
            line = ParsedLine(at, text, fields)
        else:
            line = self.parser.parse(text)
            if at is not None:
                line = ParsedLine(at, line.message, line.fields)
        stats = self.stats
        stats.lines += 1
        self.line_at = line.at
        skipped, self._skipped = self._skipped, None
        if skipped is not None and continues_alone(line.message):
            head = skipped()
            self._head_at = head.at if head.at is not None else self._untimed(None)
        elif skipped is not None or not is_continuation(self.prev_message, line.message):
            stats.records += 1
            self._head_at = line.at if line.at is not None else self._untimed(now)
            self._counted = False
        if line.at is not None:
            if stats.first_at is None:
                stats.first_at = line.at
            stats.last_at = self.last_stamp = line.at
        self.prev_message = line.message
        rule, ignored = self.rules.match(line)
        if ignored is not None:
            stats.ignored_by_rule[ignored] += 1
        if rule is None or self._counted:
            return None
        self._counted = True
        stats.errors_by_rule[rule] += 1
        org = None if self.impact is None else self.impact(line)
        return ErrorEvent(self.source, self._head_at, rule, line.message, org=org)

    def _untimed(self, now: float | None) -> float | None:
        """The time of a record whose head has none of its own."""
        if now is not None:
            return now
        return self.arrival if self.arrival is not None else self.stamp_before()

    def feed_line(self, line: framing.Line, now: float | None = None) -> ErrorEvent | None:
        """A line from framing.LineSplitter: decoded with replacement, counted if not UTF-8 or cut."""
        text, bad = framing.decode(line)
        self.stats.bad_utf8 += bad
        self.stats.truncated += line.cut > 0
        return self.feed(text, now=now)

    def skip(self, lines: int, last: Callable[[], ParsedLine]) -> None:
        """Count `lines` lines known to start records of their own, to match no rule, and to
        be no line that rules 3 and 4 look at before a continuation.

        `last()` parses the last of them: the head of the record the next line continues,
        if it does (rules 1 and 2 alone then decide), so it is parsed only then. The fast
        scanner calls this for the lines between the ones it must look at, and finds the
        newest own time before a line without one (stamp_before) itself.
        """
        self.stats.lines += lines
        self.stats.records += lines
        self.prev_message = None
        self.line_at = None
        self._skipped = last
        self._counted = False
