"""The fast path of `watcher classify`/`replay`: the results of line-by-line, 7-20x faster.

Line by line (the `reference` engine) every line is decoded, parsed and matched in
Python. Here each buffer of whole lines is first searched, in C, for the few lines that
can matter, and only those go through the precise path (LineParser, SourceRules,
SourceClassifier):

- lines a rule's Prefilter matches (a guaranteed superset of the rule's matches);
- lines that may continue a record (grouping.py rules 1-2: a message starting with
  whitespace or a continuation prefix) and the line after any line that may make the
  next one a continuation (rules 3-4);
- the first line of every buffer, lines that are not UTF-8 and lines longer than
  max_line_bytes.

Every other line is a record of its own without an error; SourceClassifier.skip counts
them in bulk (the `records` count needs every continuation found anyway). Since those
lines are fed in order, a candidate's record head is the last line fed or the skipped
line just before it: grouping never has to walk back.

Hyperscan (Linux x86_64 only; `hyperscan` is not installed elsewhere) runs the
prefilters; Python's `re` runs them everywhere else, and also runs, on every platform,
the continuation search and the prefilters hyperscan cannot take. A rule regex with a
negative lookaround, a conditional or verbose mode has no cheap superset: its source is
then classified line by line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

from watcher.classify.grouping import CONTINUATION_FIRST, CONTINUATION_START
from watcher.classify.lines import (
    DATE_TIME,
    MESSAGE_TOKEN,
    REALTIME,
    TIMESTAMP,
    time_key_start,
)
from watcher.classify.rules import Prefilter
from watcher.config.base import Format

try:  # declared for Linux x86_64 only (pyproject); anywhere else the `re` engine runs
    import hyperscan

    HYPERSCAN = True
except ImportError:  # pragma: no cover - exercised on other platforms
    HYPERSCAN = False

_NON_ASCII = r"[^\x00-\x7f]"
# Dotted and dotless i, long s, Kelvin sign: Python's IGNORECASE folds them to i, s, k.
_FOLDS_TO_ASCII = "\u0130\u0131\u017f\u212a"
_GLOBAL_FLAGS = re.compile(r"\(\?([aiLmsux]+)\)")
_SCOPED_FLAGS = re.compile(r"\(\?([aiLmsux]*)(?:-[imsx]+)?:")
_EMPTY_MIN = re.compile(r"\{,([0-9]+)\}")


@dataclass(frozen=True, slots=True)
class Adapted:
    """One prefilter regex, loosened to raw lines, in the dialects of both engines."""

    python: str
    hyperscan: tuple[str, ...] | None
    """PCRE patterns whose union is a superset of `python`; None: only `re` can run it."""
    prefilter_mode: bool = False
    """Hyperscan must approximate (HS_FLAG_PREFILTER: backreferences, lookarounds)."""


def adapt(pattern: str, anchored: bool = False) -> Adapted | None:
    """`pattern` as a superset over raw lines, or None when there is no safe one.

    A rule regex is written for the message, which on the raw line may follow a
    timestamp or sit inside JSON: unless `anchored`, `^ $ \\A \\Z` are dropped (which
    only widens the match). Hyperscan gets `\\b` dropped, `\\s` widened to Python's
    spaces, `{,n}` spelled `{0,n}`, and an extra pattern for the lines where its older
    Unicode tables or case folding could disagree with Python's.
    """
    return _Adapter(pattern, anchored).run()


class _Adapter:
    """One pass over a pattern, token by token, writing both dialects side by side."""

    def __init__(self, pattern: str, anchored: bool) -> None:
        self.pattern, self.anchored = pattern, anchored
        self.py: list[str] = []
        self.hs: list[str] = []
        self.hs_ok = True
        self.prefilter_mode = self.tables = self.caseless = False

    def run(self) -> Adapted | None:
        pattern, i = self.pattern, 0
        flags = _GLOBAL_FLAGS.match(pattern)
        if flags is not None:
            if "x" in flags[1]:
                return None  # verbose mode: whitespace and `#` change meaning; not worth a parser
            self.caseless = "i" in flags[1]
            self.hs_ok = not set(flags[1]) & set("aLu")
            i = flags.end()
        while i < len(pattern):
            step = self._token(i)
            if step is None:
                return None
            i = step
        body_py, body_hs = "".join(self.py), "".join(self.hs)
        if flags is not None:  # a global flag group must lead; scoped, it may be combined
            body_py, body_hs = f"(?{flags[1]}:{body_py})", f"(?{flags[1]}:{body_hs})"
        try:
            re.compile(body_py)
        except re.error:
            return None
        if not self.hs_ok or (self.caseless and not pattern.isascii()):
            return Adapted(body_py, None)
        extra = [_NON_ASCII] if self.tables else [f"[{_FOLDS_TO_ASCII}]"] if self.caseless else []
        return Adapted(body_py, (body_hs, *extra), self.prefilter_mode)

    def _token(self, i: int) -> int | None:
        """Adapt the token at `i`; the index after it, or None: no safe superset exists."""
        pattern, c = self.pattern, self.pattern[i]
        if c == "\\":
            return self._escape(i)
        if c == "[":
            return self._class(i)
        if c == "(":
            if pattern.startswith("(?#", i):
                return pattern.index(")", i) + 1
            if not self._group(i):
                return None
        elif c in "^$" and not self.anchored:
            return i + 1
        elif c == "{" and (m := _EMPTY_MIN.match(pattern, i)):
            self.py.append(m[0])
            self.hs.append(f"{{0,{m[1]}}}")
            return m.end()
        elif c in "*+?}" and pattern.startswith("+", i + 1):
            self.prefilter_mode = True  # possessive
        self.py.append(c)
        self.hs.append(c)
        return i + 1

    def _escape(self, i: int) -> int:
        esc, k = self.pattern[i : i + 2], self.pattern[i + 1 : i + 2]
        if k in ("A", "Z") and not self.anchored:
            return i + 2
        self.py.append(esc)
        if k in ("b", "B"):
            pass  # hyperscan has no \b in UCP mode; dropping it only widens
        elif k == "s":
            self.hs.append(r"[\s\x1c-\x1f]")
        else:
            self.hs_ok &= k not in ("u", "U", "N")
            self.prefilter_mode |= k.isdigit()
            self.tables |= k in ("d", "D", "w", "W", "S")
            self.hs.append(esc)
        return i + 2

    def _class(self, i: int) -> int:
        j = _class_end(self.pattern, i)
        body = self.pattern[i:j]
        self.py.append(body)
        self.hs_ok &= "[:" not in body[1:] and not re.search(r"\\[uUN]", body)  # POSIX classes
        self.tables |= bool(re.search(r"\\[dDwWsS]", body))
        if "\\s" in body:
            self.hs_ok &= not body.startswith("[^")
            body = body.replace("\\s", "\\s\\x1c-\\x1f")
        self.hs.append(body)
        return j

    def _group(self, i: int) -> bool:
        """Note what the group opening at `i` implies; False when no safe superset exists."""
        pattern = self.pattern
        if pattern.startswith(("(?!", "(?<!", "(?("), i):
            return False  # a negative condition may hold on the message and not on the line
        scoped = _SCOPED_FLAGS.match(pattern, i)
        if scoped is not None:
            if "x" in scoped[1]:
                return False
            self.caseless |= "i" in scoped[1]
            self.hs_ok &= not set(scoped[1]) & set("aLu")
        self.prefilter_mode |= pattern.startswith(("(?=", "(?<=", "(?>", "(?P="), i)
        return True


def alternatives(pattern: str, limit: int = 32) -> list[str]:
    """`A|B` -> [A, B], `(A|B)C` -> [(?:A)C, (?:B)C], recursively, at most `limit` patterns.

    For `re`: a pattern that starts with a literal is found by a fast substring search,
    one that starts with a choice is tried at every position, ten times slower.
    """
    if re.search(r"\\[1-9]|\(\?P=|\(\?\(", pattern):
        return [pattern]  # group numbers matter
    parts = _split_top(pattern)
    if len(parts) == 1 and (pattern.startswith("(?:") or (pattern[:1] == "(" and pattern[1:2] != "?")):
        end = _group_end(pattern)
        rest = pattern[end + 1 :]
        inner = pattern[3 if pattern.startswith("(?:") else 1 : end]
        if rest[:1] not in ("*", "+", "?", "{") and len(choices := _split_top(inner)) > 1:
            parts = [f"(?:{c}){rest}" for c in choices]
    if len(parts) == 1:
        return parts
    out = [p for part in parts for p in alternatives(part, limit)]
    return out if len(out) <= limit else [pattern]


def _split_top(pattern: str) -> list[str]:
    """`pattern` split at its top-level `|`."""
    bars = [i for i, c, depth in _walk(pattern) if c == "|" and depth == 0]
    return [pattern[a + 1 : b] for a, b in zip([-1, *bars], [*bars, len(pattern)], strict=True)]


def _group_end(pattern: str) -> int:
    """Index of the `)` closing the group that opens `pattern`."""
    return next((i for i, c, depth in _walk(pattern) if c == ")" and depth == 0), len(pattern))


def _walk(pattern: str) -> Iterator[tuple[int, str, int]]:
    """(index, char, depth after it) for each character outside escapes and classes."""
    depth, i = 0, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            i = _class_end(pattern, i)
            continue
        depth += (c == "(") - (c == ")")
        yield i, c, depth
        i += 1


def _class_end(pattern: str, i: int) -> int:
    """Index after the `]` that closes the class opening at `i`."""
    j = i + 1
    if pattern.startswith("^", j):
        j += 1
    if pattern.startswith("]", j):
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        j += 2 if pattern[j] == "\\" else 1
    return j + 1


class Finder:
    """Finds, in a buffer of whole lines, the starts of the lines the precise path must see."""

    def __init__(self, prefilters: tuple[Prefilter, ...], fmt: Format, use_hyperscan: bool) -> None:
        sources = [(p, False) for f in prefilters for p in f.message]
        sources += [(p, True) for f in prefilters for p in f.line]
        adapted = [adapt(p, anchored) for p, anchored in dict.fromkeys(sources)]
        self.every_line = None in adapted
        hs: list[tuple[bytes, int]] = []
        python: list[str] = []
        for a in adapted:
            if a is None:
                continue
            flags = _hyperscan_flags(a) if use_hyperscan else None
            if flags is None:
                python += alternatives(a.python)
            else:
                hs += [(p.encode(), flags) for p in a.hyperscan or ()]
        self._python = [re.compile(p, re.M) for p in dict.fromkeys(python)]
        self._db = _database(hs) if hs else None
        self._context = re.compile(_context_pattern(fmt).encode(), re.M)  # `$`: a line's end

    @property
    def needs_text(self) -> bool:
        """Whether find() wants the buffer decoded (for the prefilters only `re` can run)."""
        return bool(self._python)

    def find(self, buf: bytes | bytearray, start: int, end: int, text: str | None) -> set[int]:
        """Starts of lines in [start, end) that need the precise path; `text` is buf[start:end] decoded."""
        found = {s for m in self._context.finditer(buf, start, end) if (s := m.start() + 1) < end}
        if self._python:
            assert text is not None
            found.update(_python_starts(self._python, text, start))
        if self._db is not None:
            # Only end offsets: a match inside one line ends in it, so the line holding the
            # last matched byte is found for every line with a match (a match spanning lines
            # adds a harmless candidate). A Python callback per match is fine: prefilters
            # match few lines. (Scanning in a thread does not pay: callbacks wait for the GIL.)
            ends: list[int] = []
            # The binding takes any buffer; its stub says bytes.
            view = cast(bytes, memoryview(buf)[start:end])
            db, scratch = self._db
            db.scan(view, match_event_handler=lambda _i, _f, to, _fl, _c: ends.append(to), scratch=scratch)
            found.update(line_start(buf, start, start + to - 1) for to in ends)
        return found


@functools.lru_cache(maxsize=64)
def _hyperscan_flags(a: Adapted) -> int | None:
    """Compile flags for `a`'s patterns, or None when hyperscan rejects one of them."""
    if a.hyperscan is None:
        return None
    flags = hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_UCP | hyperscan.HS_FLAG_MULTILINE
    if a.prefilter_mode:
        flags |= hyperscan.HS_FLAG_PREFILTER
    try:
        _compile([(p.encode(), flags) for p in a.hyperscan])
    except hyperscan.error:
        return None
    return flags


