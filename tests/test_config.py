"""Configuration: TOML plus WATCHER_SECTION__KEY, every problem named by its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import SHIPPED_CONFIG
from watcher import config
from watcher.errors import ConfigError
from watcher.sources.registry import source_names
from watcher.times import format_duration, format_time, parse_duration, parse_time

EXAMPLE = SHIPPED_CONFIG


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    return exc.value.problems


class TestDurations:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [("90s", 90), ("15m", 900), ("2h", 7200), ("1h30m", 5400), ("250ms", 0.25), (42, 42)],
    )
    def test_accepted_spellings(self, text: str | int, seconds: float) -> None:
        """The spellings an SRE types."""
        assert parse_duration(text) == seconds

    @pytest.mark.parametrize("text", ["", "15", "15 minutes", "m15", "-5m", "1.5.2s"])
    def test_rejected_spellings_say_what_is_expected(self, text: str) -> None:
        """Anything else is refused with the expected shape in the message."""
        if text == "15":
            assert parse_duration(text) == 15  # a bare number is seconds
            return
        with pytest.raises(ValueError, match="duration such as 90s"):
            parse_duration(text)

    def test_format_round_trips(self) -> None:
        """Durations print as they are typed."""
        assert [format_duration(s) for s in (900, 5400, 1.5, 0)] == ["15m", "1h30m", "1.5s", "0s"]


class TestTimes:
    def test_rfc3339_with_nanoseconds_and_offsets(self) -> None:
        """Docker's nanoseconds and explicit offsets parse to the same instant."""
        assert parse_time("2026-11-27T14:05:00.123456789Z") == pytest.approx(
            parse_time("2026-11-27T15:05:00.123+01:00"), abs=1e-3
        )
        assert format_time(parse_time("2026-11-27T14:05:00Z")) == "2026-11-27T14:05:00.000Z"


