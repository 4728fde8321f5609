"""One line of log text into its own time, its message and its fields (docs/architecture.md, "Records").

Where the time comes from, first that applies:

1. a leading RFC 3339 timestamp (`docker logs -t`, Python logging's `2026-11-27 14:05:00,123`),
   stripped from the message with one space or tab after it; the text after it is read
   again, so a body with its own leading timestamp (Python logging inside Docker)
   loses that one too, and the outer (Docker's) time wins;
2. for a message starting with `{`: a `ts`, `time`, `timestamp` or `@timestamp` key
   anywhere in it (in that order of preference) with an RFC 3339 string or an epoch
   number;
3. otherwise a logfmt `ts=` or `time=` pair.

Times are recognised by their shape, not by parsing the whole line, so that a JSON line
cut by max_line_bytes keeps its time and so that the fast scanner (scan.py) can
decide "this line has a time of its own" with the very regexes used here
(`timed_pattern`). A timestamp is `YYYY-MM-DD[T ]hh:mm:ss` with an optional `.`/`,`
fraction and an optional `Z`/`±hh:mm` offset (none means UTC); whatever follows it is
not looked at. An epoch number has at most 19 digits and ends at a quote, comma,
bracket, space or the end; values above 1e11 are taken as milliseconds (then µs, ns).
Field values are parsed lazily, on first access, because most lines never reach a
field rule.

Every regex here is ASCII-only and never matches a newline: the scanner runs the same
sources over whole buffers of bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import MappingProxyType

from watcher.config.base import Format
from watcher.times import STAMP

_TS = re.compile(STAMP)
# The same shape without groups, to build other regexes from; a line starts with a
# timestamp exactly when it starts with DATE_TIME, since all that follows is optional.
TIMESTAMP = re.sub(r"\((?!\?)", "(?:", _TS.pattern)
DATE_TIME = TIMESTAMP[: TIMESTAMP.index("(?:[.,]")]
EPOCH = r"[0-9]{1,19}(?:\.[0-9]+)?(?=[\"',}\] \t\r]|$)"
JSON_TIME_KEYS = ("ts", "time", "timestamp", "@timestamp")
LOGFMT_TIME_KEYS = ("ts", "time")
_SP = r"[ \t\r]*"  # JSON whitespace within one line
_VALUE = rf"\"?(?={DATE_TIME}|{EPOCH})"
REALTIME = rf'"__REALTIME_TIMESTAMP"{_SP}:{_SP}"([0-9]{{1,19}})"'
# The string's body unrolled (runs of plain bytes between escapes): the same text, a few
# times faster than an alternation tried at every byte.
MESSAGE_TOKEN = rf'"MESSAGE"{_SP}:{_SP}(?:"([^"\\\n]*+(?:\\.[^"\\\n]*+)*+)"|\[([0-9, \t\r]*)\])'
_KEY_START = r"(?<![^ \t])"  # a logfmt key starts the text or follows a space or tab

_LEAD = re.compile(_TS.pattern + r"[ \t]?")
_EPOCH = re.compile(EPOCH)
_REALTIME = re.compile(REALTIME)
_MESSAGE = re.compile(MESSAGE_TOKEN)
_PAIR = re.compile(_KEY_START + r'([^ \t="]+)=(?:"((?:[^"\\]|\\.)*+)"|([^ \t]*))')
_ESCAPE = re.compile(r"\\(.)")
_UNESCAPE = {"n": "\n", "t": "\t", "r": "\r"}
_EPOCH_DAY = date(1970, 1, 1).toordinal()
_NO_FIELDS: Mapping[str, object] = MappingProxyType({})
_REMEMBER = 8192
"""Characters of the longest line whose parse a LineParser keeps for the next call."""
_JSON_FORMATS = ("auto", "docker", "journal", "json")
_LOGFMT_FORMATS = ("auto", "docker", "journal", "logfmt")


def later_in_line(x: str) -> str:
    r"""Regex for `[^\n]*?x`, where `x` starts with a double quote and nothing after it in the
    pattern can backtrack into it (it ends the pattern, an alternative or a lookahead): the
    same lines match, x at the same first place, but the search skips from quote to quote in
    C rather than trying x at every byte (a journal record a few times faster). Groups in x
    do not capture."""
    assert x.startswith('"') and "\\(" not in x
    rest = re.sub(r"\((?!\?)", "(?:", x[1:])
    return rf'(?:[^\n"]*+"(?!{rest}))*+[^\n"]*+"{rest}'


def _time_key(keys: tuple[str, ...], in_json: bool, group: str = "(", value: str = _VALUE) -> str:
    """A JSON `"key":` or logfmt `key=` (without its boundary) followed by a time value."""
    alternatives = "|".join(re.escape(k) for k in keys)
    key = f'"{group}{alternatives})"{_SP}:{_SP}' if in_json else f"{group}{alternatives})="
    return key + value


def time_key_start(fmt: Format) -> str | None:
    """Regex for a line start of JSON `{"ts":` or logfmt `ts=` kind, before a time value.

    A line that starts with it and then DATE_TIME has its own time, and (outside journal
    records) its message is the whole line; None when `fmt` reads no time keys.
    """
    starts = []
    if fmt in _JSON_FORMATS:
        starts.append(rf'\{{"(?:{"|".join(re.escape(k) for k in JSON_TIME_KEYS)})":"?')
    if fmt in _LOGFMT_FORMATS:
        starts.append(f'(?:{"|".join(re.escape(k) for k in LOGFMT_TIME_KEYS)})="?')
    return f"(?:{'|'.join(starts)})" if starts else None


def timed_pattern(fmt: Format) -> str:
    """Regex source that matches at the start of a line exactly when `LineParser(fmt)` finds its time.

    For the default keys; the scanner uses it to find the lines without a time of their own.
    The first alternative is a shortcut for the usual shapes (a leading timestamp, or a
    line that starts with its time key); the others are the general rules.
    """
    key_start = time_key_start(fmt)
    shapes = [DATE_TIME if key_start is None else f"{key_start}?{DATE_TIME}"]
    if fmt in _JSON_FORMATS:
        shapes.append(r"\{" + later_in_line(_time_key(JSON_TIME_KEYS, in_json=True, group="(?:")))
    if fmt in _LOGFMT_FORMATS:
        not_json = "" if fmt == "logfmt" else r"(?!\{)"
        shapes.append(
            not_json + r"(?:[^\n]*?[ \t])??" + _time_key(LOGFMT_TIME_KEYS, in_json=False, group="(?:")
        )
    if fmt == "journal":
        shapes.append(r"\{" + later_in_line(REALTIME))
    return "(?:" + "|".join(shapes) + ")"


@dataclass(frozen=True, slots=True)
class ParsedLine:
    at: float | None
    """The line's own timestamp, epoch seconds UTC; None when it has none."""
    message: str
    """The text after a leading timestamp; for a journald record, its MESSAGE."""
    fields: Mapping[str, object]
    """JSON top-level keys, logfmt pairs or journald fields; empty when there are none."""


