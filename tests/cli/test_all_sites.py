"""`--all-sites`: incident commands and status at every watcher of the fleet, over real HTTP.

Each site is the real API server in front of an in-memory daemon (tests/daemon/fake_api.py);
a site that cannot be reached is a loopback port where nothing listens.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.daemon.fake_api import TOKEN, FakeControl, running
from tests.support import free_port
from watcher.cli import app
from watcher.names import default_user

runner = CliRunner()


class Fleet:
    """Sites a and b (fake daemons) and, when asked, c where nothing answers; their config."""

    def __init__(self, tmp: Path, controls: dict[str, FakeControl], ports: dict[str, int]) -> None:
        self.controls = controls
        self.config = tmp / "fleet.toml"
        entries = []
        for name, port in ports.items():
            token = tmp / f"{name}.token"
            token.write_text(TOKEN + "\n")
            entries.append(
                f'[[sites]]\nname = "{name}"\napi_url = "http://127.0.0.1:{port}"\ntoken_file = "{token}"\n'
            )
        self.config.write_text("\n".join(entries))

    async def run(self, *args: str) -> Result:
        """`watcher ARGS --config fleet.toml` in a thread: the fake daemons run in this loop."""
        return await asyncio.to_thread(runner.invoke, app, [*args, "--config", str(self.config)])


@pytest.fixture
async def sites(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Fleet]:
    """Sites a and b answer; parametrized indirectly with True, a site c is listed that never does."""
    with_c = getattr(request, "param", False)
    async with AsyncExitStack() as stack:
        controls = {name: FakeControl() for name in ("a", "b")}
        servers = {name: await stack.enter_async_context(running(c)) for name, c in controls.items()}
        ports = {name: s.port for name, s in servers.items()}
        if with_c:
            ports["c"] = free_port()
        yield Fleet(tmp_path, controls, ports)


class TestIncidentCommands:
    async def test_open_mitigate_close_everywhere(self, sites: Fleet) -> None:
        """Each command reaches every site, as the user who ran it, with one line per site."""
        res = await sites.run("incident", "open", "P1-gw", "--title", "gateways drop streams", "--all-sites")
        assert res.exit_code == 0, res.output
        assert res.stdout.splitlines() == [
            "a: opened P1-gw (investigating)",
            "b: opened P1-gw (investigating)",
        ]
        res = await sites.run("incident", "mitigate", "P1-gw", "--action", "rolled back", "--all-sites")
        assert res.exit_code == 0, res.output
        res = await sites.run("incident", "note", "P1-gw", "Org A confirms", "--all-sites")
        assert res.exit_code == 0, res.output
        assert res.stdout.splitlines() == [
            "a: noted P1-gw (investigating)",
            "b: noted P1-gw (investigating)",
        ]
        res = await sites.run("incident", "close", "P1-gw", "--reason", "fixed", "--all-sites")
        assert res.exit_code == 0, res.output
        for control in sites.controls.values():
            assert control.calls == [
                ("open", "P1-gw", default_user()),
                ("mitigate", "P1-gw", "rolled back", default_user()),
                ("note", "P1-gw", "Org A confirms", default_user()),
                ("close", "P1-gw", "fixed", default_user()),
            ]

    @pytest.mark.parametrize("sites", [True], indirect=True)
    async def test_an_unreachable_site_fails_it_unless_partial_is_allowed(self, sites: Fleet) -> None:
        """Site c does not answer: reported, and the command fails; with --allow-partial it
        succeeds, still naming c. The sites that answered took it either way."""
        res = await sites.run("incident", "open", "P1-gw", "--title", "t", "--all-sites")
        assert res.exit_code == 1
        assert "c: UNREACHABLE: no watcher daemon answers on 127.0.0.1:" in res.stdout
        assert res.stderr.strip().startswith(
            "DaemonError: not opened at 1 of 3 sites: c (unreachable); --allow-partial accepts that"
        )
        assert all(c.calls for c in sites.controls.values())
        res = await sites.run(
            "incident", "mitigate", "P1-gw", "--action", "x", "--all-sites", "--allow-partial"
        )
        assert res.exit_code == 0, res.output
        assert "c: UNREACHABLE" in res.stdout

    async def test_a_refusal_fails_even_when_partial(self, sites: Fleet) -> None:
        """A site that answers no (the id is taken there) is not a passing fault: exit 1."""
        await sites.controls["b"].open_incident("P1-gw", "older", [], None, "x")
        res = await sites.run("incident", "open", "P1-gw", "--title", "t", "--all-sites", "--allow-partial")
        assert res.exit_code == 1
        assert "b: refused: incident P1-gw is already open" in res.stdout
        assert "not opened at 1 of 2 sites: b (refused)" in res.stderr

    @pytest.mark.parametrize("sites", [True], indirect=True)
    async def test_json_names_each_site(self, sites: Fleet) -> None:
        """--json: one entry per site, with its document or its error."""
        res = await sites.run("incident", "open", "P1-gw", "--title", "t", "--all-sites", "--json")
        doc = json.loads(res.stdout)
        assert [(s["site"], s["ok"], s["reachable"]) for s in doc["sites"]] == [
            ("a", True, True),
            ("b", True, True),
            ("c", False, False),
        ]
        assert doc["sites"][0]["incident"]["id"] == "P1-gw"
        assert doc["sites"][2]["error"].startswith("no watcher daemon answers")

    async def test_without_sites_it_says_so(self, tmp_path: Path) -> None:
        """A config with no [[sites]]: one line saying what to add."""
        cfg = tmp_path / "w.toml"
        cfg.write_text('state_dir = "/nonexistent"\n')
        res = runner.invoke(
            app, ["incident", "open", "P1-gw", "--title", "t", "--all-sites", "--config", str(cfg)]
        )
        assert res.exit_code == 1
        assert (
            res.stderr.strip()
            == f"InputError: {cfg} lists no [[sites]] (name, api_url, token_file) for --all-sites"
        )

    async def test_a_bad_site_entry_is_one_line_each(self, tmp_path: Path) -> None:
        """Each problem of [[sites]] is named by its key."""
        cfg = tmp_path / "w.toml"
        cfg.write_text('[[sites]]\nname = "eu 1"\napi_url = "https://x:1"\n')
        res = runner.invoke(app, ["status", "--all-sites", "--config", str(cfg)])
        assert res.exit_code == 1
        assert res.stderr.splitlines() == [
            "ConfigError: sites[0].token_file: required (a string)",
            "ConfigError: sites[0].name: a site name is letters, digits, '_', '.' and '-', got 'eu 1'",
            "ConfigError: sites[0].api_url: expected http://HOST:PORT such as http://10.1.0.5:9108, got "
            "'https://x:1' (the daemon's API is plain HTTP: reach a remote site through a tunnel or VPN)",
        ]

    async def test_partial_without_all_sites_is_refused(self, tmp_path: Path) -> None:
        """--allow-partial alone means nothing: said so, rather than ignored."""
        res = runner.invoke(app, ["incident", "close", "P1-gw", "--allow-partial"])
        assert res.exit_code == 1
        assert "--allow-partial only goes with --all-sites" in res.stderr


class TestStatus:
    @pytest.mark.parametrize("sites", [True], indirect=True)
    async def test_merged_with_an_unreachable_site(self, sites: Fleet) -> None:
        """The merged status shows the incident blind because c gave none, and fails unless
        --allow-partial; --json carries each site's answer."""
        for control in sites.controls.values():
            await control.open_incident("P1-gw", "gateways drop streams", [], None, "x")
        res = await sites.run("status", "--all-sites")
        assert res.exit_code == 1
        assert "site c UNREACHABLE" in res.stdout
        assert "P1-gw BLIND" in res.stdout
        assert "cannot resolve: site c cannot be reached" in res.stdout
        assert "no status from 1 of 3 sites: c" in res.stderr
        res = await sites.run("status", "--all-sites", "--allow-partial", "--json")
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        assert [s["reachable"] for s in doc["sites"]] == [True, True, False]
        assert doc["incidents"][0]["state"] == "blind"

    async def test_merged_when_every_site_answers(self, sites: Fleet) -> None:
        """Every site answers: exit 0, the incident in the state the sites agree on."""
        for control in sites.controls.values():
            await control.open_incident("P1-gw", "gateways drop streams", [], None, "x")
        res = await sites.run("status", "--all-sites")
        assert res.exit_code == 0, res.output
        assert "P1-gw INVESTIGATING" in res.stdout

    async def test_unredacted_status_asks_every_site_with_its_token(
        self, sites: Fleet, tmp_path: Path
    ) -> None:
        """Redacted reads need no token; --no-redact sends each site's own token, so a site
        whose token file holds the wrong one refuses: named as refused, not unreachable, and
        failing the command even with --allow-partial."""
        (tmp_path / "b.token").write_text("not-the-token\n")
        res = await sites.run("status", "--all-sites")
        assert res.exit_code == 0, res.output
        res = await sites.run("status", "--all-sites", "--no-redact", "--allow-partial")
        assert res.exit_code == 1
        assert "site b refused: the daemon on 127.0.0.1:" in res.stdout
        assert "refused the API token in" in res.stdout
        assert "no status from 1 of 2 sites: b (refused)" in res.stderr


class TestSitesRules:
    @pytest.mark.prometheus
    async def test_expected_sites_rule_file(self, sites: Fleet, tmp_path: Path) -> None:
        """`watcher sites rules` prints one watcher:expected_site rule per site, and promtool accepts it."""
        from tests.conftest import require_binary

        promtool = require_binary("promtool")
        res = await sites.run("sites", "rules")
        assert res.exit_code == 0, res.output
        assert res.stdout.count("record: watcher:expected_site") == 2
        assert 'site: "a"' in res.stdout and 'site: "b"' in res.stdout
        path = tmp_path / "sites.rules.yml"
        path.write_text(res.stdout)
        proc = await asyncio.create_subprocess_exec(
            promtool,
            "check",
            "rules",
            str(path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode()
