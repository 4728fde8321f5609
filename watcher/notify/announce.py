"""Which announcements go out, to which channel, and when: a pure decision with an injected clock.

The daemon asks `transitions()` inside the transaction that records the
transitions, and `tick()` from its ticker; it writes what they return to the
outbox. Nothing here does I/O, so the rules below are tested with plain numbers:

- Routing: each kind goes to the channels `routes` names (default: every incident
  kind to `incident`, the heartbeat to `oncall`); channels without a webhook get
  nothing, so the outbox never fills up with rows nobody will send.
- Streak resets: the first after a mitigation is announced; after that at most
  one per incident per `reset_every`, and the next one says how many were held
  back. Held resets are flushed by `tick()` once the interval has passed, and by a
  new mitigation or the close (before it), so none is ever silently swallowed.
  What is held is itself an announcement (`held_until`): the daemon keeps it, one
  summary per channel and incident, in the same commit as the transitions, and
  hands it back at startup, so a kill does not lose it either.
- Heartbeat: one message per `heartbeat` with a line per open incident, marked
  unchanged when nothing moved since the previous heartbeat. The previous one is
  read back from the outbox at startup, so a restart neither repeats it early nor
  stays silent past the interval.
- Lanes: a channel is delivered through lanes (an incoming webhook, a Slack app
  channel), each with its own order and pace in the outbox; PagerDuty's lane takes a
  fixed set of kinds instead of following routes. A *living* lane (the Slack app)
  keeps one status message per incident: each batch of news about an incident is
  followed by its status, a verifying incident's status is refreshed every `refresh`
  while its progress bar moves, and in `heartbeat_edits` mode the heartbeat is each
  open incident's status instead of a message of its own.
- Escalation (`escalation()`): the runbook's escalation of an incident, for the
  lanes that page on it (PagerDuty's escalation routing key).
- Notes (`note()`): what people write on the timeline (a note, a hypothesis) and what the
  runbook's clock decides (a failed mitigation, an escalation) go out like transitions;
  an escalation also to the on-call channel.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

from watcher.details import Detail, Transition
from watcher.engine import IncidentStatus
from watcher.events import ALERT_NOTES, HEARTBEAT, RUNBOOK_NOTES, TRANSITIONS, Kind, State
from watcher.notify.news import (
    EscalationNews,
    HeartbeatLine,
    HeartbeatNews,
    News,
    StatusNews,
    TransitionNews,
    kind_of,
)
from watcher.notify.status_message import progress_bar

DEFAULT_ROUTES: dict[str, tuple[str, ...]] = {
    **{str(k): ("incident",) for k in (*TRANSITIONS, *ALERT_NOTES, *RUNBOOK_NOTES)},
    str(Kind.ESCALATED): ("incident", "oncall"),
    HEARTBEAT: ("oncall",),
}
StatusOf = Callable[[str], IncidentStatus]
"""An incident's status now, by id."""


@dataclass(frozen=True, slots=True)
class Lane:
    """One outbox lane: a receiver with its own order, pace and retries."""

    name: str
    channel: str | None = None
    """The channel (incident, oncall) whose routes it follows; None: only `kinds`."""
    kinds: frozenset[str] = frozenset()
    """Kinds it takes whatever the routes say (PagerDuty's)."""
    living: bool = False
    """Keeps one status message per incident, edited in place (the Slack app)."""
    heartbeat_edits: bool = False
    """Living: the heartbeat edits each open incident's status instead of posting a message."""
    refresh: float = 0.0
    """Living: seconds between status edits while only the progress bar moves; 0: never."""


@dataclass(frozen=True, slots=True)
class Announcement:
    channel: str
    news: News
    held_until: float | None = None
    """Held back by the rate limit: kept (in place of what the incident had held on this
    channel) and announced at this time, or sooner as part of the next one sent."""

    @property
    def kind(self) -> str:
        return kind_of(self.news)


@dataclass(slots=True)
class _Resets:
    last_sent: float | None = None
    held: int = 0
    latest: TransitionNews | None = None
    """The newest held reset; the summary quotes its line."""


@dataclass(slots=True)
class _Heartbeat:
    at: float | None = None
    seen: dict[str, tuple[object, ...]] = field(default_factory=dict)
    """Per incident, the fingerprint the last heartbeat reported."""


