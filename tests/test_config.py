"""Configuration: TOML plus WATCHER_SECTION__KEY, every problem named by its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import RULE, SHIPPED_CONFIG
from watcher import config
from watcher.errors import ConfigError
from watcher.sources.registry import source_names
from watcher.times import WINDOW, format_duration, format_time, parse_duration, parse_time

EXAMPLE = SHIPPED_CONFIG


def problems(tmp_path: Path, text: str, *, rule: bool = True) -> list[str]:
    """What loading `text` reports; with one error rule added unless it has its own or `rule` is False
    (a config needs one: tests about something else would all report that too)."""
    path = tmp_path / "c.toml"
    path.write_text(text if "[[rules]]" in text or not rule else f"{text}\n{RULE}")
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    return exc.value.problems


class TestDurations:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [("90s", 90), ("15m", 900), ("2h", 7200), ("1h30m", 5400), ("250ms", 0.25), (" 2d ", 172800)],
    )
    def test_accepted_spellings(self, text: str, seconds: float) -> None:
        """The spellings an SRE types."""
        assert parse_duration(text) == seconds

    @pytest.mark.parametrize("text", ["", "15 minutes", "m15", "-5m", "1.5.2s", "inf", "nan", "infs", "1e3s"])
    def test_rejected_spellings_say_what_is_expected(self, text: str) -> None:
        """Anything else is refused with the expected shape in the message."""
        with pytest.raises(ValueError, match="duration such as 90s"):
            parse_duration(text)

    @pytest.mark.parametrize(("given", "shown"), [("15", "15"), (15, "15"), (0.5, "0.5"), ("-3", "-3")])
    def test_a_number_without_a_unit_is_refused_with_the_spellings_it_may_mean(
        self, given: object, shown: str
    ) -> None:
        """A bare `15` (text, or a TOML/JSON number) is not guessed to be seconds."""
        with pytest.raises(ValueError, match=f"^{shown} has no unit: write {shown}s or {shown}m"):
            parse_duration(given)

    @pytest.mark.parametrize(
        "given", ["1" + "0" * 400 + "s", float("inf"), float("nan"), 10**400, "9" * 30 + "d", True, None]
    )
    def test_infinite_huge_and_foreign_values_are_refused(self, given: object) -> None:
        """Issue case 1: a 400-digit window, Infinity or NaN never becomes a duration."""
        with pytest.raises(ValueError):
            parse_duration(given)

    def test_a_span_bounds_the_value_and_says_so(self) -> None:
        """Each setting has its range; outside it the message gives the range."""
        assert parse_duration("24h", WINDOW) == 86400
        with pytest.raises(ValueError, match="must be between 1s and 24h, got 25h"):
            parse_duration("25h", WINDOW)
        with pytest.raises(ValueError, match="must be between 1s and 24h, got 0s"):
            parse_duration("0s", WINDOW)

    def test_format_round_trips(self) -> None:
        """Durations print as they are typed."""
        spelled = [format_duration(s) for s in (900, 5400, 1.5, 0, 86400, 366 * 86400)]
        assert spelled == ["15m", "1h30m", "1.5s", "0s", "24h", "366d"]
        assert format_duration(float("inf")) == "infs"  # never raised: an old store may hold one


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

    def test_environment_reaches_into_optional_tables_and_maps(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """A key inside an optional table, an entry of a map (JSON), names in any case; a table
        given whole is merged under the keys given into it."""
        (tmp_path / "token").write_text("xoxb-1\n")
        path = tmp_path / "c.toml"
        path.write_text(
            f'{RULE}[notify.slack_app]\ntoken_file = "{tmp_path / "token"}"\nincident_channel = "C1"\n'
        )
        monkeypatch.setenv("WATCHER_NOTIFY__SLACK_APP__INCIDENT_CHANNEL", "C0123ABCD")
        monkeypatch.setenv("watcher_notify__routes__resolved", '["oncall"]')
        monkeypatch.setenv("WATCHER_RESOLUTION", '{"window": "10m", "blind_after": "45s"}')
        monkeypatch.setenv("WATCHER_RESOLUTION__WINDOW", "5m")
        monkeypatch.setenv("WATCHER_CONFIG", "/elsewhere.toml")  # the CLI's, not a key
        settings = config.load(path)
        assert settings.notify.slack_app is not None
        assert settings.notify.slack_app.incident_channel == "C0123ABCD"
        assert settings.notify.routes == {"resolved": ["oncall"]}
        assert (settings.resolution.window, settings.resolution.blind_after) == (300, 45)

    def test_a_variable_that_cannot_be_read_is_named_with_every_other_problem(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """Bad JSON in one variable hides neither an unknown key nor the file's own problems."""
        monkeypatch.setenv("WATCHER_NOTIFY__SLACK_APP", "nope")
        monkeypatch.setenv("WATCHER_RESOLUTION__BOGUS", "1")
        found = problems(tmp_path, "[resolution]\nwindow = '-5m'\n")
        assert found[0].startswith("WATCHER_NOTIFY__SLACK_APP: not valid JSON")
        assert "resolution.bogus: unknown key" in found
        assert any(p.startswith("resolution.window:") for p in found), found

    def test_webhook_from_a_secret_file(self, tmp_path: Path) -> None:
        """A webhook URL can come from a file, and is never printed in full."""
        secret = tmp_path / "hook"
        secret.write_text("https://hooks.example/T000/B000/XXXX\n")
        path = tmp_path / "c.toml"
        path.write_text(f'{RULE}[notify]\nincident_webhook_file = "{secret}"\n')
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
            f'{RULE}[notify.slack_app]\ntoken_file = "{tmp_path / "token"}"\nincident_channel = "C0123ABCD"\n'
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
        path.write_text(RULE + '[[sources]]\nname="gw"\nkind="journal"\nhosts=["a","b"]\nknown_hosts="/k"\n')
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


