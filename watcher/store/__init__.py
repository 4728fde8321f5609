"""The one embedded state store: SQLite in WAL mode under `state_dir`.

Holds what must survive a restart: incidents and their mitigations, the timeline,
each source's resume point, the engine's snapshot and the announcement outbox.
`db` opens, migrates and runs transactions; `store` and `outbox` are what the rest
of the watcher calls; `rows` is what they hand back; `schema` the migrations.
"""

from watcher.store.store import Store

__all__ = ["Store"]
