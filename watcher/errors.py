"""Exceptions a user can act on.

WatcherError
 ├── ConfigError    the configuration is wrong: the message names the key
 ├── InputError     a log file or argument cannot be used as given
 ├── SourceError    a source cannot be reached or read
 │    └── HostKeyError   a gateway's host key is not the one in known_hosts
 ├── StoreError     the state store cannot be opened or is from a newer version
 │    └── StateDirBusy   another daemon runs on the same state directory
 ├── DaemonError    the daemon is not running or refused a request
 │    └── DaemonUnreachable  the daemon did not answer (nothing listens, or not in time)
 │         └── DaemonNotRunning  nothing answers on the daemon's address
 ├── IncidentError  a command names an incident that cannot take it
 │    ├── IncidentNotFound  no incident has that id
 │    ├── IncidentExists    opening an id that is taken
 │    ├── IncidentClosed    changing an incident that is closed
 │    └── IncidentNotClosed reopening an incident that is open
 ├── NotifyError    a webhook could not be reached
 └── SnapshotError  an evidence snapshot cannot be written, or does not verify

watcher.cli turns each into one line on stderr and a non-zero exit; nothing else prints them.
"""


class WatcherError(Exception):
    """Base class: `str(exc)` is a complete sentence that says what to fix."""


class ConfigError(WatcherError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class InputError(WatcherError):
    pass


class SourceError(WatcherError):
    pass


class HostKeyError(SourceError):
    """Retrying will not help until someone checks the host and edits known_hosts."""


class StoreError(WatcherError):
    pass


class StateDirBusy(StoreError):
    pass


class DaemonError(WatcherError):
    pass


class DaemonUnreachable(DaemonError):
    pass


class DaemonNotRunning(DaemonUnreachable):
    pass


class IncidentError(WatcherError):
    pass


class IncidentNotFound(IncidentError):
    pass


class IncidentExists(IncidentError):
    pass


class IncidentClosed(IncidentError):
    pass


class IncidentNotClosed(IncidentError):
    pass


class NotifyError(WatcherError):
    pass


class SnapshotError(WatcherError):
    pass
