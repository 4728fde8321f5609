"""Durations (`90s`, `15m`, `2h`) and RFC 3339 UTC times as users type and read them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

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


def format_time(at: float | None) -> str | None:
    """RFC 3339 UTC with milliseconds, `Z` suffix; None stays None."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
