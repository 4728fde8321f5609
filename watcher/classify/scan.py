"""The fast path of `watcher classify`/`replay`: the results of line-by-line, 7-20x faster.

Line by line (the `reference` engine) every line is decoded, parsed and matched in
Python. Here each buffer of whole lines is first searched, in C, for the few lines that
can matter, and only those go through the precise path (LineParser, SourceRules,
SourceClassifier):

- lines a rule's Prefilter matches (a guaranteed superset of the rule's matches);
- lines that may continue a record (grouping.py rules 1-2: a message starting with
  whitespace or a continuation prefix) and the line after any line that may make the
  next one a continuation (rules 3-4);
- lines that are not UTF-8 and lines longer than max_line_bytes; the first line of a
  buffer when the line before it may make it a continuation (rules 3-4).

Every other line is a record of its own without an error; SourceClassifier.skip counts
them in bulk (the `records` count needs every continuation found anyway). Since those
lines are fed in order, a candidate's record head is the last line fed or the skipped
line just before it: grouping never has to walk back.

Hyperscan (Linux x86_64 only; `hyperscan` is not installed elsewhere) runs the
prefilters; RE2 (watcher.patterns, linear time like hyperscan) runs them everywhere
else, on the raw bytes, and also runs the prefilters hyperscan cannot take. Python's
`re` runs only the continuation search, a fixed pattern of ours. A prefilter neither
engine can take makes the source be classified line by line.
"""

from __future__ import annotations

import contextlib
import functools
import platform
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import cast

from watcher.classify import hscache
from watcher.classify.context import Context, superset_patterns
from watcher.classify.rules import Prefilter
from watcher.config.base import Format
from watcher.patterns import Regex, class_end_at, compile_linear

try:  # declared for Linux x86_64 only (pyproject); anywhere else the `re` engine runs
    import hyperscan

    HYPERSCAN = True
except ImportError:  # pragma: no cover - exercised on other platforms
    HYPERSCAN = False

_NON_ASCII = r"[^\x00-\x7f]"
# Dotted and dotless i, long s, Kelvin sign: Python's IGNORECASE folds them to i, s, k.
_FOLDS_TO_ASCII = "\u0130\u0131\u017f\u212a"
_GLOBAL_FLAGS = re.compile(r"\(\?([ims]+)\)")
_SCOPED_FLAGS = re.compile(r"\(\?([ims]*)(?:-[ims]+)?:")
_EMPTY_MIN = re.compile(r"\{,([0-9]+)\}")


Scanner = tuple["hyperscan.Database", "hyperscan.Scratch"]
"""A compiled database and the scratch space scans with it use."""


@dataclass(frozen=True, slots=True)
class Adapted:
    """One prefilter regex, loosened to raw lines, in the dialects of both engines."""

    python: str
    hyperscan: tuple[str, ...] | None
    """PCRE patterns whose union is a superset of `python`; None: only RE2 can run it."""


def adapt(pattern: str, anchored: bool = False) -> Adapted | None:
    """`pattern` as a superset over raw lines, or None when there is no safe one.

    `pattern` is linear (watcher.patterns refused the rest at config load). A rule
    regex is written for the message, which on the raw line may follow a timestamp or
    sit inside JSON: unless `anchored`, `^ $ \\A \\Z` are dropped (which only widens the
    match). Hyperscan gets `\\b` dropped, `\\s` widened to every space either engine
    knows, `{,n}` spelled `{0,n}`, and an extra pattern for the lines where its Unicode
    tables or case folding could disagree with RE2's (RE2's ASCII `\\w` and `\\W`, its
    case folding).
    """
    return _Adapter(pattern, anchored).run()


