"""Secrets out of text that leaves the machine: announcements, snapshots with `--redact`.

`redact(text, extra)` is pure and idempotent: what it writes is never matched again,
so redacting twice gives the same text. It errs on the side of hiding too much (a
`token_count=5` loses its 5): a log line in a Slack channel is read by many people,
and a leaked credential costs more than a hidden number.

Linear in the text: log lines are attacker-controlled, and a pattern such as
`\\b[\\w.-]*token[\\w.-]*=` is quadratic (cubic when the keyword repeats) under Python's
backtracking `re`: 8 KB of `token.` took minutes. Such rules are written as a search
for an anchor (a run of key characters, a `://`, an `eyJ`) followed by one match that
cannot backtrack, and a failed attempt skips every later start that would fail the
same way. The results are those of the plain regexes (tests/notify/test_redact.py
compares them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MARK = "[REDACTED]"

_NOT_MARK = r"(?!\[REDACTED)"

# Private key blocks first: their base64 body must not be half-eaten by the rules below.
# A block cut off by truncation (no END line) is hidden to the end of the text.
_PRIVATE_KEY = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)", re.DOTALL
)
_JWT_START = re.compile(r"\beyJ")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_JWT_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
# HTTP headers written as `Name: value` run to the end of the line.
_HEADER = re.compile(
    r"(?im)\b((?:proxy-)?authorization|(?:set-)?cookie|x-api-key|x-auth-token)"
    rf"(\s*:[ \t]*){_NOT_MARK}(?![\"'])[^\r\n]+"
)
_SCHEME = re.compile(rf"(?i)\b(bearer|basic|token)([ \t]+){_NOT_MARK}[A-Za-z0-9._~+/=-]{{8,}}")
# key=value, key: value, "key": "value" for any key naming a credential: a run of key
# characters holding a keyword, then a separator and a value (see _pairs).
_KEY_RUN = re.compile(r"[\w.-]+")
_KEYWORD = re.compile(r"(?i)passw(?:or)?d|pwd|secret|token|api[_-]?key|authorization|cookie|credentials?")
_SEPARATED_VALUE = re.compile(
    rf"([\"']?[ \t]*+[:=][ \t]*+){_NOT_MARK}"
    r"(\"(?:[^\"\\\r\n]|\\.)*\"|'[^'\r\n]*'|[^\s,;&\"'}\]]+)"
)
# scheme://user:password@host: found from its `://` (see _url_passwords).
_SCHEME_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-\u0130\u0131\u017f\u212a"
)
"""`(?i)[a-z0-9+.-]`: with IGNORECASE Python's `[a-z]` also takes these four letters."""
_USERINFO = re.compile(rf"([^\s:/@\"']*:){_NOT_MARK}[^\s@/\"']+@")
_KEYS = re.compile(
    r"\b(?:xox[abposr]-[A-Za-z0-9-]{6,}|xapp-[A-Za-z0-9-]{6,}|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|github_pat_[A-Za-z0-9_]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16})\b"
)
_SLACK_HOOK = re.compile(r"(?i)(hooks\.slack\.com/(?:services|workflows|triggers)/)[^\s\"'<>]+")

MIN_LITERAL = 6
"""Extra literals shorter than this are ignored: hiding every `abc` would hide the log itself."""


def _pairs(text: str) -> str:
    """`\\b([\\w.-]*KEYWORD[\\w.-]*)` + separator + value, the value replaced, in linear time.

    The key can only end where its run of `[\\w.-]` ends (no separator character is in
    it), and starts at the run's first word character (the leftmost `\\b` in it): each
    run is looked at once, instead of once per `\\b` in it and once per keyword.
    """
    out: list[str] = []
    last = pos = 0
    while (run := _KEY_RUN.search(text, pos)) is not None:
        pos = run.end()
        if not _KEYWORD.search(run.group()):
            continue
        m = _SEPARATED_VALUE.match(text, pos)
        if m is None:
            continue
        start = run.start()
        while not _word(text[start]):
            start += 1
        value = m.group(2)
        quote = value[0] if value[:1] in ('"', "'") else ""
        out += [text[last:start], text[start:pos], m.group(1), quote, MARK, quote]
        last = pos = m.end()
    out.append(text[last:])
    return "".join(out)


def _url_passwords(text: str) -> str:
    """`\\b([a-z][a-z0-9+.-]*://[^\\s:/@"']*:)` + password + `@`, the password replaced, in linear time.

    Found from each `://`: its scheme is the run of scheme characters before it, from its
    first letter at a word boundary; the rest can be matched one way only.
    """
    out: list[str] = []
    last = 0
    at = text.find("://")
    while at >= 0:
        start = _scheme_start(text, at, last)
        m = None if start is None else _USERINFO.match(text, at + 3)
        if start is None or m is None:
            at = text.find("://", at + 1)
            continue
        out += [text[last:start], text[start : at + 3], m.group(1), MARK, "@"]
        last = m.end()
        at = text.find("://", last)
    out.append(text[last:])
    return "".join(out)


def _scheme_start(text: str, at: int, floor: int) -> int | None:
    """Where the scheme ending at `at` starts (not before `floor`), or None when there is none."""
    first = at
    while first > floor and text[first - 1] in _SCHEME_CHARS:
        first -= 1
    for start in range(first, at):
        letter = text[start].isalpha() and text[start] in _SCHEME_CHARS
        if letter and (start == 0 or not _word(text[start - 1])):
            return start
    return None


def _jwts(text: str) -> str:
    """`\\beyJ...` tokens replaced; a failed start skips its segment (every start in it fails alike)."""
    out: list[str] = []
    last = pos = 0
    while (start := _JWT_START.search(text, pos)) is not None:
        m = _JWT.match(text, start.start())
        if m is None:
            segment = _JWT_SEGMENT.match(text, start.start())
            pos = segment.end() if segment is not None else start.end()
            continue
        out += [text[last : m.start()], MARK]
        last = pos = m.end()
    out.append(text[last:])
    return "".join(out)


def _word(c: str) -> bool:
    """Python's `\\w`, which `\\b` is the edge of."""
    return c.isalnum() or c == "_"


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """`text` with credentials replaced by `[REDACTED]`; `extra` are literal secrets to hide too.

    Hidden: Authorization/Cookie/X-Api-Key headers, Bearer/Basic/Token credentials,
    values of keys naming a password, secret, token, API key or cookie (key=value,
    key: value and JSON "key": "value"), passwords in URLs, JWTs, private key blocks,
    Slack (xox*, xapp-), GitHub (ghp_ and friends) and AWS (AKIA/ASIA) keys, Slack
    webhook paths, and every literal in `extra` (such as the configured webhook URLs).
    """
    for literal in sorted({s for s in extra if len(s) >= MIN_LITERAL}, key=len, reverse=True):
        text = text.replace(literal, MARK)
    text = _PRIVATE_KEY.sub(MARK, text)
    text = _jwts(text)
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MARK}", text)
    text = _SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{MARK}", text)
    text = _pairs(text)
    text = _url_passwords(text)
    text = _KEYS.sub(MARK, text)
    return _SLACK_HOOK.sub(lambda m: f"{m.group(1)}{MARK}", text)


def redact_doc(value: object, extra: Iterable[str] = ()) -> object:
    """A JSON document with `redact` applied to every string in it (keys stay as they are)."""
    secrets = tuple(extra)
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {str(k): redact_doc(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_doc(v, secrets) for v in value]
    return value
