"""Where the CLI finds the daemon: the config's two keys, the environment, the daemon's run file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from watcher.config.endpoint import (
    DEFAULT_LISTEN,
    DEFAULT_STATE_DIR,
    read_run_file,
    remove_run_file,
    resolve,
    run_file,
    write_run_file,
)
from watcher.errors import ConfigError


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private XDG_RUNTIME_DIR, as a login session has."""
    path = tmp_path / "run"
    path.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(path))
    for name in ("WATCHER_STATE_DIR", "WATCHER_HTTP__LISTEN"):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "watcher.toml"
    path.write_text('state_dir = "/srv/state"\n[http]\nlisten = "127.0.0.1:9200"\n[[rules]]\nname = 1\n')
    return path


class TestResolve:
    def test_the_config_s_two_keys_without_validating_the_rest(self, cfg: Path, runtime: Path) -> None:
        """state_dir and http.listen are read even though a rule is invalid: status still works."""
        where = resolve(cfg)
        assert (where.listen, where.state_dir, where.recorded) == (
            "127.0.0.1:9200",
            Path("/srv/state"),
            False,
        )
        assert (
            where.tried() == f"config {cfg}, state_dir /srv/state, address 127.0.0.1:9200 (from the config)"
        )

    def test_defaults_without_a_config(self, runtime: Path) -> None:
        """No config file: the documented defaults, and the sentence says so."""
        where = resolve(None)
        assert (where.listen, where.state_dir) == (DEFAULT_LISTEN, DEFAULT_STATE_DIR)
        assert "none (built-in defaults)" in where.tried()

    def test_the_run_file_of_the_daemon_started_with_this_config(self, cfg: Path, runtime: Path) -> None:
        """`make run` keeps state elsewhere (WATCHER_STATE_DIR): its run file tells the CLI where."""
        written = write_run_file(
            cfg, listen="127.0.0.1:9300", state_dir=Path("/tmp/dev/.state"), pid=os.getpid()
        )
        assert written == run_file(cfg) and written.parent == runtime / "novavms-watcher"
        where = resolve(cfg)
        assert (where.listen, where.state_dir, where.recorded) == (
            "127.0.0.1:9300",
            Path("/tmp/dev/.state"),
            True,
        )
        assert f"from the running daemon's run file {written}" in where.tried()

    def test_the_environment_wins(self, cfg: Path, runtime: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """WATCHER_STATE_DIR / WATCHER_HTTP__LISTEN set for the CLI win over file and run file."""
        write_run_file(cfg, listen="127.0.0.1:9300", state_dir=Path("/tmp/dev/.state"), pid=os.getpid())
        monkeypatch.setenv("WATCHER_HTTP__LISTEN", "127.0.0.1:9400")
        where = resolve(cfg)
        assert where.listen == "127.0.0.1:9400" and where.state_dir == Path("/tmp/dev/.state")

    def test_a_run_file_of_a_process_that_is_gone_is_ignored(self, cfg: Path, runtime: Path) -> None:
        """A daemon killed with SIGKILL leaves its run file; the CLI goes back to the config."""
        done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
        write_run_file(cfg, listen="127.0.0.1:9300", state_dir=Path("/x"), pid=int(done.stdout))
        assert read_run_file(cfg) is None and resolve(cfg).listen == "127.0.0.1:9200"

    def test_a_run_file_in_a_directory_others_can_write_is_ignored(self, cfg: Path, runtime: Path) -> None:
        """Anyone able to write there could point the CLI (and its token) at their own server."""
        write_run_file(cfg, listen="127.0.0.1:9300", state_dir=Path("/x"), pid=os.getpid())
        (runtime / "novavms-watcher").chmod(0o777)
        assert read_run_file(cfg) is None
        assert write_run_file(cfg, listen="127.0.0.1:9300", state_dir=Path("/x"), pid=os.getpid()) is None

    def test_remove_only_its_own(self, cfg: Path, runtime: Path) -> None:
        """A daemon that stops removes its run file, unless a newer daemon replaced it."""
        path = write_run_file(cfg, listen="127.0.0.1:9300", state_dir=Path("/x"), pid=os.getpid())
        assert path is not None
        remove_run_file(path, os.getpid() + 1)
        assert path.exists()
        remove_run_file(path, os.getpid())
        assert not path.exists()

    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            ('[http]\nlisten = "nowhere"\n', "http.listen: expected HOST:PORT"),
            ("state_dir = [1]\n", "state_dir and http.listen must be strings"),
            ("state_dir = \n", "not valid TOML"),
        ],
    )
    def test_broken_values_are_one_line(self, tmp_path: Path, runtime: Path, body: str, problem: str) -> None:
        """What the CLI cannot use is a ConfigError naming the key or the file."""
        path = tmp_path / "bad.toml"
        path.write_text(body)
        with pytest.raises(ConfigError, match=problem):
            resolve(path)
