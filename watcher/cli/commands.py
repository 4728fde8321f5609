"""`watcher check-config`, `watcher run` and `watcher notify test`: the commands about the config.

Every import beyond typer and the app happens inside the command that needs it:
pydantic, aiohttp and asyncssh would add half a second to every other command.
"""

import json

import typer

from watcher.cli.base import (
    Command,
    ConfigOpt,
    JsonOpt,
    command,
    config_path,
    err,
    escape,
    load_settings,
    new_app,
    out,
    subcommands,
)
from watcher.errors import ConfigError

cli = new_app()


@cli.command("check-config", cls=Command)
@command
def check_config(config_file: ConfigOpt = None) -> None:
    """Validate the config and reach each source; exit 1 with one line per problem."""
    from watcher.cli import checks
    from watcher.sources.registry import source_names

    path = config_path(config_file)
    try:
        # With the running daemon's state_dir when it was started with this config (`make run`).
        settings = load_settings(config_file)
    except ConfigError as exc:  # still reach what can be reached: every problem in one run
        from watcher import config

        report = checks.probe(config.valid_sources(path))
        _warn(report.warnings)
        raise ConfigError(exc.problems + report.problems) from None
    report = checks.run(settings)
    _warn(report.warnings)
    if report.problems:
        raise ConfigError(report.problems)
    names = ", ".join(source_names(settings)) or "none"
    out.print(f"{path or 'built-in defaults'}: ok ({len(settings.rules)} rules; sources: {names})")


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        err.print(f"[yellow]warning[/yellow]: {escape(warning)}")


@cli.command(cls=Command)
@command
def run(config_file: ConfigOpt = None) -> None:
    """The daemon: follow every source, verify incidents, serve /metrics and the API."""
    import asyncio

    from watcher.daemon.daemon import Daemon

    settings = load_settings(config_file)
    _log_to_stderr()
    asyncio.run(Daemon(settings, config_file=config_path(config_file)).serve())


def _log_to_stderr() -> None:
    """`2026-11-27T14:05:03.120Z INFO watcher.daemon: ...`; without the time under journald,
    which stamps every line itself."""
    import logging
    import os
    import sys
    import time

    stream = os.fstat(sys.stderr.fileno())
    journald = os.environ.get("JOURNAL_STREAM") == f"{stream.st_dev}:{stream.st_ino}"
    handler = logging.StreamHandler(sys.stderr)
    line = "%(levelname)s %(name)s: %(message)s"
    formatter = logging.Formatter(line if journald else "%(asctime)s " + line)
    formatter.converter = time.gmtime
    formatter.default_time_format = "%Y-%m-%dT%H:%M:%S"
    formatter.default_msec_format = "%s.%03dZ"
    handler.setFormatter(formatter)
    logging.basicConfig(level=os.environ.get("WATCHER_LOG_LEVEL", "INFO").upper(), handlers=[handler])
    # asyncssh logs every connect and channel at INFO: hundreds of gateways would drown the rest.
    logging.getLogger("asyncssh").setLevel(logging.WARNING)


notify_app = subcommands("Announcement channels (Slack-compatible or JSON webhooks).")
cli.add_typer(notify_app, name="notify")


@notify_app.command("test", cls=Command)
@command
def notify_test(config_file: ConfigOpt = None, json_out: JsonOpt = False) -> None:
    """Send a test message to each configured channel, as the daemon would; exit 1 if one fails."""
    import asyncio
    import socket

    from watcher.notify.channels import send_test

    settings = load_settings(config_file)
    results = asyncio.run(send_test(settings.notify, host=socket.gethostname()))
    if json_out:
        print(json.dumps({"channels": [r.as_json() for r in results]}))
    else:
        for r in results:
            if r.ok:
                out.print(f"{r.channel}: ok (HTTP {r.status})")
            else:
                out.print(f"[red]{r.channel}: failed[/red]: {escape(r.error or '')}", markup=True)
    if not all(r.ok for r in results):
        raise typer.Exit(1)
