"""Whom an incident's errors hit: the distinct orgs (a source's `impact_field`), and when each
was last seen. Pure, like the rest of the engine.

Per incident an `Impact` counts every error record in scope (and when the first and the
last were) and, per org, its first and last error and how many. At most `cap` orgs are
tracked: the records of orgs beyond it are counted (`untracked`) but their ids are not
kept, so memory stays bounded whatever the logs say. The orgs named on the incident
(`--org`) are always tracked. Org ids never become metric labels: metrics get counts.

An org is *still affected* until a full window after its last error has been verified
(the same rule as the incident's: a window of clean, verified time), so "org-a is fine"
is proven, not assumed from silence.

Impact is *confirmed* once at least `Confirmation.records` error records were seen over
at least `Confirmation.over` (from the first to the last): only then may a customer-facing
status go out (the runbook: never before impact is confirmed).

The orgs are saved row by row (watcher.store, `impact`), not in the engine snapshot: an
incident may hold thousands. `dirty` says which changed since the last save.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from watcher.times import human_time

MAX_ORG = 128
"""Characters of an org id kept: a longer value is cut (it is an id, not a message)."""


@dataclass(slots=True)
class OrgSeen:
    first: float
    last: float
    records: int = 1


@dataclass(frozen=True, slots=True)
class ImpactPolicy:
    """How impact is tracked: at most `cap` orgs per incident; confirmed by `records` error
    records over at least `over` seconds; errors up to `lookback` before an incident opened
    count toward it (it was noticed after it began)."""

    cap: int = 10_000
    records: int = 10
    over: float = 300.0
    lookback: float = 1800.0
    recent: int = 10_000
    """Error records kept for the lookback, across sources (the oldest go first)."""


class Recent:
    """The latest error records (source, time, org), for the impact of an incident opened after them."""

    __slots__ = ("_items", "_policy")

    def __init__(self, policy: ImpactPolicy) -> None:
        self._policy = policy
        self._items: deque[tuple[str, float, str | None]] = deque(maxlen=policy.recent)

    def add(self, source: str, at: float, org: str | None) -> None:
        self._items.append((source, at, org))

    def since(self, at: float) -> list[tuple[str, float, str | None]]:
        """The records at or after `at`, in the order they were read."""
        return [item for item in self._items if item[1] >= at]


@dataclass(frozen=True, slots=True)
class Totals:
    """An incident's impact apart from its orgs: what the store keeps in one row."""

    records: int = 0
    first: float | None = None
    last: float | None = None
    untracked: int = 0
    """Error records of orgs beyond the cap."""
    confirmed_at: float | None = None


@dataclass(frozen=True, slots=True)
class OrgStatus:
    """One org as status, announcements and the postmortem show it."""

    org: str
    first: float | None
    last: float | None
    """None: no error seen for it (a named org)."""
    records: int
    affected: bool

    def text(self) -> str:
        if self.last is None:
            return f"{self.org}: no error seen"
        state = "still affected" if self.affected else "clear"
        return f"{self.org}: {state}, {self.records:,} error record(s), last {human_time(self.last)}"


@dataclass(frozen=True, slots=True)
class ImpactSummary:
    """What an incident's impact is at one moment (the engine's `IncidentStatus.impact`)."""

    records: int = 0
    first: float | None = None
    last: float | None = None
    orgs: int = 0
    """Distinct orgs with errors that are tracked (all of them, unless `untracked`)."""
    affected: int = 0
    """Of those, the ones still affected."""
    untracked: int = 0
    cap: int = 0
    confirmed_at: float | None = None
    named: tuple[OrgStatus, ...] = ()

    def lines(self) -> tuple[str, ...]:
        """Sentences for announcements and the timeline (empty when no org was ever seen or named)."""
        if not self.orgs and not self.untracked and not self.named:
            return ()
        head = f"{self.orgs:,} org(s) had errors, {self.affected:,} still affected"
        if not self.orgs and not self.untracked:
            head = "no error record names an org yet"
        if self.untracked:
            head += f"; {self.untracked:,} error record(s) of orgs beyond the first {self.cap:,} not tracked"
        if self.last is not None:
            head += f"; last error {human_time(self.last)}"
        return (head, *(n.text() for n in self.named))