class LineParser:
    """Parses lines of one source; `fmt` says which shapes to look for (see the module doc).

    `auto` and `docker` read all of them (a docker file is an auto file whose lines all
    start with a timestamp), `json` and `logfmt` only their own fields, `text` no fields,
    `journal` reads `journalctl -o json` records and other lines as `auto`.
    `timestamp_field` replaces the default time keys; `timestamp_format` is a strptime
    format for its value (no zone in the format means UTC).
    """

    def __init__(
        self,
        fmt: Format = "auto",
        timestamp_field: str | None = None,
        timestamp_format: str | None = None,
    ) -> None:
        self.fmt: Format = fmt
        self._journal = fmt == "journal"
        self._json = fmt in _JSON_FORMATS
        self._logfmt = fmt in _LOGFMT_FORMATS
        self._logfmt_all = fmt == "logfmt"  # logfmt even on lines that start with `{`
        keys = (timestamp_field,) if timestamp_field else None
        self._format = timestamp_format
        # With a strptime format any string value may be a time; strptime decides.
        value = _VALUE if timestamp_format is None else r"(?=\S)"
        self._json_time = re.compile(_time_key(keys or JSON_TIME_KEYS, in_json=True, value=value))
        self._logfmt_time = re.compile(
            _KEY_START + _time_key(keys or LOGFMT_TIME_KEYS, in_json=False, value=value)
        )
        self._last: tuple[str, ParsedLine] | None = None

    def parse(self, text: str) -> ParsedLine:
        # A live chunk of one line (a journal entry) has that line parsed for its time, its
        # rules and its evidence: the last short line's result is kept (a ParsedLine is immutable).
        last = self._last
        if last is not None and last[0] == text:
            return last[1]
        parsed = self._parse(text)
        if len(text) <= _REMEMBER:
            self._last = text, parsed
        return parsed

    def _parse(self, text: str) -> ParsedLine:
        if self._journal and text[:1] == "{":
            record = _journal_record(text)
            if record is not None:
                return record
        lead = _LEAD.match(text)
        if lead is not None:
            body = text[lead.end() :]
            inner = _LEAD.match(body)
            if inner is not None:
                body = body[inner.end() :]
            return ParsedLine(_epoch(lead), body, self._fields(body))
        return ParsedLine(self._embedded_time(text), text, self._fields(text))

    def _embedded_time(self, text: str) -> float | None:
        if text[:1] == "{" and not self._logfmt_all:
            if not self._json:
                return None
            pattern = self._json_time
        elif self._logfmt:
            pattern = self._logfmt_time
        else:
            return None
        best: tuple[int, float] | None = None
        for m in pattern.finditer(text):
            rank = self._rank(m.group(1))
            if best is not None and rank >= best[0]:
                continue
            at = self._value(text, m.end())
            if at is not None:
                best = (rank, at)
                if rank == 0:
                    break
        return best[1] if best else None

    def _rank(self, key: str) -> int:
        keys = JSON_TIME_KEYS if key in JSON_TIME_KEYS else (key,)
        return keys.index(key)

    def _value(self, text: str, pos: int) -> float | None:
        if self._format is not None:
            return _strptime(text, pos, self._format)
        ts = _TS.match(text, pos)
        if ts is not None:
            return _epoch(ts)
        num = _EPOCH.match(text, pos)
        return _epoch_number(num.group()) if num is not None else None

    def _fields(self, body: str) -> Mapping[str, object]:
        if body[:1] == "{" and self._json and not self._logfmt_all:
            return _LazyFields(body, _json_or_logfmt if self._logfmt else _json_only)
        if self._logfmt and "=" in body:
            return _LazyFields(body, logfmt_fields)
        return _NO_FIELDS


