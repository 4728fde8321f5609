"""Durations (`90s`, `15m`, `2h`) and RFC 3339 UTC times as users type and read them.

The one home for what a duration may be, wherever it is typed (config, environment,
command line, API body): text with a unit on every number, finite, and within the
`Span` of the setting it is for. A bare `15` is refused rather than guessed: it is as
likely to mean minutes as seconds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

STAMP = (
    r"([12][0-9]{3})-([01][0-9])-([0-3][0-9])[Tt ]([0-2][0-9]):([0-5][0-9]):([0-6][0-9])"
    r"(?:[.,]([0-9]+))?(?:[Zz]|([+-])([0-2][0-9]):?([0-5][0-9]))?"
)
"""A timestamp as logs write it at the start of a line: RFC 3339, or with a space and a comma
(Python's logging). Groups: year, month, day, hour, minute, second, fraction, offset sign, hours,
minutes."""
_LEADING_STAMP = re.compile(STAMP + r"[ \t]+")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_TEXT = 32
"""Longest duration text read: `1h30m15s` is 8 characters; a 400-digit number is an attack."""
EXAMPLES = "such as 90s, 15m or 2h"
DAY = 86400.0
YEAR = 366 * DAY


@dataclass(frozen=True, slots=True)
class Span:
    """The range a setting's duration must lie in, inclusive."""

    lo: float
    hi: float

    def check(self, seconds: float) -> float:
        if not self.lo <= seconds <= self.hi:
            raise ValueError(
                f"must be between {format_duration(self.lo)} and {format_duration(self.hi)}, "
                f"got {format_duration(seconds)}"
            )
        return seconds

    def __str__(self) -> str:
        return f"{format_duration(self.lo)}..{format_duration(self.hi)}"


ANY = Span(0.0, YEAR)
"""What any duration may be: zero up to a year (beyond that, it is a typo)."""
POSITIVE = Span(0.001, YEAR)
WINDOW = Span(1.0, DAY)
"""An incident's clean window: config, `incident open --window`, the API, `replay --window`."""
SINCE = Span(1.0, YEAR)
"""How far back a snapshot reaches (`--since`)."""


def parse_duration(text: object, span: Span = ANY) -> float:
    """Seconds in `text` (`90s`, `15m`, `2h`, `1h30m`, `250ms`), checked against `span`.

    ValueError with the sentence a user reads for anything else: a number without a
    unit (a TOML or JSON number too), a negative, infinite or absurdly long value.
    """
    if isinstance(text, int | float) and not isinstance(text, bool):  # a TOML or JSON number
        if abs(text) >= 10**MAX_TEXT or not math.isfinite(text):
            raise ValueError(f"expected a duration {EXAMPLES}, got a number without a unit")
        raise ValueError(_no_unit(f"{text:g}" if isinstance(text, float) else str(text)))
    if not isinstance(text, str):
        raise ValueError(f"expected a duration {EXAMPLES}, got {_shown(text)}")
    s = text.strip()
    if len(s) > MAX_TEXT:
        raise ValueError(f"expected a duration {EXAMPLES}, got {len(s)} characters")
    if _NUMBER.fullmatch(s):
        raise ValueError(_no_unit(s))
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s or not math.isfinite(total):
        raise ValueError(f"expected a duration {EXAMPLES}, got {_shown(text)}")
    return span.check(total)


def positive_duration(text: object) -> float:
    """`parse_duration`, refusing zero: a window, interval or timeout of 0s means nothing."""
    seconds = parse_duration(text)
    if seconds <= 0:
        raise ValueError("must be longer than 0s")
    return seconds


def _no_unit(number: str) -> str:
    return f"{number} has no unit: write {number}s or {number}m (durations {EXAMPLES})"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 2 * MAX_TEXT else text[: 2 * MAX_TEXT] + "…"


def format_duration(seconds: float) -> str:
    """Shortest exact spelling: 900 -> `15m`, 5400 -> `1h30m`, 1.5 -> `1.5s`."""
    if not math.isfinite(seconds):
        return f"{seconds}s"  # never from input (parse_duration refuses it), but never a crash either
    if seconds < 0:
        return "-" + format_duration(-seconds)
    whole = int(seconds)
    if whole != seconds or whole == 0:
        return f"{seconds:g}s"
    parts = []
    # Days only from two on: `24h` reads better than `1d`, `8784h` worse than `366d`.
    units = (("d", 86400),) if whole >= 2 * 86400 else ()
    for unit, size in (*units, ("h", 3600), ("m", 60), ("s", 1)):
        n, whole = divmod(whole, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)


def parse_time(text: str) -> float:
    """Epoch seconds of an RFC 3339 time; a time without an offset is taken as UTC."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    # fromisoformat takes at most microseconds; keep what it can represent.
    m = re.fullmatch(r"(.*?\.\d{6})\d+(.*)", s)
    if m:
        s = m.group(1) + m.group(2)
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(
            f"expected an RFC 3339 time such as 2026-11-27T14:05:00Z, got {_shown(text)}"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def without_leading_stamp(text: str) -> str:
    """`text` without a timestamp it starts with: a message shown beside its time need not repeat it
    (a journal entry or a container line that carries the program's own stamp)."""
    return _LEADING_STAMP.sub("", text, count=1) if text[:1].isdigit() else text


def short_time(at: str | None, today: str = "") -> str:
    """`14:05:03Z` of an RFC 3339 UTC time from the API on `today` (`2026-11-27`), else
    `2026-11-26 14:05:03Z`: a view watched during an incident needs the date only when it is not today."""
    if not at:
        return "-"
    if len(at) < 19 or at[10] != "T":
        return at
    clock = at[11:19] + "Z"
    return clock if at[:10] == today else f"{at[:10]} {clock}"


def human_time(at: float) -> str:
    """`2026-11-27 14:05:03Z`: a time in a sentence people read (UTC, to the second)."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def format_time(at: float | None) -> str | None:
    """RFC 3339 UTC with milliseconds, `Z` suffix; None stays None."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