class TestLoad:
    def test_documented_example_is_valid(self) -> None:
        """config/watcher.toml, the documented default, loads as it is."""
        settings = config.load(EXAMPLE)
        assert source_names(settings) == ["cloud", "gw", "edge"]
        assert settings.resolution.window == 900

    def test_environment_wins_over_the_file(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """WATCHER_SECTION__KEY overrides one key and keeps the rest of the section."""
        monkeypatch.setenv("WATCHER_RESOLUTION__WINDOW", "5m")
        monkeypatch.setenv("WATCHER_HTTP__LISTEN", "127.0.0.1:9200")
        settings = config.load(EXAMPLE)
        assert settings.resolution.window == 300 and settings.resolution.blind_after == 30
        assert settings.http.port == 9200

    def test_webhook_from_a_secret_file(self, tmp_path: Path) -> None:
        """A webhook URL can come from a file, and is never printed in full."""
        secret = tmp_path / "hook"
        secret.write_text("https://hooks.example/T000/B000/XXXX\n")
        path = tmp_path / "c.toml"
        path.write_text(f'[notify]\nincident_webhook_file = "{secret}"\n')
        settings = config.load(path)
        hook = settings.notify.incident_webhook
        assert hook is not None and hook.get_secret_value() == "https://hooks.example/T000/B000/XXXX"
        assert "XXXX" not in repr(settings.notify)

    def test_unreadable_secret_file_is_named(self, tmp_path: Path) -> None:
        """A missing secret file is a config problem naming the key."""
        found = problems(tmp_path, '[notify]\noncall_webhook_file = "/nonexistent/hook"\n')
        assert found == [
            "notify.oncall_webhook_file: cannot read /nonexistent/hook: No such file or directory"
        ]

    def test_slack_app_and_pagerduty_secrets_from_files(self, tmp_path: Path) -> None:
        """The bot token and the routing keys come from files and never show in a repr."""
        (tmp_path / "token").write_text("xoxb-1111-2222-secret\n")
        (tmp_path / "key").write_text("0123456789abcdef0123456789abcdef\n")
        path = tmp_path / "c.toml"
        path.write_text(
            f'[notify.slack_app]\ntoken_file = "{tmp_path / "token"}"\nincident_channel = "C0123ABCD"\n'
            f'[notify.pagerduty]\nescalation_routing_key_file = "{tmp_path / "key"}"\n'
        )
        notify = config.load(path).notify
        assert notify.slack_app is not None and notify.slack_app.bot_token() == "xoxb-1111-2222-secret"
        assert notify.pagerduty is not None
        assert notify.pagerduty.routing_keys() == (None, "0123456789abcdef" * 2)
        assert "secret" not in repr(notify) and "0123456789abcdef" not in repr(notify)
        assert notify.slack_app.api_url == "https://slack.com/api/"

    def test_integration_problems_are_named(self, tmp_path: Path) -> None:
        """A missing token, a bad channel, a key of the wrong length, a paging kind as a change."""
        (tmp_path / "short").write_text("abc\n")
        found = problems(
            tmp_path,
            '[notify.slack_app]\nincident_channel = "not a channel!"\n'
            f'[notify.pagerduty]\nrouting_key_file = "{tmp_path / "short"}"\nchanges = ["resolved"]\n',
        )
        assert "notify.slack_app.incident_channel: expected a Slack channel ID such as C0123ABCD" in found[0]
        assert "notify.pagerduty.changes: resolved already trigger or resolve" in found[1]
        short = problems(tmp_path, f'[notify.pagerduty]\nrouting_key_file = "{tmp_path / "short"}"\n')
        assert short == ["notify.pagerduty.routing_key: expected a 32-character integration key"]
        none = problems(tmp_path, '[notify.slack_app]\nincident_channel = "C0123ABCD"\n')
        assert none == ["notify.slack_app.token: set token_file to a file holding the bot token (xoxb-...)"]

    def test_journal_hosts_become_one_source_each(self, tmp_path: Path) -> None:
        """hosts = [a, b] gives sources gw/a and gw/b."""
        path = tmp_path / "c.toml"
        path.write_text('[[sources]]\nname="gw"\nkind="journal"\nhosts=["a","b"]\nknown_hosts="/k"\n')
        assert source_names(config.load(path)) == ["gw/a", "gw/b"]

    def test_unknown_keys_and_duplicates(self, tmp_path: Path) -> None:
        """Typos and duplicate names are reported with their position."""
        found = problems(
            tmp_path,
            '[http]\nlisten = "127.0.0.1:9108"\nlistne = "x"\n'
            '[[rules]]\nname = "a"\nregex = "x"\n[[rules]]\nname = "a"\nregex = "y"\n',
        )
        assert "http.listne: unknown key" in found

    def test_docker_source_needs_a_selector(self, tmp_path: Path) -> None:
        """Watching every container by accident is refused."""
        found = problems(tmp_path, '[[sources]]\nname = "cloud"\nkind = "docker"\n')
        assert found == ["sources[0]: name the containers: set compose_project, containers or labels"]

    @pytest.mark.parametrize(
        ("keys", "message"),
        [
            (
                'docker_host = "ssh://deploy@cloud-host"',
                "sources[0].known_hosts: required for an ssh:// docker_host",
            ),
            (
                'docker_host = "ssh://deploy@cloud-host"\nknown_hosts = "none"',
                "sources[0].known_hosts: host key",
            ),
            ('known_hosts = "/k"', "sources[0].known_hosts: only used with an ssh:// docker_host"),
            (
                'docker_host = "ssh://deploy@cloud-host:2222"\nknown_hosts = "/k"\nport = 22',
                "sources[0].port: 22 differs from the port in docker_host (2222)",
            ),
            (
                'docker_host = "ssh://deploy:pw@cloud-host"\nknown_hosts = "/k"',
                "sources[0].docker_host: expected",
            ),
        ],
    )
    def test_ssh_docker_host_keeps_the_gateways_trust(self, tmp_path: Path, keys: str, message: str) -> None:
        """ssh:// engines take the journal sources' SSH keys, known_hosts required and never disabled."""
        head = '[[sources]]\nname = "cloud"\nkind = "docker"\ncontainers = ["api"]\n'
        (found,) = problems(tmp_path, head + keys + "\n")
        assert found.startswith(message)

    def test_ssh_docker_host_with_its_keys(self) -> None:
        """The login, host and port come from the URL; the SSH keys are the journal sources' own."""
        cfg = config.DockerSourceConfig.model_validate(
            {
                "name": "cloud",
                "kind": "docker",
                "containers": ["api"],
                "docker_host": "ssh://deploy@cloud-host:2222",
                "known_hosts": "/etc/novavms-watcher/known_hosts",
                "client_keys": ["/etc/novavms-watcher/id_ed25519"],
                "proxy_jump": "watcher@bastion:22",
                "keepalive_interval": "5s",
            }
        )
        assert cfg.ssh_login() == config.SshLogin("deploy", "cloud-host", 2222, "/var/run/docker.sock")
        assert cfg.keepalive_interval == 5.0
        rootless = cfg.model_copy(update={"docker_host": "ssh://deploy@cloud-host/run/user/1000/docker.sock"})
        assert rootless.ssh_login() == config.SshLogin(
            "deploy", "cloud-host", 22, "/run/user/1000/docker.sock"
        )
        assert set(config.SshSettings.model_fields) <= set(config.JournalSourceConfig.model_fields)

    def test_rule_selection_names_real_rules(self, tmp_path: Path) -> None:
        """A source's `rules` must name configured rules."""
        found = problems(
            tmp_path,
            '[[sources]]\nname = "e"\nkind = "file"\npath = "/x"\nrules = ["nope"]\n'
            '[[rules]]\nname = "a"\nregex = "x"\n',
        )
        assert found == ["sources[0].rules: no rule named 'nope'"]

    @pytest.mark.parametrize(
        ("rule", "message"),
        [
            ('name = "r"\nfield = "level"\n', "rules[0]: a field rule needs values, min or max"),
            ('name = "r"\nregex = "x"\nfield = "y"\nvalues = ["a"]\n', "rules[0]: set either regex or field"),
            (
                'name = "r"\nfield = "s"\nmin = 600\nmax = 500\n',
                "rules[0]: min (600) is greater than max (500)",
            ),
        ],
    )
    def test_rule_shapes(self, tmp_path: Path, rule: str, message: str) -> None:
        """Each kind of rule mistake has its own sentence."""
        assert problems(tmp_path, "[[rules]]\n" + rule) == [message]