def _database(patterns: list[tuple[bytes, int]]) -> tuple[hyperscan.Database, hyperscan.Scratch]:
    """A database and scratch space of its own, compiled once per set of patterns: `replay`
    of many files with the same rules pays the 20-30 ms of compiling once."""
    db = hyperscan.loadb(_serialized(tuple(patterns)), hyperscan.HS_MODE_BLOCK)
    return db, hyperscan.Scratch(db)


@functools.lru_cache(maxsize=8)
def _serialized(patterns: tuple[tuple[bytes, int], ...]) -> bytes:
    return hyperscan.dumpb(_compile(list(patterns)))


def _compile(patterns: list[tuple[bytes, int]]) -> hyperscan.Database:
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(
        expressions=[p for p, _ in patterns],
        ids=list(range(len(patterns))),
        elements=len(patterns),
        flags=[f for _, f in patterns],
    )
    return db


def _context_pattern(fmt: Format) -> str:
    """A line (after a newline) that may be a continuation by itself or enable the next one.

    Its message may start after up to two leading timestamps (lines.LineParser): when
    the line starts with one, only the shape of the message after them matters. A line
    that starts with its time key (`{"ts":"2026-...`) has a message that starts with `{`
    or a key: it never matters. Any other line matters when its message looks like a
    continuation.
    """
    lead = rf"(?>{TIMESTAMP}(?:[ \t]|(?![ \t])))"
    shape = f"(?={CONTINUATION_FIRST})(?:{CONTINUATION_START})"  # a cheap first test: most lines fail it
    key_start = time_key_start(fmt)
    keyed = f"|({key_start}{DATE_TIME})" if key_start is not None and fmt != "journal" else ""
    other = [shape]
    if fmt == "journal":  # a record whose MESSAGE is missing, escaped, bytes or continuation-like
        key = r'"MESSAGE"[ \t\r]*:[ \t\r]*'
        other.append(
            rf"\{{(?=[^\n]*?{REALTIME})(?:(?![^\n]*?{MESSAGE_TOKEN})"
            rf'|[^\n]*?{key}(?:\[|"[^"\\\n]*\\|"(?:"|{shape})))'
        )
    # All after the newline is a lookahead, so that a match never swallows the next
    # line's newline. The atomic group commits to the first of: a leading timestamp
    # (group 1), a time key (group 2, never matters), neither.
    rest = f"(?:{'|'.join(other)})"
    if keyed:
        rest = f"(?(2)(?!)|{rest})"
    return rf"\n(?=(?>({lead}){keyed}|)(?(1){lead}?{shape}|{rest}))"


def line_start(buf: bytes | bytearray, start: int, pos: int) -> int:
    nl = buf.rfind(b"\n", start, pos)
    return start if nl < 0 else nl + 1


def _python_starts(patterns: list[re.Pattern[str]], text: str, start: int) -> list[int]:
    """Line starts (byte offsets, `text` being decoded from `start` on) of the lines each pattern matches.

    After a match the search goes on at the next line, so a match running into the
    next lines cannot hide a match within one of them.
    """
    chars: set[int] = set()
    for rx in patterns:
        pos = 0
        while (m := rx.search(text, pos)) is not None and m.start() < len(text):
            chars.add(text.rfind("\n", 0, m.start()) + 1)
            pos = text.find("\n", m.start()) + 1
            if pos == 0:
                break
    if text.isascii():
        return [start + c for c in chars]
    out, c0, b = [], 0, start
    for c in sorted(chars):  # char offsets to byte offsets, one pass
        b += len(text[c0:c].encode())
        c0 = c
        out.append(b)
    return out