class _Adapter:
    """One pass over a pattern, token by token, writing both dialects side by side."""

    def __init__(self, pattern: str, anchored: bool) -> None:
        self.pattern, self.anchored = pattern, anchored
        self.py: list[str] = []
        self.hs: list[str] = []
        self.hs_ok = True
        self.tables = self.caseless = False

    def run(self) -> Adapted | None:
        pattern, i = self.pattern, 0
        flags = _GLOBAL_FLAGS.match(pattern)
        if flags is not None:
            self.caseless = "i" in flags[1]
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
        return Adapted(body_py, (body_hs, *extra))

    def _token(self, i: int) -> int | None:
        """Adapt the token at `i`; the index after it, or None: no safe superset exists."""
        pattern, c = self.pattern, self.pattern[i]
        if c == "\\":
            return self._escape(i)
        if c == "[":
            return self._class(i)
        if c == "(":
            self._group(i)
        elif c in "^$" and not self.anchored:
            return i + 1
        elif c == "{" and (m := _EMPTY_MIN.match(pattern, i)):
            self.py.append(m[0])
            self.hs.append(f"{{0,{m[1]}}}")
            return m.end()
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
            self.tables |= k in ("d", "D", "w", "W", "S")
            self.hs.append(esc)
        return i + 2

    def _class(self, i: int) -> int:
        j = class_end_at(self.pattern, i)
        body = self.pattern[i:j]
        self.py.append(body)
        self.hs_ok &= "[:" not in body[1:] and not re.search(r"\\[uUN]", body)  # POSIX classes
        self.tables |= bool(re.search(r"\\[dDwWsS]", body))
        if "\\s" in body:
            self.hs_ok &= not body.startswith("[^")
            body = body.replace("\\s", "\\s\\x1c-\\x1f")
        self.hs.append(body)
        return j

    def _group(self, i: int) -> None:
        """Note whether the group opening at `i` turns case folding on."""
        scoped = _SCOPED_FLAGS.match(self.pattern, i)
        if scoped is not None:
            self.caseless |= "i" in scoped[1]


WINDOW = 1 << 16
"""Bytes hyperscan scans at a time (to the end of the line it reaches)."""
STORM = 256
"""Matches in one window beyond which it is scanned the careful way (Finder._careful)."""


class Finder:
    """Finds, in a buffer of whole lines, the starts of the lines the precise path must see."""

    def __init__(self, prefilters: tuple[Prefilter, ...], fmt: Format, use_hyperscan: bool) -> None:
        sources = [(p, False) for f in prefilters for p in f.message]
        sources += [(p, True) for f in prefilters for p in f.line]
        adapted = [adapt(p, anchored) for p, anchored in dict.fromkeys(sources)]
        linear: list[Regex | None] = [None] * adapted.count(None)
        usable = [a for a in adapted if a is not None]
        self._context = Context(fmt)
        self._db: Scanner | None = None
        self._careful_db: Scanner | None = None
        self._rules: list[tuple[bytes, int]] = []
        """The prefilters hyperscan runs: the first patterns of its database."""
        superset = superset_patterns(fmt) if use_hyperscan else None
        # The continuation search joins the prefilters' pass where hyperscan can run it.
        self._superset = [(p.encode(), hyperscan.HS_FLAG_MULTILINE) for p in superset or ()]
        if use_hyperscan:
            self._rules, refused = _hyperscan_rules(usable, self._superset)
            linear += [_linear(a.python) for a in refused]
            if self._rules or self._superset:
                self._db = _database(self._rules + self._superset)
        else:
            linear += [_linear(a.python) for a in usable]
        self.every_line = None in linear
        self._linear = [rx for rx in linear if rx is not None]

    def find(self, buf: bytes | bytearray, start: int, end: int) -> set[int]:
        """Starts of lines in [start, end) that need the precise path (buf is valid UTF-8 there)."""
        found = self._context.find(buf, start, end) if not self._superset else set()
        for rx in self._linear:
            found.update(line_start(buf, start, at) for at in rx.starts(buf, start, end))
        if self._db is not None:
            pos = start
            while pos < end:
                stop = end if end - pos <= WINDOW else buf.find(b"\n", pos + WINDOW - 1, end) + 1
                found.update(self._window(buf, pos, stop))
                pos = stop
        return found

    def _window(self, buf: bytes | bytearray, a: int, b: int) -> list[int]:
        """The lines of [a, b) hyperscan finds a prefilter match in, and those it finds a
        continuation shape in that the exact search confirms.

        Only end offsets: a match inside one line ends in it (a match spanning lines adds
        a harmless candidate). A window is scanned whole, unless its matches pass STORM
        (`a+` on a megabyte of `a` ends a million times, and a Python callback for each
        would cost seconds). (Scanning in a thread does not pay: callbacks wait for the GIL.)
        """
        assert self._db is not None
        db, scratch = self._db
        rules = len(self._rules)
        hits: list[int] = []
        shapes: list[int] = []

        def on_match(id_: int, _from: int, to: int, _flags: int, _context: object) -> bool:
            (hits if id_ < rules else shapes).append(to)
            return len(hits) + len(shapes) > STORM  # True ends the scan

        try:
            # The binding takes any buffer; its stub says bytes.
            db.scan(cast(bytes, memoryview(buf)[a:b]), match_event_handler=on_match, scratch=scratch)
        except hyperscan.ScanTerminated:
            return list(self._careful(buf, a, b))
        found = [line_start(buf, a, a + to - 1) for to in hits]
        for to in shapes:
            ls = line_start(buf, a, a + to - 1)
            if self._context.confirm(buf, ls, b):
                found.append(ls)
        return found

    def _careful(self, buf: bytes | bytearray, a: int, b: int) -> Iterator[int]:
        """A window with a storm of matches: the prefilters alone, stopping at the first match
        and scanning on from the next line, and the continuation shapes searched by `re`.
        Each byte is scanned once (a database with the shapes would scan the rest of the
        window again at each stop)."""
        if self._superset:
            yield from self._context.find(buf, a, b)
        if not self._rules:
            return
        if self._careful_db is None:
            self._careful_db = _database(self._rules) if self._superset else self._db
        assert self._careful_db is not None
        db, scratch = self._careful_db
        view, pos = memoryview(buf), a
        while pos < b:
            ends: list[int] = []
            with contextlib.suppress(hyperscan.ScanTerminated):  # what _first asks for
                db.scan(cast(bytes, view[pos:b]), match_event_handler=_first(ends), scratch=scratch)
            if not ends:
                return
            last = pos + ends[0] - 1
            yield line_start(buf, pos, last)
            pos = buf.find(b"\n", last, b) + 1
            if pos == 0:
                return


