"""`make install-system` on a fresh root: the user, the directories, the venv, the unit, verified.

systemd is not PID 1 here, so the unit itself cannot be started. What is tested for real
instead: the installer run by make as root into a fresh root (ROOT=), the unit file as
installed checked by `systemd-analyze verify` and `security --offline`, and the installed
`watcher run` started with the installed config as the service user (setpriv, the unit's
uid and gid), answering /healthz and naming its down sources on /readyz.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_binary, unavailable
from tests.support import ROOT as CHECKOUT
from tests.support import free_port, wait_for

pytestmark = pytest.mark.slow
PYTHON = Path("/usr/bin/python3")
NAME = "novavms-watcher"


@pytest.fixture(scope="module")
def installed() -> Iterator[Path]:
    """A fresh root (passwd, group and shadow with root and the docker group only) after the install."""
    if os.geteuid() != 0:
        unavailable("install-system needs root", "CI runs as root: install-system must be tested")
    for tool in ("useradd", "setpriv", "systemd-analyze", "make"):
        require_binary(tool)
    if not PYTHON.exists():
        unavailable("no /usr/bin/python3", "python3 is missing in CI")
    # Not under pytest's 0700 tmp: the service user must reach the venv and its state.
    root = Path(tempfile.mkdtemp(prefix="watcher-install-", dir="/var/tmp"))
    root.chmod(0o755)
    etc = root / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\ndocker:x:107:\nsystemd-journal:x:999:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\ndocker:!::\nsystemd-journal:!::\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
    done = subprocess.run(
        ["make", "-C", str(CHECKOUT), "install-system", f"ROOT={root}", f"PYTHON={PYTHON}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def account(root: Path) -> list[str]:
    return next(
        line.split(":") for line in (root / "etc/passwd").read_text().splitlines() if line.startswith(NAME)
    )


def test_the_service_user(installed: Path) -> None:
    """A system account with its own group, no login shell, the state directory as home."""
    user = account(installed)
    assert int(user[2]) < 1000 and user[5] == f"/var/lib/{NAME}" and user[6] == "/usr/sbin/nologin"
    assert any(
        line.startswith(f"{NAME}:x:{user[3]}:") for line in (installed / "etc/group").read_text().splitlines()
    )


def test_directories_and_config(installed: Path) -> None:
    """/etc/novavms-watcher root:watcher 0750 with the shipped config 0640; the state 0700 its own."""
    uid, gid = int(account(installed)[2]), int(account(installed)[3])
    expected = {
        f"etc/{NAME}": (0, gid, 0o750),
        f"etc/{NAME}/watcher.toml": (0, gid, 0o640),
        f"var/lib/{NAME}": (uid, gid, 0o700),
    }
    for path, (owner, group, mode) in expected.items():
        st = (installed / path).stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (owner, group, mode), path
    shipped = (CHECKOUT / "config/watcher.toml").read_text()
    assert (installed / f"etc/{NAME}/watcher.toml").read_text() == shipped


def test_the_package_in_its_own_venv_not_editable_without_test_extras(installed: Path) -> None:
    venv = installed / f"opt/{NAME}"
    listed = subprocess.run(
        [str(venv / "bin/pip"), "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    assert "novavms-watcher==0.1.0" in listed
    for extra in ("pytest", "hypothesis", "mypy", "ruff", "testcontainers"):
        assert f"\n{extra}==" not in "\n" + listed, extra
    assert not list(venv.glob("lib/python3*/site-packages/__editable__*")), "an editable install"
    assert (venv / "README.md").exists()
    link = installed / "usr/local/bin/watcher"
    assert link.is_symlink() and os.readlink(link) == f"/opt/{NAME}/bin/watcher"


def test_unit_and_docker_drop_in_verify(installed: Path, tmp_path: Path) -> None:
    """The unit as installed passes `systemd-analyze verify` (with the docker drop-in folded in)
    and `security --offline=true` rates it OK."""
    unit = installed / f"etc/systemd/system/{NAME}.service"
    dropin = installed / f"etc/systemd/system/{NAME}.service.d/docker.conf"
    assert "SupplementaryGroups=docker" in dropin.read_text()
    text = unit.read_text()
    assert f"ExecStart=/opt/{NAME}/bin/watcher run --config /etc/{NAME}/watcher.toml" in text
    # verify looks for ExecStart on this machine: point it into the fresh root.
    checked = tmp_path / f"{NAME}.service"
    checked.write_text(
        text.replace(f"/opt/{NAME}/bin/watcher", str(installed / f"opt/{NAME}/bin/watcher"))
        + dropin.read_text()
    )
    verify = subprocess.run(["systemd-analyze", "verify", str(checked)], capture_output=True, text=True)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", f"--root={installed}", f"{NAME}.service"],
        capture_output=True,
        text=True,
    )
    assert security.returncode == 0, security.stdout + security.stderr
    assert "Overall exposure level for novavms-watcher.service: 1.5 OK" in security.stdout


def test_installed_daemon_runs_with_the_shipped_config_as_the_service_user(installed: Path) -> None:
    """What ExecStart runs, as the unit's user: alive on /healthz, its down sources on /readyz."""
    uid, gid = account(installed)[2], account(installed)[3]
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        # The only differences from the unit: the state in the fresh root, a free port.
        "WATCHER_STATE_DIR": str(installed / f"var/lib/{NAME}"),
        "WATCHER_HTTP__LISTEN": f"127.0.0.1:{port}",
    }
    argv = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
    argv += [
        str(installed / f"opt/{NAME}/bin/watcher"),
        "run",
        "--config",
        str(installed / f"etc/{NAME}/watcher.toml"),
    ]
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_for("/healthz", lambda: _get(port, "/healthz") == (200, "ok\n"), 30, alive=lambda: _alive(proc))
        # Every source has said whether it is up: the start-up report is in the log.
        wait_for("first states", lambda: _told(_get(port, "/readyz")[1]), 30)
        status, body = _get(port, "/readyz")
        assert status == 503 and "cloud: DOWN: unix:///var/run/docker.sock" in body, body
        assert "edge: DOWN: /var/log/novavms/edge/error.log" in body, body
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "source cloud: docker unix:///var/run/docker.sock, compose project novavms: DOWN" in err


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _told(readyz: str) -> bool:
    return readyz != "starting\n" and "no answer yet" not in readyz


def _alive(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is not None:
        raise AssertionError(
            f"the installed daemon exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
        )
