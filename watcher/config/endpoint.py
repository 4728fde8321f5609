"""Where a daemon is: its API address and state_dir, read fast, and the daemon's own record of them.

The CLI's commands that only talk to the daemon need two keys, `http.listen` and
`state_dir`. They are read here from the TOML file and the environment (the same
keys and precedence as `load()`), without validating the rest of the config, so
those commands start in a fraction of the time pydantic takes to import.

A daemon started with `--config FILE` also leaves a *run file*: where it really
listens and keeps its state, which the environment it was started with may have
changed (`make run` sets WATCHER_STATE_DIR). The file lives in the user's private
runtime directory (`$XDG_RUNTIME_DIR/novavms-watcher`, else
`/tmp/novavms-watcher-UID`, mode 0700, as tmux does) and is named after the config
file's real path, so a CLI of the same user that reads the same config finds the
daemon that config started, from any terminal, without exported variables. A value
set in the CLI's own environment still wins; a run file of a process that is gone is
ignored. Nothing here imports pydantic.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watcher.errors import ConfigError

DEFAULT_CONFIG = Path("config/watcher.toml")
"""Relative to the working directory: a checkout's config, for `make run` and the CLI beside it."""
SYSTEM_CONFIG = Path("/etc/novavms-watcher/watcher.toml")
DEFAULT_STATE_DIR = Path("/var/lib/novavms-watcher")
DEFAULT_LISTEN = "127.0.0.1:9108"
TOKEN_FILE = "api-token"
"""The daemon's API token, in its state_dir (watcher.daemon.token)."""
_STATE_ENV = "watcher_state_dir"
_LISTEN_ENV = "watcher_http__listen"


def check_listen(value: str) -> str:
    """`value` if it is HOST:PORT; ValueError with the sentence a user reads otherwise."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:9108, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the CLI looks for the daemon, and why there."""

    config: Path | None
    """The config file read; None for the built-in defaults."""
    listen: str
    state_dir: Path
    via: str
    """Where `listen` and `state_dir` came from, for the sentence when nothing answers."""
    recorded: bool = False
    """Both come from the run file of the daemon started with `config`."""

    def token_path(self) -> Path:
        return self.state_dir / TOKEN_FILE

    def tried(self) -> str:
        """`config F, state_dir S, address A (from ...)`: what a failing command names."""
        return (
            f"config {self.config or 'none (built-in defaults)'}, state_dir {self.state_dir}, "
            f"address {self.listen} ({self.via})"
        )


def resolve(config: Path | None, env: Mapping[str, str] | None = None) -> Endpoint:
    """The daemon's address and state_dir for `config`: the CLI's environment, else the run
    file of the daemon started with that config, else the config file, else the defaults."""
    environ = {k.lower(): v for k, v in (os.environ if env is None else env).items()}
    listen, state_dir = DEFAULT_LISTEN, DEFAULT_STATE_DIR
    via = "built-in defaults"
    if config is not None:
        listen, state_dir = _from_file(config)
        via = "from the config"
    record = read_run_file(config, environ) if config is not None else None
    if record is not None:
        listen, state_dir = record.listen, record.state_dir
        via = f"from the running daemon's {record.via}"
    if _LISTEN_ENV in environ or _STATE_ENV in environ:
        via = "from WATCHER_* in the environment"
    try:
        listen = check_listen(environ.get(_LISTEN_ENV, listen))
    except ValueError as exc:
        raise ConfigError([f"http.listen: {exc}"]) from None
    state = Path(environ.get(_STATE_ENV, state_dir))
    return Endpoint(config, listen, state, via, recorded=record is not None)


def read_toml(path: Path) -> dict[str, Any]:
    """The config file's TOML; ConfigError in one line when it cannot be read or parsed."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None


def _from_file(path: Path) -> tuple[str, Path]:
    data = read_toml(path)
    http = data.get("http", {})
    listen = http.get("listen", DEFAULT_LISTEN) if isinstance(http, dict) else DEFAULT_LISTEN
    state_dir = data.get("state_dir", str(DEFAULT_STATE_DIR))
    if not isinstance(listen, str) or not isinstance(state_dir, str):
        raise ConfigError([f"{path}: state_dir and http.listen must be strings"])
    return listen, Path(state_dir)


# ---- the run file -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRecord:
    config: Path
    listen: str
    state_dir: Path
    pid: int
    via: str
    """`run file PATH`."""


def run_file(config: Path, env: Mapping[str, str] | None = None) -> Path:
    """The run file of a daemon started with `config` (which need not exist yet)."""
    environ = {k.lower(): v for k, v in (os.environ if env is None else env).items()}
    runtime = environ.get("xdg_runtime_dir")
    base = Path(runtime) / "novavms-watcher" if runtime else Path(f"/tmp/novavms-watcher-{os.getuid()}")
    # A short name for the path; the run file also holds the path, checked when it is read.
    key = zlib.crc32(str(config.resolve()).encode())
    return base / f"daemon-{key:08x}.json"


def write_run_file(config: Path, *, listen: str, state_dir: Path, pid: int) -> Path | None:
    """Record where the daemon started with `config` listens; None when the directory is unsafe."""
    path = run_file(config)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(path.parent):
            return None
        tmp = path.with_name(f".{path.name}.{pid}")
        tmp.write_text(
            json.dumps(
                {"config": str(config.resolve()), "listen": listen, "state_dir": str(state_dir), "pid": pid}
            )
        )
        tmp.replace(path)
    except OSError:
        return None
    return path


def remove_run_file(path: Path, pid: int) -> None:
    """Remove the run file if it is still this process's (a newer daemon may have replaced it)."""
    record = _load(path)
    if record is not None and record.pid == pid:
        path.unlink(missing_ok=True)


def read_run_file(config: Path, env: Mapping[str, str] | None = None) -> RunRecord | None:
    path = run_file(config, env)
    if not _private(path.parent):
        return None
    record = _load(path)
    if record is None or record.config != config.resolve() or not _alive(record.pid):
        return None
    return record


def _load(path: Path) -> RunRecord | None:
    try:
        doc = json.loads(path.read_text())
        listen, state_dir, pid = check_listen(doc["listen"]), Path(doc["state_dir"]), int(doc["pid"])
        return RunRecord(Path(doc["config"]), listen, state_dir, pid, f"run file {path}")
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _private(directory: Path) -> bool:
    """Ours and closed to others: a run file elsewhere could point the CLI at anyone's daemon."""
    try:
        st = directory.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
