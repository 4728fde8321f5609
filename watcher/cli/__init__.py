"""`watcher`: the command line, the only package that prints or exits.

Importing the command modules registers their commands on `app`.
"""

from watcher.cli import commands, snapshot
from watcher.cli.base import app

__all__ = ["app", "commands", "snapshot"]
