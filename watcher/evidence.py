"""Evidence on request: `watcher snapshot`, taken here or by the daemon, and what `--then` does after it.

A `Request` is what the user asked for; `take_configured` collects it from the
configured sources in scope (each source kind plans its own collection jobs), the
same way in the CLI and in the daemon (`--via-daemon`, which runs it in a worker
thread). Scope globs match source names as everywhere else: `cloud/<service>`,
`gw/<host>`, a file source's own name. `run_then` runs the mitigation command with
the terminal attached and returns its exit status. The archive itself is written by
watcher.snapshot.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from watcher.config import Settings
from watcher.errors import InputError, SnapshotError
from watcher.events import Trigger
from watcher.names import check_incident_id
from watcher.redact import redact
from watcher.snapshot.collect import Job, Progress, SnapshotResult, take
from watcher.snapshot.manifest import Meta
from watcher.sources.registry import kinds, source_names
from watcher.times import SINCE, parse_duration


@dataclass(frozen=True, slots=True)
class Request:
    reason: str
    incident: str | None = None
    scope: tuple[str, ...] = ()
    since: float | None = None
    """Epoch seconds; None: everything the sources still hold."""
    until: float | None = None
    redact: bool = False
    trigger: Trigger = Trigger.MANUAL

    @classmethod
    def parse(
        cls,
        *,
        reason: str | None,
        incident: str | None,
        scope: Sequence[str],
        since: str,
        redact: bool,
        trigger: Trigger,
        now: float,
    ) -> Request:
        """Validate what the user typed (`--since 2h` is relative to `now`, which is also `until`)."""
        if not reason or not reason.strip():
            raise InputError("--reason is required: say why, e.g. --reason 'before rollback to 2026.11.26'")
        if incident is not None:
            try:
                check_incident_id(incident)
            except ValueError as exc:
                raise InputError(str(exc)) from None
        try:
            back = parse_duration(since, SINCE)
        except ValueError as exc:
            raise InputError(f"--since: {exc}") from None
        return cls(reason.strip(), incident, tuple(scope), now - back, now, redact, trigger)

    def as_json(self) -> dict[str, object]:
        return {
            "reason": self.reason,
            "incident": self.incident,
            "scope": list(self.scope),
            "since": self.since,
            "until": self.until,
            "redact": self.redact,
            "trigger": str(self.trigger),
        }


def redactor(settings: Settings) -> Callable[[bytes], bytes]:
    """Line-wise secret redaction; the configured webhook URLs are hidden too, wherever they appear."""
    hooks = [
        s.get_secret_value() for s in (settings.notify.incident_webhook, settings.notify.oncall_webhook) if s
    ]

    def line(data: bytes) -> bytes:
        # surrogateescape: bytes that are not UTF-8 survive the round trip unchanged.
        return redact(data.decode("utf-8", "surrogateescape"), hooks).encode("utf-8", "surrogateescape")

    return line


def take_configured(
    settings: Settings, req: Request, *, by: str, progress: Progress | None = None
) -> SnapshotResult:
    """Blocking: collect every configured source in the request's scope into one snapshot."""
    meta = Meta(
        created_at=time.time(),
        by=by,
        trigger=req.trigger,
        incident=req.incident,
        reason=req.reason,
        scope=list(req.scope) or ["*"],
        since=req.since,
        until=req.until,
        redacted=req.redact,
    )
    with planned(settings, meta.scope, req.since, req.until) as jobs:
        return take(
            settings.state_dir,
            jobs,
            meta,
            redact=redactor(settings) if req.redact else None,
            progress=progress,
        )


@contextlib.contextmanager
def planned(
    settings: Settings, scope: Sequence[str], since: float | None, until: float | None
) -> Iterator[list[Job]]:
    """The jobs for every source in scope; clients they hold stay open until the block ends."""
    scope = list(scope) or ["*"]
    with contextlib.ExitStack() as stack:
        jobs = [job for kind in kinds(settings) for job in kind.snapshot_jobs(scope, since, until, stack)]
        if not jobs:
            known = ", ".join(source_names(settings)) or "none configured"
            raise SnapshotError(
                f"no source matches the scope {' '.join(scope)} (sources: {known}; "
                "docker sources are <name>/<service>, journal sources <name>/<host>)"
            )
        yield jobs


def run_then(cmd: Sequence[str]) -> int:
    """Run CMD in the foreground; its exit status, or -N when signal N ended it."""
    try:
        proc = subprocess.Popen(list(cmd))
    except FileNotFoundError:
        raise InputError(f"--then: command not found: {cmd[0]}") from None
    except PermissionError:
        raise InputError(f"--then: not executable: {cmd[0]}") from None
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        # Ctrl-C reached CMD too (same process group): let it finish its own way, then report it.
        code = proc.wait()
    return code


def exit_status(code: int) -> int:
    """`run_then`'s result as a shell reports it: 128+N for signal N."""
    return 128 - code if code < 0 else code


def mitigation_action(cmd: Sequence[str], code: int, result: SnapshotResult) -> str:
    """What the timeline says: the command, how it ended, and the evidence taken just before it."""
    ended = f"exit {code}" if code >= 0 else f"killed by {signal.Signals(-code).name}"
    return f"{shlex.join(cmd)} ({ended}) after snapshot {result.path.name} sha256:{result.sha256}"
