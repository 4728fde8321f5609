"""`watcher run`: the daemon's wiring and lifecycle, its record pipeline, the commands its
HTTP API serves, and what it keeps per source."""