def sniff_format(head: bytes) -> Format:
    """`journal`, `docker` or `auto`, from the first lines of a file (its first 64 KiB will do)."""
    lines = [ln.rstrip(b"\r") for ln in head.split(b"\n")[:-1] or [head]]
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        return "auto"
    if all(_is_journal_json(ln) for ln in lines[:5]):
        return "journal"
    stamped = sum(1 for ln in lines if _DOCKER_TS.match(ln))
    return "docker" if stamped >= 0.9 * len(lines) else "auto"


_DOCKER_TS = re.compile(
    rb"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-9]{2}) "
)


def _is_journal_json(line: bytes) -> bool:
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return False
    return isinstance(obj, dict) and "__REALTIME_TIMESTAMP" in obj


def _epoch(m: re.Match[str]) -> float:
    """Seconds of a TIMESTAMP match; out-of-range fields roll over like timegm's."""
    y, mo, d, h, mi, s, frac, sign, oh, om = m.groups()
    return with_zone(seconds(y, mo, d, h, mi, s), frac, sign, oh, om)


def seconds(
    y: str | bytes, mo: str | bytes, d: str | bytes, h: str | bytes, mi: str | bytes, s: str | bytes
) -> int:
    """Whole seconds of a date and time read as UTC (str or bytes digits, as a TIMESTAMP has them)."""
    year, month0 = divmod(int(y) * 12 + int(mo) - 1, 12)
    days = date(year, month0 + 1, 1).toordinal() - _EPOCH_DAY + int(d) - 1
    return days * 86400 + int(h) * 3600 + int(mi) * 60 + int(s)


