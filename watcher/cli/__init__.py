"""`watcher`: the command line, the only package that prints or exits.

`app` is the entry point. Each command lives in a module of this package
(`watcher.cli.base.COMMANDS` says which) that is imported only when that command
runs, and imports little at its top: a command that talks to the daemon starts in
about the time Python, typer and rich take to load (bench/cli_startup.py).
"""

from watcher.cli.base import app

__all__ = ["app"]
