"""The file source kind: a local log file followed by name across rotation."""
