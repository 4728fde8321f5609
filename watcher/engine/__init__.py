"""The resolution rule as a pure state machine over event time: no I/O, no clock.

`Engine` (machine.py) is fed records, watermarks, gaps and incident commands and
returns transitions; `IncidentStatus` (incident.py) is what it reports. The daemon
and `replay` use the same engine, so the same logs always give the same verdict.
"""

from watcher.engine.incident import IncidentStatus
from watcher.engine.machine import Engine

__all__ = ["Engine", "IncidentStatus"]
