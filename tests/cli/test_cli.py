"""The command line: exit codes, one clear line per problem, --json shapes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support import RULE, SHIPPED_CONFIG
from watcher.cli import app

CONFIG = SHIPPED_CONFIG
runner = CliRunner()


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.fixture
def cloud(tmp_path: Path) -> Path:
    """docker logs -t output with one error at 14:10 and a tail to 14:30."""
    return write(
        tmp_path / "cloud.log",
        '2026-11-27T14:00:00.000000001Z {"level":"info","msg":"up"}',
        '2026-11-27T14:10:00.000000000Z {"level":"error","msg":"db down"}',
        '2026-11-27T14:12:00.000000000Z {"level":"info","status":200}',
        '2026-11-27T14:30:00.000000000Z {"level":"info","msg":"still fine"}',
    )


@pytest.fixture
def gw(tmp_path: Path) -> Path:
    """journalctl -o json output that ends at 14:20 (the gateway file stops early)."""
    entries = [
        {"__REALTIME_TIMESTAMP": "1795788000000000", "PRIORITY": "6", "MESSAGE": "started"},
        {"__REALTIME_TIMESTAMP": "1795789200000000", "PRIORITY": "6", "MESSAGE": "camera 4 ok"},
    ]
    return write(tmp_path / "gw.json", *(json.dumps(e) for e in entries))


class TestReplay:
    def test_resolved_json_shape(self, cloud: Path) -> None:
        """One object with the contract's keys; resolved 15 min after the last error."""
        res = runner.invoke(
            app,
            [
                "replay",
                "--config",
                str(CONFIG),
                "--mitigated-at",
                "2026-11-27T14:05:00Z",
                "--json",
                str(cloud),
            ],
        )
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        assert doc["verdict"] == "resolved"
        assert doc["resolved_at"] == "2026-11-27T14:25:00.000Z"
        assert doc["streak_start"] == "2026-11-27T14:10:00.000Z"
        assert doc["errors"] == 1 and doc["lines"] == 4 and doc["gaps"] == []
        assert doc["last_error"] == {
            "time": "2026-11-27T14:10:00.000Z",
            "source": str(cloud),
            "rule": "level",
            "message": '{"level":"error","msg":"db down"}',
        }

    def test_a_file_that_stops_early_proves_nothing_after_its_end(self, cloud: Path, gw: Path) -> None:
        """The gateway journal ends at 14:20, before 14:25: unresolved, exit 3, and it says why."""
        args = ["replay", "--config", str(CONFIG), "--mitigated-at", "2026-11-27T14:05:00Z"]
        res = runner.invoke(app, [*args, str(cloud), str(gw)])
        assert res.exit_code == 3
        assert "UNRESOLVED" in res.stdout and "proves nothing after its end" in res.stdout

    def test_until_asserts_completeness(self, cloud: Path, gw: Path) -> None:
        """--until T makes every file a witness through T."""
        args = ["replay", "--config", str(CONFIG), "--mitigated-at", "2026-11-27T14:05:00Z"]
        res = runner.invoke(app, [*args, "--until", "2026-11-27T14:30:00Z", "--json", str(cloud), str(gw)])
        assert json.loads(res.stdout)["resolved_at"] == "2026-11-27T14:25:00.000Z"

    def test_journal_priority_counts_as_error(self, tmp_path: Path) -> None:
        """PRIORITY 3 in journalctl -o json is an error event at __REALTIME_TIMESTAMP."""
        entry = {"__REALTIME_TIMESTAMP": "1795788600000000", "PRIORITY": "3", "MESSAGE": "rtsp lost"}
        path = write(tmp_path / "gw.json", json.dumps(entry))
        args = ["replay", "--config", str(CONFIG), "--mitigated-at", "2026-11-27T14:00:00Z", "--json"]
        doc = json.loads(runner.invoke(app, [*args, f"gw/berlin={path}"]).stdout)
        assert doc["last_error"]["source"] == "gw/berlin"
        assert doc["last_error"]["rule"] == "priority"
        assert doc["last_error"]["time"] == "2026-11-27T14:10:00.000Z"

    def test_untimed_file_is_refused_clearly(self, tmp_path: Path) -> None:
        """Replay needs the logs' own times: say so instead of guessing."""
        path = write(tmp_path / "plain.log", "hello", "ERROR something")
        res = runner.invoke(
            app, ["replay", "--config", str(CONFIG), "--mitigated-at", "2026-11-27T14:00:00Z", str(path)]
        )
        assert res.exit_code == 1
        assert "timestamp" in res.stderr and "Traceback" not in res.output

    @pytest.mark.parametrize(
        ("args", "needle"),
        [
            (["--mitigated-at", "yesterday"], "RFC 3339"),
            (
                ["--mitigated-at", "2026-11-27T14:00:00Z", "--window", "fifteen"],
                "--window: expected a duration",
            ),
            # Issue case 1: a zero window, a bare number and a 400-digit one are refused, never guessed.
            (
                ["--mitigated-at", "2026-11-27T14:00:00Z", "--window", "0s"],
                "--window: must be between 1s and 24h",
            ),
            (
                ["--mitigated-at", "2026-11-27T14:00:00Z", "--window", "15"],
                "--window: 15 has no unit: write 15s",
            ),
            (["--mitigated-at", "2026-11-27T14:00:00Z", "--window", "9" * 400 + "s"], "--window: expected a"),
        ],
    )
    def test_bad_arguments_are_one_line(self, cloud: Path, args: list[str], needle: str) -> None:
        """A wrong time or duration: exit 1 and one line, no traceback."""
        res = runner.invoke(app, ["replay", "--config", str(CONFIG), *args, str(cloud)])
        assert res.exit_code == 1
        assert needle in res.stderr and len(res.stderr.strip().splitlines()) == 1

    def test_an_out_of_order_file_watermarks_at_its_newest_stamp(self, tmp_path: Path) -> None:
        """An error at 00:10 in a file whose last line says 00:01 is part of the verdict."""
        path = write(
            tmp_path / "app.log",
            '2026-11-27T00:00:30Z {"level":"info"}',
            '2026-11-27T00:10:00Z {"level":"error","msg":"late in the file"}',
            '2026-11-27T00:10:30Z {"level":"info"}',
            '2026-11-27T00:01:30Z {"level":"info","msg":"a straggler, written last"}',
        )
        args = ["replay", "--config", str(CONFIG), "--mitigated-at", "2026-11-27T00:00:00Z", "--window", "1m"]
        doc = json.loads(runner.invoke(app, [*args, "--json", str(path)]).stdout)
        assert doc["verdict"] == "unresolved"
        assert doc["streak_start"] == "2026-11-27T00:10:00.000Z" and doc["errors"] == 1
        assert doc["sources"][str(path)]["watermark"] == "2026-11-27T00:10:30.000Z"

    def test_a_window_without_any_record_cannot_resolve(self, tmp_path: Path) -> None:
        """Silence proves nothing: unresolved, and the verdict says why and names the evidence."""
        path = write(
            tmp_path / "app.log",
            '2026-11-27T14:00:00Z {"level":"info"}',
            '2026-11-27T14:02:00Z {"level":"error","msg":"and then nothing more"}',
        )
        args = ["replay", "--config", str(CONFIG), "--mitigated-at", "2026-11-27T14:01:00Z"]
        res = runner.invoke(app, [*args, "--until", "2026-11-27T15:00:00Z", f"api={path}"])
        assert res.exit_code == 3
        assert "cannot resolve: api: no record in the last 15m since 2026-11-27T14:02:00.000Z" in res.stdout
        assert "evidence: api: 2 lines checked" in res.stdout

    def test_a_quiet_ok_source_resolves_on_silence(self, tmp_path: Path) -> None:
        """A file named like a configured quiet_ok source may stay silent."""
        cfg = write(
            tmp_path / "w.toml",
            RULE,
            f'[[sources]]\nname = "errors"\nkind = "file"\npath = "{tmp_path / "x"}"\nquiet_ok = true',
        )
        path = write(tmp_path / "errors.log", '2026-11-27T14:00:00Z {"level":"info"}')
        args = ["replay", "--config", str(cfg), "--mitigated-at", "2026-11-27T14:01:00Z", "--json"]
        doc = json.loads(
            runner.invoke(app, [*args, "--until", "2026-11-27T15:00:00Z", f"errors={path}"]).stdout
        )
        assert doc["verdict"] == "resolved" and doc["resolved_at"] == "2026-11-27T14:16:00.000Z"

    def test_untimestamped_errors_count_at_the_stamp_before_them(self, tmp_path: Path) -> None:
        """Three `ERROR:` lines after a stamped one are three errors, not continuations of it."""
        path = write(
            tmp_path / "db.log",
            "2026-11-27T14:10:00Z INFO pool ready",
            *["ERROR: database connection refused"] * 3,
            "2026-11-27T14:40:00Z INFO pool ready",
        )
        args = ["replay", "--config", str(CONFIG), "--mitigated-at", "2026-11-27T14:05:00Z", "--json"]
        doc = json.loads(runner.invoke(app, [*args, str(path)]).stdout)
        assert doc["errors"] == 3 and doc["streak_start"] == "2026-11-27T14:10:00.000Z"

    def test_a_config_without_rules_is_refused(self, cloud: Path, tmp_path: Path) -> None:
        """rules = [] would call every log clean: replay and check-config refuse it, naming the key."""
        cfg = write(tmp_path / "w.toml", f'state_dir = "{tmp_path}"', "rules = []")
        for args in (["replay", "--mitigated-at", "2026-11-27T14:05:00Z", str(cloud)], ["check-config"]):
            res = runner.invoke(app, [*args, "--config", str(cfg)])
            assert res.exit_code == 1
            (line,) = res.stderr.strip().splitlines()
            assert line.startswith("ConfigError: rules: no error rules")

    def test_missing_file(self, tmp_path: Path) -> None:
        """A file that does not exist is named in one line."""
        res = runner.invoke(
            app, ["replay", "--config", str(CONFIG), "--mitigated-at", "2026-11-27T14:00:00Z", "nope.log"]
        )
        assert res.exit_code == 1 and "nope.log: no such file" in res.stderr


