"""The `watcher` app and what every command shares: consoles, options, one-line errors.

Every failure a user can cause is a WatcherError and becomes one line on stderr
and a non-zero exit; anything else is reported as an internal error without a
traceback unless WATCHER_DEBUG is set.

Everything a command shows goes through `out` and `err`, which never let a character
steer the terminal (watcher.cli.console).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer

# typer vendors click; its group class is where the command listing is formatted.
from typer._click.core import Command as ClickCommand
from typer._click.core import Context, Parameter
from typer._click.formatting import HelpFormatter
from typer.core import TyperCommand, TyperGroup

from watcher import __version__
from watcher.cli.console import deferred_console
from watcher.config.endpoint import DEFAULT_CONFIG, SYSTEM_CONFIG, Endpoint, resolve
from watcher.errors import ConfigError, WatcherError

if TYPE_CHECKING:
    from watcher.config import RuleSettings, Settings


class Group(TyperGroup):
    """A command group whose listing shows each summary whole, wrapped (click cuts it with '...')."""

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.short_help or summary(cmd.help or "")))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class Command(TyperCommand):
    """Arguments shown by their metavar alone (`ID`, `FILE...`), as options are.

    typer would write `{ID}` in the usage line and `ID <str>` in the list."""

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(_argument(param))
            else:
                pieces += param.get_usage_pieces(ctx)
        return pieces

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        args: list[tuple[str, str]] = []
        opts: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                args.append((_argument(param), record[1]))
            else:
                opts.append(record)
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def _argument(param: Parameter) -> str:
    name = param.metavar or (param.name or "").upper()
    if param.nargs != 1 and not name.endswith("..."):
        name += "..."
    return name if param.required else f"[{name}]"


def summary(doc: str) -> str:
    """A docstring's first paragraph on one line."""
    return " ".join(doc.strip().split("\n\n")[0].split())


COMMANDS: dict[str, str] = {
    "demo": "demo",
    "incident": "incidents",
    "status": "incidents",
    "timeline": "incidents",
    "statuspage": "runbook",
    "postmortem": "runbook",
    "sites": "fleet",
    "snapshot": "snapshot",
    "run": "commands",
    "check-config": "commands",
    "notify": "commands",
    "classify": "logs",
    "replay": "logs",
}
"""Each command, in the order `watcher --help` lists them, and the module `watcher.cli.X` that
defines it on its own `cli` Typer. Only the module of the command being run is imported and
turned into click objects: typer otherwise inspects every command's signature on each call."""


class _Main(Group):
    def list_commands(self, ctx: Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Context, cmd_name: str) -> ClickCommand | None:
        module = COMMANDS.get(cmd_name)
        return None if module is None else _commands_of(module).commands.get(cmd_name)


@functools.cache
def _commands_of(module: str) -> TyperGroup:
    cli: typer.Typer = importlib.import_module(f"watcher.cli.{module}").cli
    return typer.main.get_group(cli)


def new_app() -> typer.Typer:
    """The Typer a command module defines its commands on (`cli = new_app()`)."""
    return typer.Typer(cls=Group, rich_markup_mode=None)


def subcommands(help: str) -> typer.Typer:
    """A `watcher X` group of subcommands, listed like the top level."""
    return typer.Typer(help=help, cls=Group, no_args_is_help=True, rich_markup_mode=None)


app = typer.Typer(
    cls=_Main,
    name="watcher",
    help="Proves 'zero errors in the watched logs for 15 minutes' in event time.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = deferred_console(highlight=False, soft_wrap=True, emoji=False)
err = deferred_console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

P = ParamSpec("P")
R = TypeVar("R")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        metavar="FILE",
        help="TOML config (default: $WATCHER_CONFIG, ./config/watcher.toml, then "
        "/etc/novavms-watcher/watcher.toml).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
RedactOpt = Annotated[
    bool,
    typer.Option(
        "--redact/--no-redact",
        help="Hide credentials in log text (default); --no-redact needs the API token, like a change.",
    ),
]


def fail(kind: str, message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]{kind}[/red]: {message}", markup=True, highlight=False)
    return typer.Exit(code)


def command(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn every failure into one clear line per problem and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            for problem in exc.problems:
                err.print(f"[red]ConfigError[/red]: {escape(problem)}")
            raise typer.Exit(1) from None
        except WatcherError as exc:
            raise fail(type(exc).__name__, escape(str(exc))) from None
        except BrokenPipeError:
            # `watcher classify --show | head`: the reader left; not an error worth a message.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if os.environ.get("WATCHER_DEBUG"):
                raise
            raise fail(
                "internal error",
                f"{type(exc).__name__}: {escape(str(exc))} (WATCHER_DEBUG=1 shows it)",
                70,
            ) from None

    return wrapper


def escape(text: str) -> str:
    return text.replace("[", "\\[")


def config_path(given: Path | None) -> Path | None:
    if given is not None:
        return given
    env = os.environ.get("WATCHER_CONFIG")
    if env:
        return Path(env)
    for candidate in (DEFAULT_CONFIG, SYSTEM_CONFIG):
        if candidate.exists():
            return candidate
    return None


def endpoint(given: Path | None) -> Endpoint:
    """Where the daemon is, for commands that only talk to it (no full config validation)."""
    return resolve(config_path(given))


def load_rules(given: Path | None) -> RuleSettings:
    """The config's rules alone: the rest of the file is neither read nor checked."""
    from watcher import config

    return config.load_rules(config_path(given))


def load_settings(given: Path | None) -> Settings:
    """The whole config; with the running daemon's state_dir and address when its run file has them."""
    from watcher import config

    where = endpoint(given)
    overrides = (
        {"state_dir": str(where.state_dir), "http": {"listen": where.listen}} if where.recorded else None
    )
    return config.load(where.config, overrides)


@app.callback(invoke_without_command=True)
def _main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        out.print(f"novavms-watcher {__version__}")
        raise typer.Exit(0)
