"""novavms-watcher: proves "zero errors in the watched logs for 15 minutes" in event time."""

__version__ = "0.1.0"