class TestEvidenceKeys:
    def test_defaults(self, tmp_path: Path) -> None:
        """Every source must show records unless quiet_ok; liveness asked with systemctl is-active."""
        path = tmp_path / "c.toml"
        path.write_text(
            RULE + '[[sources]]\nname = "gw"\nkind = "journal"\n'
            '[[sources]]\nname = "edge"\nkind = "file"\npath = "/x"\n'
            '[[sources]]\nname = "cloud"\nkind = "docker"\ncontainers = ["api"]\n'
        )
        s = config.load(path)
        gw, edge, cloud = s.sources
        assert (edge.quiet_ok, edge.expect_every, edge.expect_match) == (False, None, None)
        assert gw.kind == "journal" and gw.liveness_command == "systemctl is-active {unit}"
        assert edge.kind == "file" and edge.rotate_wait == 5.0
        assert cloud.kind == "docker" and cloud.one_shot == []
        assert s.resolution.skew_tolerance == 60.0

    @pytest.mark.parametrize(
        ("keys", "message"),
        [
            ('expect_match = "ok"', "sources[0].expect_match: needs expect_every"),
            ('quiet_ok = true\nexpect_every = "1m"', "sources[0].quiet_ok: a source that may stay silent"),
            (
                'expect_every = "1m"\nexpect_match = "("',
                "sources[0].expect_match: invalid regular expression",
            ),
            (
                'expect_every = "1m"\nexpect_match = "(?=heartbeat)ok"',
                "sources[0].expect_match: cannot be matched in linear time: lookahead",
            ),
        ],
    )
    def test_contradictions_are_named(self, tmp_path: Path, keys: str, message: str) -> None:
        """Expectations that cannot hold are refused at load, naming the key."""
        (found,) = problems(tmp_path, f'{RULE}[[sources]]\nname = "e"\nkind = "file"\npath = "/x"\n{keys}\n')
        assert found.startswith(message)

    @pytest.mark.parametrize("text", ["", "rules = []\n"])
    def test_no_rules_is_refused(self, tmp_path: Path, text: str) -> None:
        """With no error rule every log looks clean: refused, naming the key."""
        assert problems(tmp_path, text, rule=False) == [
            "rules: no error rules; add at least one [[rules]] entry (with none, every log looks clean)"
        ]


class TestRunbookKeys:
    def test_defaults_are_the_runbooks(self, tmp_path: Path) -> None:
        """Escalate at open + 20 minutes without a hypothesis, or on the second failed mitigation."""
        path = tmp_path / "c.toml"
        path.write_text(
            RULE + '[[sources]]\nname = "edge"\nkind = "file"\npath = "/x"\nimpact_field = "org_id"\n'
        )
        s = config.load(path)
        r = s.runbook
        assert (r.no_hypothesis_after, r.failed_mitigations, r.max_orgs) == (1200.0, 2, 10_000)
        assert (r.confirm_records, r.confirm_over, r.impact_lookback) == (10, 300.0, 1800.0)
        assert (s.sources[0].impact_field, s.sources[0].impact_regex) == ("org_id", None)

    @pytest.mark.parametrize(
        ("keys", "message"),
        [
            ('impact_regex = "org=\\\\S+"', "sources[0].impact_regex: needs exactly one group, the org id"),
            ('impact_regex = "(a)(b)"', "sources[0].impact_regex: needs exactly one group"),
            ('impact_regex = "(?=org)(x)"', "sources[0].impact_regex: cannot be matched in linear time"),
            (
                'impact_field = "org_id"\nimpact_regex = "org=(x)"',
                "sources[0].impact_regex: set impact_field",
            ),
        ],
    )
    def test_impact_keys_are_checked(self, tmp_path: Path, keys: str, message: str) -> None:
        """An impact_regex has exactly one group, runs in linear time, and is not set beside impact_field."""
        (found,) = problems(tmp_path, f'{RULE}[[sources]]\nname = "e"\nkind = "file"\npath = "/x"\n{keys}\n')
        assert found.startswith(message)

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            ('no_hypothesis_after = "0s"', "runbook.no_hypothesis_after: must be between 1s and 24h"),
            (
                "failed_mitigations = 0",
                "runbook.failed_mitigations: Input should be greater than or equal to 1",
            ),
            ("max_orgs = 0", "runbook.max_orgs: Input should be greater than or equal to 1"),
            ('confirm_over = "2d"', "runbook.confirm_over: must be between 0s and 24h"),
        ],
    )
    def test_runbook_bounds(self, tmp_path: Path, line: str, message: str) -> None:
        """The [runbook] section's values are bounded like every other, one line each."""
        (found,) = problems(tmp_path, f"{RULE}[runbook]\n{line}\n")
        assert found.startswith(message)