def _first(ends: list[int]) -> Callable[[int, int, int, int, object], bool]:
    def stop(_id: int, _from: int, to: int, _flags: int, _context: object) -> bool:
        ends.append(to)
        return True  # terminate the scan: the caller goes on from the next line

    return stop


def _linear(pattern: str) -> Regex | None:
    """A prefilter for RE2, `$` and `^` at line ends (the buffer holds many lines); None if it cannot."""
    try:
        return compile_linear(pattern, multiline=True)
    except ValueError:
        return None


def _hyperscan_rules(
    adapted: list[Adapted], extra: list[tuple[bytes, int]]
) -> tuple[list[tuple[bytes, int]], list[Adapted]]:
    """The prefilter patterns hyperscan runs (with their flags), and the prefilters it refuses.

    Compiled together with `extra` first, as the database will be (one compile, and none
    at all once hscache has it). Only when that fails is each prefilter tried alone, to
    leave the ones it refuses to RE2.
    """
    flags = _prefilter_flags()
    refused = [a for a in adapted if a.hyperscan is None]
    taken = [a for a in adapted if a.hyperscan is not None]

    def patterns() -> list[tuple[bytes, int]]:
        unique = dict.fromkeys(p for a in taken if a not in refused for p in a.hyperscan or ())
        return [(p.encode(), flags) for p in unique]

    try:
        _serialized(tuple(patterns() + extra))
    except hyperscan.error:
        refused += [a for a in taken if _hyperscan_flags(a) is None]
    return patterns(), refused


def _prefilter_flags() -> int:
    """Prefilters are UTF-8 text with Unicode classes, `^` and `$` at each line."""
    return hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_UCP | hyperscan.HS_FLAG_MULTILINE


@functools.lru_cache(maxsize=64)
def _hyperscan_flags(a: Adapted) -> int | None:
    """Compile flags for `a`'s patterns, or None when hyperscan rejects one of them."""
    if a.hyperscan is None:
        return None
    flags = _prefilter_flags()
    try:
        _compile([(p.encode(), flags) for p in a.hyperscan])
    except hyperscan.error:
        return None
    return flags


def _database(patterns: list[tuple[bytes, int]]) -> Scanner:
    """A database and scratch space of its own, compiled once per set of patterns: `replay`
    of many files with the same rules pays for compiling once (and hscache, across runs)."""
    db = hyperscan.loadb(_serialized(tuple(patterns)), hyperscan.HS_MODE_BLOCK)
    return db, hyperscan.Scratch(db)


@functools.lru_cache(maxsize=8)
def _serialized(patterns: tuple[tuple[bytes, int], ...]) -> bytes:
    name = hscache.key(
        str(getattr(hyperscan, "__version__", "")).encode(),  # the stub does not declare it
        platform.machine().encode(),
        *(p + b"\0" + str(f).encode() for p, f in patterns),
    )
    blob = hscache.load(name)
    if blob is not None:
        try:
            hyperscan.loadb(blob, hyperscan.HS_MODE_BLOCK)  # refused when built for another CPU
            return blob
        except hyperscan.error:
            pass
    blob = hyperscan.dumpb(_compile(list(patterns)))
    hscache.store(name, blob)
    return blob


def _compile(patterns: list[tuple[bytes, int]]) -> hyperscan.Database:
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(
        expressions=[p for p, _ in patterns],
        ids=list(range(len(patterns))),
        elements=len(patterns),
        flags=[f for _, f in patterns],
    )
    return db


def line_start(buf: bytes | bytearray, start: int, pos: int) -> int:
    nl = buf.rfind(b"\n", start, pos)
    return start if nl < 0 else nl + 1