class Announcer:
    def __init__(
        self,
        *,
        channels: Collection[str],
        lanes: Sequence[Lane] = (),
        routes: Mapping[str, Sequence[str]] | None = None,
        reset_every: float = 60.0,
        heartbeat: float = 900.0,
        last_heartbeat: HeartbeatNews | None = None,
        held: Sequence[Announcement] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`channels`: those with an incoming webhook (its lane has the channel's name);
        `last_heartbeat` and `held` are what the previous run left in the store."""
        merged = {**DEFAULT_ROUTES, **(routes or {})}
        self.lanes = {lane.name: lane for lane in [*(Lane(c, c) for c in channels), *lanes]}
        taken = set(merged).union(*(lane.kinds for lane in lanes))
        self.routes = {kind: self._targets(kind, merged.get(kind, ())) for kind in taken}
        self.reset_every = reset_every
        self.heartbeat = heartbeat
        self.clock = clock
        self._resets: dict[str, _Resets] = {}
        self._shown: dict[tuple[str, str], tuple[object, ...]] = {}
        """Per living lane and incident, what its status showed last (see `_look`)."""
        self._refreshed: dict[str, float] = {}
        self._beat = _Heartbeat()
        if last_heartbeat is not None:
            self._beat = _Heartbeat(
                last_heartbeat.at, {i.incident: i.fingerprint for i in last_heartbeat.incidents}
            )
        for a in held:
            if isinstance(a.news, TransitionNews) and a.held_until is not None:
                latest = replace(a.news, also=0)
                self._resets[a.news.incident] = _Resets(a.held_until - reset_every, a.news.also + 1, latest)

    def _targets(self, kind: str, channels: Sequence[str]) -> tuple[str, ...]:
        """The lanes of `kind`: its channels' lanes in the order the route names them, then those
        that take it whatever the routes say."""
        named = [lane.name for c in channels for lane in self.lanes.values() if lane.channel == c]
        fixed = [lane.name for lane in self.lanes.values() if kind in lane.kinds and lane.name not in named]
        return (*named, *fixed)

    def transitions(self, transitions: Sequence[Transition], status: StatusOf) -> list[Announcement]:
        """What to enqueue for transitions just recorded."""
        out: list[Announcement] = []
        for t in transitions:
            news = TransitionNews(t.incident, status(t.incident).title, t.kind, t.at, t.state, t.detail)
            if t.kind in (Kind.MITIGATED, Kind.CLOSED):
                # A new streak clock: its first reset is news. What was held goes out first.
                r = self._resets.pop(t.incident, None)
                if r is not None and r.held and r.latest is not None:
                    out += self._route(replace(r.latest, also=r.held - 1))
            if t.kind is Kind.STREAK_RESET:
                due = self._reset_due(t.incident, news)
                if due is None:
                    r = self._resets[t.incident]
                    assert r.last_sent is not None  # held: a reset went out before
                    summary = replace(news, also=r.held - 1)
                    out += self._route(summary, held_until=r.last_sent + self.reset_every)
                    continue
                news = due
            out += self._route(news)
        return out + self._statuses(out, status)

    def note(
        self, incident: str, kind: Kind, at: float, detail: Detail, status: StatusOf
    ) -> list[Announcement]:
        """What to enqueue for a note just put on the timeline (an alert that cleared, a hypothesis,
        an escalation)."""
        now = status(incident)
        out = self._route(TransitionNews(incident, now.title, kind, at, now.state, detail))
        return out + self._statuses(out, status)

    def escalation(self, incident: str, title: str, at: float, cause: str) -> list[Announcement]:
        """What to enqueue when the runbook escalates `incident`: a page on the escalation key.

        The seam for the escalation decision: the daemon hands what this returns to the
        pipeline (`Pipeline.announce`), once per cause, in the commit that records it."""
        return self._route(EscalationNews(incident, title, at, cause))

    def tick(self, incidents: Sequence[IncidentStatus]) -> list[Announcement]:
        """Held streak resets whose interval has passed, and the heartbeat when it is due."""
        now = self.clock()
        out: list[Announcement] = []
        for incident, r in list(self._resets.items()):
            if r.held and r.latest is not None and r.last_sent is not None:
                if now - r.last_sent >= self.reset_every:
                    out += self._route(replace(r.latest, also=r.held - 1))
                    r.last_sent, r.held, r.latest = now, 0, None
            elif not r.held and r.last_sent is not None and now - r.last_sent >= self.reset_every:
                del self._resets[incident]
        return out + self._heartbeat(now, incidents) + self._refresh(now, incidents)

    # ---- the rules -----------------------------------------------------------------

    def _reset_due(self, incident: str, news: TransitionNews) -> TransitionNews | None:
        """The reset to announce now (saying how many were held before it), or None: held."""
        now = self.clock()
        r = self._resets.setdefault(incident, _Resets())
        if r.last_sent is not None and now - r.last_sent < self.reset_every:
            r.held += 1
            r.latest = news
            return None
        due = replace(news, also=r.held)
        r.last_sent, r.held, r.latest = now, 0, None
        return due

    def _heartbeat(self, now: float, incidents: Sequence[IncidentStatus]) -> list[Announcement]:
        open_ = [s for s in incidents if s.state is not State.CLOSED]
        if not open_ or not self.routes.get(HEARTBEAT):
            return []
        # The clock starts at the latest of the previous heartbeat and the oldest open
        # incident: a new incident after a quiet week gets its first update a full
        # interval after it opened, not at once.
        start = min(s.opened_at for s in open_)
        if self._beat.at is not None:
            start = max(start, self._beat.at)
        if now < start + self.heartbeat:
            return []
        lines = []
        for s in open_:
            # As JSON reads it back (lists), so that a restart compares like with like.
            fingerprint: tuple[object, ...] = (
                str(s.state),
                s.mitigated_at,
                s.streak_start,
                round(s.clean_streak),
                s.errors,
                s.gaps,
                list(s.blind_sources),
                s.impact.orgs,
                s.impact.affected,
            )
            lines.append(
                HeartbeatLine(
                    incident=s.id,
                    title=s.title,
                    state=s.state,
                    changed=self._beat.seen.get(s.id) != fingerprint,
                    clean_streak=s.clean_streak,
                    window=s.window,
                    streak_start=s.streak_start,
                    errors=s.errors,
                    blind_sources=s.blind_sources,
                    fingerprint=fingerprint,
                    impact=s.impact.lines(),
                )
            )
        self._beat = _Heartbeat(now, {line.incident: line.fingerprint for line in lines})
        beat = HeartbeatNews(now, tuple(lines))
        out: list[Announcement] = []
        for name in self.routes.get(HEARTBEAT, ()):
            if self.lanes[name].heartbeat_edits:
                out += [self._status(name, s, now) for s in open_]
            else:
                out.append(Announcement(name, beat))
        return out

    # ---- living status messages -----------------------------------------------------

    def _statuses(self, out: Sequence[Announcement], status: StatusOf) -> list[Announcement]:
        """After news on a living lane, the status of each incident it was about."""
        now = self.clock()
        about: dict[tuple[str, str], None] = {}  # ordered: first news first
        for a in out:
            if self.lanes[a.channel].living and isinstance(a.news, TransitionNews):
                about[(a.channel, a.news.incident)] = None
        return [self._status(lane, status(incident), now) for lane, incident in about]

    def _refresh(self, now: float, incidents: Sequence[IncidentStatus]) -> list[Announcement]:
        """Statuses whose look changed (the progress bar moved) on lanes due for a refresh."""
        out: list[Announcement] = []
        for name in self.routes.get(str(Kind.OPENED), ()):
            lane = self.lanes[name]
            if (
                not lane.living
                or lane.refresh <= 0
                or now - self._refreshed.get(name, -math.inf) < lane.refresh
            ):
                continue
            self._refreshed[name] = now
            for s in incidents:
                if s.state is not State.CLOSED and self._shown.get((name, s.id)) != _look(s):
                    out.append(self._status(name, s, now))
        return out

    def _status(self, lane: str, s: IncidentStatus, now: float) -> Announcement:
        self._shown[(lane, s.id)] = _look(s)
        if s.state is State.CLOSED:
            del self._shown[(lane, s.id)]
        return Announcement(lane, StatusNews.of(s, now))

    def _route(self, news: News, held_until: float | None = None) -> list[Announcement]:
        return [Announcement(lane, news, held_until) for lane in self.routes.get(kind_of(news), ())]


def _look(s: IncidentStatus) -> tuple[object, ...]:
    """What a status message shows, but for its `updated` time: an edit is due when this changes."""
    return (s.state, progress_bar(s.clean_streak, s.window), s.errors, s.gaps, s.blind_sources, s.resolved_at)
