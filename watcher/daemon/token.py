"""The API token that the CLI must present for mutating calls.

The daemon creates `<state_dir>/api-token` (mode 0600) on its first start and
reuses it afterwards; the CLI reads the same file. File permissions are the
whole access control: whoever can read the watcher's state can drive it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from watcher.config.endpoint import TOKEN_FILE
from watcher.errors import DaemonError

if TYPE_CHECKING:
    import logging


def _log() -> logging.Logger:
    # Imported here: the CLI reads the token on every mutating call and logs nothing.
    import logging

    return logging.getLogger(__name__)


def load_or_create_token(state_dir: Path) -> str:
    """The daemon's token: read it, or create it on first start."""
    path = state_dir / TOKEN_FILE
    try:
        return _read(path, tighten=True)
    except FileNotFoundError:
        pass
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return _create(path)
    except FileExistsError:
        return _read(path, tighten=True)  # another process created it first: use theirs
    except OSError as exc:
        raise DaemonError(f"cannot create {path}: {_reason(exc)}") from None


def read_token(state_dir: Path) -> str:
    """The CLI's view of the token; DaemonError says what to do when it cannot be read."""
    return read_token_file(
        state_dir / TOKEN_FILE,
        missing=f"no API token in {state_dir}: has the daemon ever started with this state_dir?",
    )


def read_token_file(path: Path, *, missing: str) -> str:
    """The token in `path` (another site's, copied from its state_dir); DaemonError(`missing`)
    when there is no such file."""
    try:
        return _read(path, tighten=False)
    except FileNotFoundError:
        raise DaemonError(missing) from None


def _create(path: Path) -> str:
    import secrets  # only the daemon creates one; the CLI need not import hashlib for it

    token = secrets.token_urlsafe(32)
    # Write a private temporary file, then link it into place: the link fails if the
    # name exists, so readers never see a half-written token and two racing daemons
    # agree on one token.
    tmp = path.with_name(f".{TOKEN_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _log().info("created the API token in %s", path)
    return token


def _read(path: Path, *, tighten: bool) -> str:
    try:
        with path.open("r", encoding="ascii") as fh:
            if tighten:
                mode = os.fstat(fh.fileno()).st_mode
                if mode & 0o077:
                    _tighten(path, fh.fileno(), stat.S_IMODE(mode))
            token = fh.read().strip()
    except FileNotFoundError:
        raise
    except PermissionError:
        raise DaemonError(
            f"cannot read {path}: permission denied (run as the watcher's user or with sudo)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DaemonError(f"cannot read {path}: {_reason(exc)}") from None
    if not token or any(c.isspace() for c in token):
        raise DaemonError(f"{path} does not hold a token: delete it and start the daemon to create a new one")
    return token


def _tighten(path: Path, fd: int, mode: int) -> None:
    # Someone loosened it (a restore, a copy); the daemon owns it, so it puts it back.
    try:
        os.fchmod(fd, 0o600)
    except OSError as exc:
        _log().warning("%s is readable by others (mode %o) and cannot be fixed: %s", path, mode, exc)
    else:
        _log().warning("%s was readable by others (mode %o); set it back to 0600", path, mode)


def _reason(exc: OSError | UnicodeDecodeError) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return "not a text file" if isinstance(exc, UnicodeDecodeError) else str(exc)
