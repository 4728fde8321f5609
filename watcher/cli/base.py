"""The `watcher` app and what every command shares: consoles, options, one-line errors.

Every failure a user can cause is a WatcherError and becomes one line on stderr
and a non-zero exit; anything else is reported as an internal error without a
traceback unless WATCHER_DEBUG is set.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from watcher import __version__, config
from watcher.errors import ConfigError, WatcherError

app = typer.Typer(
    name="watcher",
    help="Proves 'zero errors in the watched logs for 15 minutes' in event time.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config (default: $WATCHER_CONFIG, ./config/watcher.toml)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


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
    for candidate in (config.DEFAULT_CONFIG, Path("/etc/novavms-watcher/watcher.toml")):
        if candidate.exists():
            return candidate
    return None


def load_settings(given: Path | None) -> config.Settings:
    return config.load(config_path(given))


@app.callback(invoke_without_command=True)
def _main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        out.print(f"novavms-watcher {__version__}")
        raise typer.Exit(0)
