"""`watcher`: the command line, the only package that prints or exits."""

from watcher.cli import commands, snapshot
from watcher.cli.base import app
from watcher.cli.snapshot import EXIT_PARTIAL

__all__ = ["EXIT_PARTIAL", "app", "commands", "snapshot"]
