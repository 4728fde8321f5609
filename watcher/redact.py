"""Secrets out of text that leaves the machine: announcements, snapshots with `--redact`.

`redact(text, extra)` is pure and idempotent: what it writes is never matched again,
so redacting twice gives the same text. It errs on the side of hiding too much (a
`token_count=5` loses its 5): a log line in a Slack channel is read by many people,
and a leaked credential costs more than a hidden number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MARK = "[REDACTED]"

_NOT_MARK = r"(?!\[REDACTED)"

# Private key blocks first: their base64 body must not be half-eaten by the rules below.
# A block cut off by truncation (no END line) is hidden to the end of the text.
_PRIVATE_KEY = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)", re.DOTALL
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# HTTP headers written as `Name: value` run to the end of the line.
_HEADER = re.compile(
    r"(?im)\b((?:proxy-)?authorization|(?:set-)?cookie|x-api-key|x-auth-token)"
    rf"(\s*:[ \t]*){_NOT_MARK}(?![\"'])[^\r\n]+"
)
_SCHEME = re.compile(rf"(?i)\b(bearer|basic|token)([ \t]+){_NOT_MARK}[A-Za-z0-9._~+/=-]{{8,}}")
# key=value, key: value, "key": "value" for any key naming a credential.
_PAIR = re.compile(
    r"(?i)\b([\w.-]*(?:passw(?:or)?d|pwd|secret|token|api[_-]?key|authorization|cookie|credentials?)"
    r"[\w.-]*)"
    rf"([\"']?[ \t]*[:=][ \t]*){_NOT_MARK}"
    r"(\"(?:[^\"\\\r\n]|\\.)*\"|'[^'\r\n]*'|[^\s,;&\"'}\]]+)"
)
_URL_PASSWORD = re.compile(rf"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@\"']*:){_NOT_MARK}[^\s@/\"']+(@)")
_KEYS = re.compile(
    r"\b(?:xox[abposr]-[A-Za-z0-9-]{6,}|xapp-[A-Za-z0-9-]{6,}|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|github_pat_[A-Za-z0-9_]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16})\b"
)
_SLACK_HOOK = re.compile(r"(?i)(hooks\.slack\.com/(?:services|workflows|triggers)/)[^\s\"'<>]+")

MIN_LITERAL = 6
"""Extra literals shorter than this are ignored: hiding every `abc` would hide the log itself."""


def _quoted(match: re.Match[str]) -> str:
    value = match.group(3)
    quote = value[0] if value[:1] in ('"', "'") else ""
    return f"{match.group(1)}{match.group(2)}{quote}{MARK}{quote}"


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
    text = _JWT.sub(MARK, text)
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MARK}", text)
    text = _SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{MARK}", text)
    text = _PAIR.sub(_quoted, text)
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{MARK}{m.group(2)}", text)
    text = _KEYS.sub(MARK, text)
    return _SLACK_HOOK.sub(lambda m: f"{m.group(1)}{MARK}", text)
