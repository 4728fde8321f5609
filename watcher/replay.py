"""`watcher replay`: recorded logs through the same rules and engine as the daemon, in event time.

Each file is one source. Its watermark is its newest timestamp (not its last line's:
in a file out of order, every error is then part of the verdict), because a file that
stops early proves nothing after its end, unless the user asserts with `until` that
every file is complete through that time. Evidence is as in the daemon (DESIGN §2.1):
a file with no record in the window cannot resolve it, unless the file's name is a
configured source with `quiet_ok` (whose `expect_every` applies too). A record whose
head has no time of its own counts at the newest stamp before it in the file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from watcher.classify.grouping import ClassifyStats
from watcher.classify.rules import RuleSet
from watcher.classify.stream import Input, classify_stream
from watcher.config import Settings
from watcher.details import Transition
from watcher.engine import Engine
from watcher.engine.evidence import Blocker, SourceEvidence
from watcher.errors import InputError
from watcher.events import ErrorEvent, Expectation, Kind, State
from watcher.schema import error_doc
from watcher.times import format_time

INCIDENT = "replay"


@dataclass
class Verdict:
    resolved_at: float | None
    streak_start: float
    verified_to: float | None
    window: float
    mitigated_at: float
    errors: int
    lines: int
    last_error: ErrorEvent | None
    history: list[Transition]
    files: dict[str, ClassifyStats] = field(default_factory=dict)
    watermarks: dict[str, float] = field(default_factory=dict)
    """Each file's watermark: its newest stamp, or --until."""
    evidence: tuple[SourceEvidence, ...] = ()
    cannot_resolve: tuple[Blocker, ...] = ()

    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None

    @property
    def clean_streak(self) -> float:
        return max(0.0, (self.verified_to or self.streak_start) - self.streak_start)

    def as_json(self) -> dict[str, object]:
        last = self.last_error
        return {
            "verdict": "resolved" if self.resolved else "unresolved",
            "resolved_at": format_time(self.resolved_at),
            "streak_start": format_time(self.streak_start),
            "errors": self.errors,
            "last_error": None if last is None else error_doc(last),
            "gaps": [],
            "lines": self.lines,
            "mitigated_at": format_time(self.mitigated_at),
            "window": self.window,
            "verified_to": format_time(self.verified_to),
            "clean_streak": self.clean_streak,
            "history": [{"kind": str(t.kind), "at": format_time(t.at)} for t in self.history],
            "cannot_resolve": [b.text() for b in self.cannot_resolve],
            "evidence": [e.text() for e in self.evidence],
            "sources": {
                name: {
                    "lines": s.lines,
                    "errors": s.errors,
                    "first": format_time(s.first_at),
                    "last": format_time(s.last_at),
                    "watermark": format_time(self.watermarks.get(name)),
                    "format": s.format,
                    "bad_utf8": s.bad_utf8,
                    "truncated": s.truncated,
                }
                for name, s in self.files.items()
            },
        }


def replay(
    inputs: Sequence[Input],
    settings: Settings,
    *,
    mitigated_at: float,
    window: float,
    until: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> Verdict:
    names = [i.name for i in inputs]
    if len(set(names)) != len(names):
        raise InputError("two inputs have the same source name; name them NAME=FILE")
    engine = Engine(blind_after=math.inf, sources=names, expectations=_expectations(settings, names))
    engine.open(INCIDENT, "replay", ["*"], window, -math.inf)
    run = _Run(engine, RuleSet.compile(settings.rules, settings.ignore), settings.max_line_bytes, progress)
    run.keep(engine.mitigate(INCIDENT, "replay --mitigated-at", mitigated_at))
    for item in inputs:
        run.file(item, until)
    status = engine.status(INCIDENT)
    return Verdict(
        resolved_at=status.resolved_at if status.state is State.RESOLVED else None,
        streak_start=status.streak_start if status.streak_start is not None else mitigated_at,
        verified_to=status.verified_to,
        window=window,
        mitigated_at=mitigated_at,
        errors=status.errors,
        lines=sum(s.lines for s in run.files.values()),
        last_error=status.last_error,
        history=run.history,
        files=run.files,
        watermarks=run.watermarks,
        evidence=status.evidence,
        cannot_resolve=status.blockers,
    )


class _Run:
    """One replay: each file through the classifier into the engine, then its watermark."""

    def __init__(
        self, engine: Engine, ruleset: RuleSet, max_line_bytes: int, progress: Callable[[int], None] | None
    ) -> None:
        self.engine, self.ruleset, self.max_line_bytes, self.progress = (
            engine,
            ruleset,
            max_line_bytes,
            progress,
        )
        self.history: list[Transition] = []
        self.files: dict[str, ClassifyStats] = {}
        self.watermarks: dict[str, float] = {}

    def keep(self, transitions: list[Transition]) -> None:
        self.history += [t for t in transitions if t.kind in (Kind.RESOLVED, Kind.REGRESSED)]

    def file(self, item: Input, until: float | None) -> None:
        """Classify `item`; its watermark is its newest stamp, or `until`."""
        name, engine = item.name, self.engine
        newest = -math.inf

        def observe(event: ErrorEvent) -> None:
            if event.at is None:
                raise InputError(
                    f"{name}: an error record comes before any timestamp; replay needs the logs' own times"
                )
            self.keep(engine.observe(event))

        def seen(stamps: list[float]) -> None:
            nonlocal newest
            newest = max(newest, max(stamps))
            self.keep(engine.seen(name, stamps))

        with item.open() as stream:
            stats = classify_stream(
                stream,
                name,
                self.ruleset.for_source(name),
                max_line_bytes=self.max_line_bytes,
                on_error=observe,
                progress=self.progress,
                on_stamps=seen,
            )
        self.files[name] = stats
        watermark = until if until is not None else newest
        if watermark == -math.inf:
            raise InputError(
                f"{name}: no timestamps found; replay needs logs with their own times "
                "(docker logs -t, journalctl -o json, or lines with ts/time fields)"
            )
        self.watermarks[name] = watermark
        engine.count_lines(name, stats.lines)
        self.keep(engine.advance(name, watermark))


def _expectations(settings: Settings, names: Sequence[str]) -> dict[str, Expectation]:
    """A file named like a configured source has its quiet_ok, and its expect_every unless that
    counts only expect_match records (every record's time is known here, not which match); never
    liveness: a recorded file cannot say whether its writer ran."""
    configured = {cfg.name: cfg for cfg in settings.sources}
    out = {}
    for name in names:
        cfg = configured.get(name)
        if cfg is not None:
            out[name] = Expectation(cfg.quiet_ok, None if cfg.expect_match else cfg.expect_every)
    return out