class Impact:
    """One incident's impact (see the module doc)."""

    __slots__ = (
        "cap",
        "changed",
        "confirmed_at",
        "dirty",
        "first",
        "last",
        "named",
        "orgs",
        "records",
        "untracked",
    )

    def __init__(self, cap: int, named: Sequence[str] = ()) -> None:
        self.cap = cap
        self.named = tuple(named)
        self.orgs: dict[str, OrgSeen] = {}
        self.records = 0
        self.first: float | None = None
        self.last: float | None = None
        self.untracked = 0
        self.confirmed_at: float | None = None
        self.changed = False
        """Something was recorded since the last save (`take_changes`)."""
        self.dirty: set[str] = set()
        """The orgs changed since the last save."""

    def record(self, org: str | None, at: float, confirm: ImpactPolicy) -> bool:
        """An error record at `at` (of `org`, if it names one); whether it just confirmed the impact."""
        self.records += 1
        self.first = at if self.first is None else min(self.first, at)
        self.last = at if self.last is None else max(self.last, at)
        self.changed = True
        if org is not None:
            self._org(org[:MAX_ORG], at)
        if self.confirmed_at is not None or self.records < confirm.records:
            return False
        assert self.first is not None and self.last is not None
        if self.last - self.first < confirm.over:
            return False
        self.confirmed_at = at
        return True

    def _org(self, org: str, at: float) -> None:
        seen = self.orgs.get(org)
        if seen is not None:
            seen.first, seen.last = min(seen.first, at), max(seen.last, at)
            seen.records += 1
        elif len(self.orgs) < self.cap or org in self.named:
            self.orgs[org] = OrgSeen(at, at)
        else:
            self.untracked += 1
            return
        self.dirty.add(org)

    def rename(self, named: Sequence[str]) -> None:
        self.named = tuple(named)

    def totals(self) -> Totals:
        return Totals(self.records, self.first, self.last, self.untracked, self.confirmed_at)

    def load(self, totals: Totals, orgs: Iterable[tuple[str, OrgSeen]]) -> None:
        """What the store saved (nothing dirty afterwards)."""
        self.records, self.first, self.last = totals.records, totals.first, totals.last
        self.untracked, self.confirmed_at = totals.untracked, totals.confirmed_at
        self.orgs = dict(orgs)
        self.dirty.clear()
        self.changed = False

    def changes(self) -> SavedImpact | None:
        """The totals and the orgs changed since the last `saved()` (None: nothing changed)."""
        if not self.changed:
            return None
        return SavedImpact(self.totals(), tuple((org, replace(self.orgs[org])) for org in sorted(self.dirty)))

    def saved(self) -> None:
        """What `changes()` gave is stored."""
        self.dirty.clear()
        self.changed = False

    def summary(self, upto: float | None, window: float) -> ImpactSummary:
        """As of verified time `upto` (None: nothing verified, every org with errors is affected)."""

        def affected(seen: OrgSeen) -> bool:
            return upto is None or seen.last + window > upto

        named = [self._status(org, upto, window) for org in self.named]
        return ImpactSummary(
            records=self.records,
            first=self.first,
            last=self.last,
            orgs=len(self.orgs),
            affected=sum(1 for s in self.orgs.values() if affected(s)),
            untracked=self.untracked,
            cap=self.cap,
            confirmed_at=self.confirmed_at,
            named=tuple(named),
        )

    def statuses(self, upto: float | None, window: float) -> list[OrgStatus]:
        """Every org tracked, by its first error (as `summary` judges "still affected")."""
        ordered = sorted(self.orgs, key=lambda org: (self.orgs[org].first, org))
        return [self._status(org, upto, window) for org in ordered]

    def _status(self, org: str, upto: float | None, window: float) -> OrgStatus:
        seen = self.orgs.get(org)
        if seen is None:
            return OrgStatus(org, None, None, 0, False)
        affected = upto is None or seen.last + window > upto
        return OrgStatus(org, seen.first, seen.last, seen.records, affected)


@dataclass(frozen=True, slots=True)
class SavedImpact:
    """An incident's impact as the store gives it back."""

    totals: Totals = field(default_factory=Totals)
    orgs: tuple[tuple[str, OrgSeen], ...] = ()