def with_zone(
    at: int,
    frac: str | bytes | None,
    sign: str | bytes | None,
    oh: str | bytes | None,
    om: str | bytes | None,
) -> float:
    """`at` (UTC seconds of the local time) moved by the zone offset, plus the fraction."""
    if sign is not None and oh is not None and om is not None:
        offset = int(oh) * 3600 + int(om) * 60
        at += -offset if sign in ("+", b"+") else offset
    if not frac:
        return float(at)
    return at + float("0." + frac if isinstance(frac, str) else b"0." + frac)


def _epoch_number(text: str) -> float:
    value = float(text)
    while value > 1e11:  # milliseconds, microseconds or nanoseconds since the epoch
        value /= 1000
    return value


def _strptime(text: str, pos: int, fmt: str) -> float | None:
    if text[pos : pos + 1] == '"':
        end = text.find('"', pos + 1)
        raw = text[pos + 1 : end if end >= 0 else len(text)]
    else:
        raw = re.split(r"[\s,}]", text[pos:], maxsplit=1)[0]
    try:
        dt = datetime.strptime(raw, fmt)
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _journal_record(text: str) -> ParsedLine | None:
    realtime = _REALTIME.search(text)
    if realtime is None:
        return None
    token = _MESSAGE.search(text)
    message = "" if token is None else _journal_message(token)
    return ParsedLine(int(realtime.group(1)) / 1e6, message, _LazyFields(text, _json_only))


def _journal_message(token: re.Match[str]) -> str:
    text, byte_list = token.groups()
    if text is not None:
        if "\\" not in text:  # nothing escaped, as most messages: the JSON string is the text
            return text
        try:
            decoded: str = _STRING.decode(f'"{text}"')
        except ValueError:
            return text
        try:
            decoded.encode()
        except UnicodeEncodeError:  # a lone surrogate escape; it could not be printed
            return decoded.encode("utf-8", "replace").decode()
        return decoded
    try:  # journald writes a MESSAGE that is not UTF-8 as a list of byte values
        data = bytes(int(b) for b in byte_list.replace(",", " ").split())
    except ValueError:
        return ""
    return data.decode("utf-8", errors="replace")


def _no_constant(name: str) -> None:
    """NaN and Infinity are neither numbers nor strings to a rule."""


# Decoders made once: json.loads with an option builds a new one on every call.
_OBJECT = json.JSONDecoder(parse_constant=_no_constant)
_STRING = json.JSONDecoder(strict=False)


def _json_only(text: str) -> dict[str, object]:
    try:
        obj = _OBJECT.decode(text)
    except (ValueError, RecursionError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _json_or_logfmt(text: str) -> dict[str, object]:
    """A `{` line that is not a JSON object is just text, which may still carry pairs."""
    try:
        obj = _OBJECT.decode(text)
    except (ValueError, RecursionError):
        return logfmt_fields(text)
    return obj if isinstance(obj, dict) else {}


def logfmt_fields(text: str) -> dict[str, object]:
    """`key=value` and `key="quoted \\"value\\""` pairs; the last of a repeated key wins."""
    out: dict[str, object] = {}
    for m in _PAIR.finditer(text):
        key, quoted, bare = m.groups()
        if quoted is None:
            out[key] = bare
        else:
            out[key] = _ESCAPE.sub(_unescape, quoted) if "\\" in quoted else quoted
    return out


def _unescape(escape: re.Match[str]) -> str:
    return _UNESCAPE.get(escape[1], escape[1])


class _LazyFields(Mapping[str, object]):
    """Fields parsed on first access: most lines never meet a field rule."""

    __slots__ = ("_data", "_load", "_text")

    def __init__(self, text: str, load: Callable[[str], dict[str, object]]) -> None:
        self._text = text
        self._load = load
        self._data: dict[str, object] | None = None

    def _fields(self) -> dict[str, object]:
        if self._data is None:
            self._data = self._load(self._text)
        return self._data

    def __getitem__(self, key: str) -> object:
        return self._fields()[key]

    def __contains__(self, key: object) -> bool:
        return key in self._fields()

    def get(self, key: str, default: object = None) -> object:
        return self._fields().get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields())

    def __len__(self) -> int:
        return len(self._fields())

    def __repr__(self) -> str:
        return repr(self._fields())