class TestBounds:
    """Issue case 1: every duration, size and count has a range and is refused outside it."""

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            ("[resolution]\nwindow = inf", "resolution.window: expected a duration such as 90s"),
            ("[resolution]\nwindow = nan", "resolution.window: expected a duration such as 90s"),
            ("[resolution]\nwindow = 900", "resolution.window: 900 has no unit: write 900s or 900m"),
            ('[resolution]\nwindow = "15"', "resolution.window: 15 has no unit: write 15s or 15m"),
            ('[resolution]\nwindow = "2d"', "resolution.window: must be between 1s and 24h, got 2d"),
            ('[resolution]\nwindow = "' + "1" + "0" * 400 + 's"', "resolution.window: expected a duration"),
            ('[notify]\nheartbeat = "0s"', "notify.heartbeat: must be between 1m and 24h, got 0s"),
            ('[notify]\nheartbeat = "30s"', "notify.heartbeat: must be between 1m and 24h, got 30s"),
            ('[notify]\nretry_after_max = "2h"', "notify.retry_after_max: must be between 1s and 1h"),
            ("max_line_bytes = 1" + "0" * 40, "max_line_bytes: Input should be less than or equal to"),
            (
                '[[rules]]\nname = "r"\nfield = "s"\nmin = nan',
                "rules[0].min: Input should be a finite number",
            ),
        ],
    )
    def test_out_of_range_values_are_one_line_each(self, tmp_path: Path, line: str, message: str) -> None:
        """check-config refuses what would crash-loop or flood the daemon, naming the key."""
        found = problems(tmp_path, line + "\n")
        assert len(found) == 1 and found[0].startswith(message), found

    @pytest.mark.parametrize(
        ("variable", "value"),
        [
            ("WATCHER_SOURCES", "notjson"),
            ("WATCHER_RULES", "[{"),
            ("WATCHER_NOTIFY__ROUTES", "x"),
        ],
    )
    def test_a_list_or_table_from_the_environment_that_is_not_json_is_named(
        self, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
    ) -> None:
        """WATCHER_SOURCES=notjson is one clear line naming the variable, not an internal error."""
        monkeypatch.setenv(variable, value)
        with pytest.raises(ConfigError) as exc:
            config.load(None)
        assert exc.value.problems[0] == (
            f"{variable}: not valid JSON; a list or table set from the environment is written as JSON, "
            """e.g. WATCHER_RULES='[{"name": "panic", "regex": "^panic:"}]'"""
        )


class TestLinearRules:
    """Issue case 4: a rule a backtracking engine would hang on is either linear or refused at load."""

    def test_nested_quantifiers_are_accepted_they_run_in_linear_time(self, tmp_path: Path) -> None:
        """`(a+)+$` loads: RE2 runs it in time linear in the line."""
        path = tmp_path / "c.toml"
        path.write_text("[[rules]]\nname = 'nested'\nregex = '(a+)+$'\n")
        assert config.load(path).rules[0].regex == "(a+)+$"

    def test_what_needs_backtracking_is_refused_naming_the_rule(self, tmp_path: Path) -> None:
        """A backreference or lookaround is one line naming the rule and what to change."""
        found = problems(
            tmp_path,
            "[[rules]]\nname = 'ok'\nregex = 'x'\n[[ignore]]\nname = 'quiet'\nregex = '(?<!no )error'\n",
        )
        assert found == [
            "ignore[0].regex: rule 'quiet': cannot be matched in linear time: "
            "lookbehind (?<=...) / (?<!...) needs backtracking"
        ]
