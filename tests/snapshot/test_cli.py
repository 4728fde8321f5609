"""`watcher snapshot` as a user types it: the pasteable line, exit codes, --then ordering and refusal."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.daemon.harness import AsyncClient, running
from tests.snapshot.helpers import manifest, rewrite
from tests.support import RULE, free_port
from watcher import config
from watcher.cli import app
from watcher.cli.snapshot import EXIT_PARTIAL
from watcher.names import default_user

runner = CliRunner()
WATCHER = [sys.executable, "-m", "watcher"]


def write_config(tmp_path: Path, *, missing: bool = False, state: Path | None = None) -> Path:
    log = tmp_path / "edge.log"
    log.write_text('2026-11-27T14:00:00Z {"level":"info","msg":"up"}\n')
    extra = (
        f'[[sources]]\nname = "gone"\nkind = "file"\npath = "{tmp_path / "gone.log"}"\n' if missing else ""
    )
    path = tmp_path / "watcher.toml"
    path.write_text(
        f'state_dir = "{state or tmp_path / "state"}"\n'
        f'[http]\nlisten = "127.0.0.1:{free_port()}"\n'
        f'[[sources]]\nname = "edge"\nkind = "file"\npath = "{log}"\n{extra}{RULE}'
    )
    return path


def then_probe(tmp_path: Path, code: int = 7) -> list[str]:
    """A CMD that records which snapshots exist when it starts and whether each verifies."""
    script = (
        "import glob, subprocess, sys\n"
        f"files = glob.glob({str(tmp_path / 'state' / 'snapshots' / '*.tar.gz')!r})\n"
        "codes = [subprocess.run([sys.executable, '-m', 'watcher', 'snapshot', 'verify', f]).returncode"
        " for f in files]\n"
        f"open({str(tmp_path / 'probe')!r}, 'w').write(repr((files, codes)))\n"
        f"sys.exit({code})\n"
    )
    return ["--then", "--", sys.executable, "-c", script]


class TestTake:
    def test_one_pasteable_line(self, tmp_path: Path) -> None:
        """Path, size and sha256 on one line of stdout; exit 0."""
        cfg = write_config(tmp_path)
        res = runner.invoke(app, ["snapshot", "-c", str(cfg), "--reason", "before rollback"])
        assert res.exit_code == 0, res.output
        (line,) = res.stdout.splitlines()
        m = re.fullmatch(r"(\S+) [0-9.]+ (?:B|KiB|MiB|GiB) \(([0-9]+) bytes\) sha256:([0-9a-f]{64})", line)
        assert m is not None, line
        assert Path(m[1]).is_file() and int(m[2]) == Path(m[1]).stat().st_size

    def test_json(self, tmp_path: Path) -> None:
        """--json prints the result object."""
        res = runner.invoke(app, ["snapshot", "-c", str(write_config(tmp_path)), "--reason", "r", "--json"])
        doc = json.loads(res.stdout)
        assert doc["complete"] is True and len(doc["sha256"]) == 64 and Path(doc["path"]).is_file()

    def test_partial_exits_non_zero(self, tmp_path: Path) -> None:
        """A missing source: the snapshot is written, says what is missing, and exits 3."""
        res = runner.invoke(
            app, ["snapshot", "-c", str(write_config(tmp_path, missing=True)), "--reason", "r"]
        )
        assert res.exit_code == EXIT_PARTIAL
        assert "missing: gone: file:" in res.stderr and "partial snapshot" in res.stderr

    def test_allow_partial(self, tmp_path: Path) -> None:
        """--allow-partial accepts it: exit 0, the manifest still says incomplete."""
        cfg = write_config(tmp_path, missing=True)
        res = runner.invoke(app, ["snapshot", "-c", str(cfg), "--reason", "r", "--allow-partial", "--json"])
        assert res.exit_code == 0
        assert manifest(Path(json.loads(res.stdout)["path"]))["complete"] is False

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            ([], "--reason is required"),
            (["--reason", "r", "--since", "soon"], "--since: expected a duration"),
            # Issue case 1: `--since 999999999999d` was an internal error (exit 70).
            (["--reason", "r", "--since", "999999999999d"], "--since: must be between 1s and 366d"),
            (["--reason", "r", "--since", "2"], "--since: 2 has no unit: write 2s or 2m"),
            (["--reason", "r", "--incident", "../x"], "incident id must be"),
            (["--reason", "r", "--scope", "nothing/*"], "no source matches the scope nothing/*"),
            (["--reason", "r", "rm", "x"], "to run a command afterwards use --then -- CMD"),
            (["--reason", "r", "--then"], "--then needs a command"),
        ],
    )
    def test_usage_errors(self, tmp_path: Path, args: list[str], message: str) -> None:
        """Each mistake is one line on stderr and exit 1."""
        res = runner.invoke(app, ["snapshot", "-c", str(write_config(tmp_path)), *args])
        assert res.exit_code == 1 and message in res.stderr and len(res.stderr.splitlines()) == 1


class TestThen:
    def test_runs_after_the_snapshot_verifies(self, tmp_path: Path) -> None:
        """CMD starts only once the snapshot exists and verifies; its exit status is passed through."""
        cfg = write_config(tmp_path)
        res = runner.invoke(app, ["snapshot", "-c", str(cfg), "--reason", "r", *then_probe(tmp_path, 7)])
        assert res.exit_code == 7
        files, codes = eval((tmp_path / "probe").read_text())
        assert len(files) == 1 and codes == [0]
        assert res.stdout.split(" ")[0] == files[0]

    def test_not_run_when_partial(self, tmp_path: Path) -> None:
        """A partial snapshot refuses to run CMD (exit 3) unless --allow-partial."""
        cfg = write_config(tmp_path, missing=True)
        res = runner.invoke(app, ["snapshot", "-c", str(cfg), "--reason", "r", *then_probe(tmp_path)])
        assert res.exit_code == EXIT_PARTIAL and "the command was NOT run" in res.stderr
        assert not (tmp_path / "probe").exists()
        res = runner.invoke(
            app, ["snapshot", "-c", str(cfg), "--reason", "r", "--allow-partial", *then_probe(tmp_path, 0)]
        )
        assert res.exit_code == 0 and (tmp_path / "probe").exists()

    def test_not_run_when_the_snapshot_fails(self, tmp_path: Path) -> None:
        """No snapshot (the state_dir cannot hold one): CMD is not run, exit 1 with the reason."""
        (tmp_path / "blocked").write_text("a file where the state_dir should be\n")
        cfg = write_config(tmp_path, state=tmp_path / "blocked")
        res = runner.invoke(app, ["snapshot", "-c", str(cfg), "--reason", "r", *then_probe(tmp_path)])
        assert res.exit_code == 1 and "SnapshotError: cannot write a snapshot" in res.stderr
        assert not (tmp_path / "probe").exists()

    def test_command_not_found(self, tmp_path: Path) -> None:
        """A CMD that does not exist is one clear line, after the snapshot."""
        cfg = write_config(tmp_path)
        res = runner.invoke(
            app, ["snapshot", "-c", str(cfg), "--reason", "r", "--then", "--", "no-such-cmd-x"]
        )
        assert res.exit_code == 1 and "command not found: no-such-cmd-x" in res.stderr

    def test_daemon_not_running(self, tmp_path: Path) -> None:
        """Without the daemon CMD still runs (a rollback must not wait); the line to record it is printed."""
        cfg = write_config(tmp_path)
        args = ["snapshot", "-c", str(cfg), "--incident", "P1-x", "--reason", "r", *then_probe(tmp_path, 0)]
        res = runner.invoke(app, args)
        assert res.exit_code == 0 and (tmp_path / "probe").exists()
        assert "not recorded" in res.stderr and "watcher incident mitigate P1-x --action" in res.stderr


class TestVerify:
    def test_ok_and_changed(self, tmp_path: Path) -> None:
        """`snapshot verify` exits 0 on an intact file, 1 naming the file whose byte changed."""
        res = runner.invoke(app, ["snapshot", "-c", str(write_config(tmp_path)), "--reason", "r", "--json"])
        path = Path(json.loads(res.stdout)["path"])
        ok = runner.invoke(app, ["snapshot", "verify", str(path)])
        assert ok.exit_code == 0 and "every sha256 matches" in ok.stdout
        rewrite(path, lambda name, data: data.replace(b"up", b"UP") if name == "edge/edge.log" else data)
        bad = runner.invoke(app, ["snapshot", "verify", str(path), "--json"])
        assert bad.exit_code == 1
        doc = json.loads(bad.stdout)
        assert doc["ok"] is False and doc["problems"][0].startswith("edge/edge.log: sha256 ")

    def test_against_the_published_sha256(self, tmp_path: Path) -> None:
        """Issue case 8: `verify FILE --sha256 HEX` checks the archive against the hash posted earlier."""
        res = runner.invoke(app, ["snapshot", "-c", str(write_config(tmp_path)), "--reason", "r", "--json"])
        doc = json.loads(res.stdout)
        path, published = doc["path"], doc["sha256"]
        ok = runner.invoke(app, ["snapshot", "verify", path, "--sha256", f"sha256:{published}"])
        assert ok.exit_code == 0 and "the archive's sha256 is the published one" in ok.stdout
        bad = runner.invoke(app, ["snapshot", "verify", path, "--sha256", "ab" * 32])
        assert bad.exit_code == 1 and f"sha256 {published} is not the published {'ab' * 32}" in bad.stderr
        typo = runner.invoke(app, ["snapshot", "verify", path, "--sha256", "abc"])
        assert typo.exit_code == 1 and "--sha256 takes the 64 hex digits" in typo.stderr


class TestWithDaemon:
    async def test_then_records_the_mitigation(self, tmp_path: Path) -> None:
        """Through the daemon: CMD is a mitigation carrying the snapshot's hash; the streak clock starts."""
        cfg = write_config(tmp_path)
        settings = config.load(cfg)
        async with running(settings):
            client = AsyncClient(settings)
            await client.open_incident("P1-snap", "api down", [], None)
            proc = await asyncio.create_subprocess_exec(
                *WATCHER, "snapshot", "-c", str(cfg), "--incident", "P1-snap", "--reason", "before rollback",
                "--then", "--", "true",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
            sha = out.decode().split("sha256:")[1].strip()
            timeline = await client.timeline("P1-snap")
            mitigations: list[dict[str, str]] = timeline["mitigations"]  # type: ignore[assignment]
            (mitigation,) = mitigations
            assert mitigation["action"].startswith("true (exit 0) after snapshot ")
            assert mitigation["action"].endswith(f"sha256:{sha}")
            status = await client.status()
            incidents: list[dict[str, object]] = status["incidents"]  # type: ignore[assignment]
            (incident,) = incidents
            assert incident["state"] in ("verifying", "blind") and incident["mitigated_at"] is not None

    async def test_via_daemon(self, tmp_path: Path) -> None:
        """--via-daemon: the daemon writes it, puts it on the timeline and counts it."""
        cfg = write_config(tmp_path)
        settings = config.load(cfg)
        async with running(settings) as daemon:
            client = AsyncClient(settings)
            await client.open_incident("P1-via", "api down", [], None)
            proc = await asyncio.create_subprocess_exec(
                *WATCHER, "snapshot", "-c", str(cfg), "--incident", "P1-via", "--reason", "r", "--via-daemon",
                "--json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
            doc = json.loads(out)
            timeline = await client.timeline("P1-via")
            notes = [e for e in timeline["events"] if e["kind"] == "snapshot"]
            assert [n["detail"]["sha256"] for n in notes] == [doc["sha256"]]
            written = manifest(Path(doc["path"]))
            assert (
                written["trigger"] == "manual" and written["by"] == default_user()
            )  # who asked, not the daemon
            assert daemon.registry.get_sample_value("watcher_snapshots_total", {"trigger": "manual"}) == 1.0