class TestClassify:
    def test_json_counts_per_rule(self, tmp_path: Path) -> None:
        """Per-rule counts, ignore suppressions, a traceback counted once."""
        path = write(
            tmp_path / "app.log",
            "2026-11-27T14:00:00Z ERROR rtsp session 4 failed",
            "2026-11-27T14:00:01Z Traceback (most recent call last):",
            '  File "/app/x.py", line 3, in run',
            "    raise ValueError('bad')",
            "ValueError: bad",
            'ts=2026-11-27T14:00:02Z level=error msg="camera offline (planned maintenance)"',
            "2026-11-27T14:00:03Z INFO errors=0 all good",
        )
        res = runner.invoke(app, ["classify", "--config", str(CONFIG), "--json", str(path)])
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        assert doc["lines"] == 7 and doc["errors"] == 2
        assert doc["errors_by_rule"]["text-level"] == 1 and doc["errors_by_rule"]["panic"] == 1
        assert doc["ignored_by_rule"]["planned-maintenance"] == 1

    def test_json_starts_without_what_it_does_not_use(self, tmp_path: Path) -> None:
        """`classify --json` imports neither pydantic-settings, rich nor the models of the config
        sections it does not read: 0.15 s, 0.03 s and 0.03 s of every run's start, which on a
        small file is most of its time."""
        path = write(tmp_path / "a.log", "2026-11-27T14:00:00Z FATAL disk full")
        heavy = ["pydantic_settings", "rich", "watcher.config.settings", "watcher.config.sources"]
        probe = (
            "import sys; from watcher.cli import app; app(sys.argv[1:], standalone_mode=False); "
            f"print([m for m in {heavy!r} if m in sys.modules], file=sys.stderr)"
        )
        argv = [sys.executable, "-c", probe, "classify", "--config", str(CONFIG), "--json", str(path)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
        assert json.loads(done.stdout)["errors"] == 1
        assert done.stderr.strip().splitlines()[-1] == "[]"

    def test_reads_the_rules_alone(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A section being written elsewhere in the file does not stop rule tuning; the rules'
        own problems, and WATCHER_RULES, still count."""
        log = write(tmp_path / "a.log", "ERROR one", "panic: two")
        config = tmp_path / "c.toml"
        config.write_text(f'{RULE}[notify]\nheartbeat = "1s"\n[[sources]]\nname = "x"\nkind = "nope"\n')
        res = runner.invoke(app, ["classify", "--config", str(config), "--json", str(log)])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["errors"] == 1
        monkeypatch.setenv("WATCHER_RULES", '[{"name": "p", "regex": "^panic: "}]')
        res = runner.invoke(app, ["classify", "--config", str(config), "--json", str(log)])
        assert json.loads(res.stdout)["errors_by_rule"] == {"p": 1}
        monkeypatch.setenv(
            "WATCHER_RULES", '[{"name": "p", "regex": "a"}, {"name": "p", "regex": "(a+)+\\\\1"}]'
        )
        res = runner.invoke(app, ["classify", "--config", str(config), "--json", str(log)])
        assert res.exit_code == 1
        assert "rules[1].regex: rule 'p'" in res.stderr and "rules[1].name: 'p' is used twice" in res.stderr

    def test_show_prints_each_event(self, tmp_path: Path) -> None:
        """--show prints time, source, rule and the first line of each event."""
        path = write(tmp_path / "a.log", "2026-11-27T14:00:00Z FATAL disk full")
        res = runner.invoke(app, ["classify", "--config", str(CONFIG), "--show", f"edge={path}"])
        assert "2026-11-27T14:00:00.000Z edge [text-level] FATAL disk full" in res.stdout

    def test_non_utf8_and_stdin(self) -> None:
        """`-` reads stdin; bytes that are not UTF-8 are counted, never fatal."""
        res = runner.invoke(
            app, ["classify", "--config", str(CONFIG), "--json", "-"], input=b"ok \xff\xfe\nFATAL \xc3\n"
        )
        doc = json.loads(res.stdout)
        assert doc["lines"] == 2 and doc["bad_utf8"] == 2 and doc["errors"] == 1


class TestClassifyLinear:
    def test_the_issues_backtracking_rule_classifies_at_once(self, tmp_path: Path) -> None:
        """Issue case 4: `classify` took 30 s on 29 characters with `(a+)+$`; the installed CLI, 30 s cap."""
        cfg = write(tmp_path / "c.toml", "[[rules]]", "name = 'nested'", "regex = '(a+)+$'")
        log = write(tmp_path / "a.log", "a" * 34 + "!", "a" * 100_000 + "!", "a" * 29)
        exe = Path(sys.executable).with_name("watcher")
        done = subprocess.run(
            [str(exe), "classify", "--config", str(cfg), "--json", str(log)],
            capture_output=True,
            timeout=30,
            check=True,
        )
        assert json.loads(done.stdout)["errors_by_rule"] == {"nested": 1}


class TestCheckConfig:
    def test_config_problems_and_unreachable_sources_in_one_run(self, tmp_path: Path) -> None:
        """Issue case 10: a bad key, a duplicate name and an unreadable source in one run, not three."""
        cfg = tmp_path / "bad.toml"
        cfg.write_text(
            f'state_dir = "{tmp_path}"\n'
            '[resolution]\nwindow = "15"\n'
            '[[sources]]\nname = "edge"\nkind = "file"\npath = "/nonexistent/dir/edge.log"\n'
            '[[rules]]\nname = "r"\nregex = "x"\n[[rules]]\nname = "r"\nregex = "y"\n'
        )
        res = runner.invoke(app, ["check-config", "--config", str(cfg)])
        assert res.exit_code == 1, res.output
        assert res.stderr.strip().splitlines() == [
            "ConfigError: resolution.window: 15 has no unit: write 15s or 15m "
            "(durations such as 90s, 15m or 2h)",
            "ConfigError: rules[1].name: 'r' is used twice",
            "ConfigError: sources[0].path: directory /nonexistent/dir does not exist",
        ]

    def test_every_problem_one_line_naming_the_key(self, tmp_path: Path) -> None:
        """Several mistakes at once: each reported, with its key, exit 1."""
        cfg = tmp_path / "bad.toml"
        cfg.write_text(
            """
[resolution]
window = "fifteen minutes"
[[sources]]
name = "gw"
kind = "journal"
hosts = ["gw-berlin-01"]
[[sources]]
name = "x"
kind = "ftp"
[[rules]]
name = "r"
regex = "("
"""
        )
        res = runner.invoke(app, ["check-config", "--config", str(cfg)])
        assert res.exit_code == 1
        lines = res.stderr.strip().splitlines()
        assert any("resolution.window: " in line for line in lines)
        assert any("sources[0].known_hosts: required for journal sources" in line for line in lines)
        # Issue case 10: the message names the value given.
        assert (
            "ConfigError: sources[1].kind: 'ftp' is not a source kind; use docker, journal or file" in lines
        )
        assert any("rules[0].regex: rule 'r': invalid regular expression" in line for line in lines)
        assert "Traceback" not in res.output

    def test_disabling_host_key_checking_is_refused(self, tmp_path: Path) -> None:
        """known_hosts = "" cannot turn host key checking off."""
        cfg = tmp_path / "c.toml"
        cfg.write_text('[[sources]]\nname="gw"\nkind="journal"\nhosts=["a"]\nknown_hosts=""\n')
        res = runner.invoke(app, ["check-config", "--config", str(cfg)])
        assert "sources[0].known_hosts: host key checking cannot be disabled" in res.stderr

    def test_environment_overrides_the_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """WATCHER_SECTION__KEY wins over the file, and is validated the same way."""
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'state_dir = "{tmp_path}"\n[resolution]\nwindow = "15m"\n')
        monkeypatch.setenv("WATCHER_RESOLUTION__WINDOW", "-5m")
        res = runner.invoke(app, ["check-config", "--config", str(cfg)])
        assert res.exit_code == 1 and "resolution.window" in res.stderr

    def test_valid_config_with_a_missing_log_warns(self, tmp_path: Path) -> None:
        """A log file that does not exist yet is a warning: the daemon waits for it."""
        cfg = tmp_path / "ok.toml"
        cfg.write_text(
            f'state_dir = "{tmp_path / "s"}"\n[[sources]]\nname = "edge"\nkind = "file"\n'
            f'path = "{tmp_path / "later.log"}"\n{RULE}'
        )
        res = runner.invoke(app, ["check-config", "--config", str(cfg)])
        assert res.exit_code == 0, res.output
        assert "does not exist yet" in res.stderr and "ok" in res.stdout

    def test_broken_toml(self, tmp_path: Path) -> None:
        """A syntax error names the file and the position."""
        cfg = tmp_path / "broken.toml"
        cfg.write_text("state_dir = \n")
        res = runner.invoke(app, ["check-config", "--config", str(cfg)])
        assert res.exit_code == 1 and "not valid TOML" in res.stderr
