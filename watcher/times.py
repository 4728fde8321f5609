"""Durations (`90s`, `15m`, `2h`) and RFC 3339 UTC times as users type and read them."""

from __future__ import annotations

import re
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
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str | float | int) -> float:
    """Seconds in `text`: `90s`, `15m`, `2h`, `1h30m`, or a bare number of seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"duration must not be negative, got {text}")
        return float(text)
    if not isinstance(text, str):
        raise ValueError(f"expected a duration such as 90s, 15m or 2h, got {text!r}")
    s = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", s):
        return float(s)
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"expected a duration such as 90s, 15m or 2h, got {text!r}")
    return total


def positive_duration(text: str | float | int) -> float:
    """`parse_duration`, refusing zero: a window, interval or timeout of 0s means nothing."""
    seconds = parse_duration(text)
    if seconds <= 0:
        raise ValueError("must be longer than 0s")
    return seconds


def format_duration(seconds: float) -> str:
    """Shortest exact spelling: 900 -> `15m`, 5400 -> `1h30m`, 1.5 -> `1.5s`."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    whole = int(seconds)
    if whole != seconds or whole == 0:
        return f"{seconds:g}s"
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
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
        raise ValueError(f"expected an RFC 3339 time such as 2026-11-27T14:05:00Z, got {text!r}") from None
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


def format_time(at: float | None) -> str | None:
    """RFC 3339 UTC with milliseconds, `Z` suffix; None stays None."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
