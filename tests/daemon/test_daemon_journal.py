"""The real Daemon following a gateway journal over a real sshd, written with systemd-cat."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.harness import AsyncClient, config_file, incident, running
from tests.sshd import TEST_USER, Journald, Sshd, journald_fixture, sshd_fixture, unique_ident  # noqa: F401
from tests.support import wait_until
from watcher import config
from watcher.times import parse_time

pytestmark = pytest.mark.journal

WINDOW = 3.0


def write_config(tmp: Path, server: Sshd, ident: str) -> Path:
    body = f"""
[[sources]]
name = "gw"
kind = "journal"
hosts = ["{server.address}"]
user = "{TEST_USER}"
port = {server.port}
known_hosts = "{server.known_hosts}"
client_keys = ["{server.client_key_path}"]
identifier = "{ident}"
liveness_command = "{server.liveness_command}"
keepalive_interval = "3s"
reconnect_min = "0.1s"
reconnect_max = "0.5s"
[[rules]]
name = "priority"
field = "PRIORITY"
max = 3
"""
    return config_file(tmp, body, window=WINDOW)


async def timeline_events(client: AsyncClient) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = (await client.timeline("P1-test"))["events"]  # type: ignore[assignment]
    return events


async def source(client: AsyncClient, name: str) -> dict[str, Any]:
    doc = await client.status()
    sources: list[dict[str, Any]] = doc["sources"]  # type: ignore[assignment]
    return next(s for s in sources if s["name"] == name)


class TestJournalThroughTheDaemon:
    async def test_blind_while_sshd_is_dead_then_proven_from_the_backlog(
        self, tmp_path: Path, sshd: Sshd, journald: Journald
    ) -> None:
        """Errors reach the engine; sshd killed mid-streak: blind, never resolved; back: backlog, resolved."""
        ident = unique_ident()
        name = f"gw/{sshd.address}"
        settings = config.load(write_config(tmp_path, sshd, ident))
        async with running(settings) as daemon, AsyncClient(settings) as client:

            async def up() -> bool:
                return bool((await source(client, name))["up"])

            async def state_is(want: str) -> bool:
                return bool((await incident(client))["state"] == want)

            await wait_until(up, what="the gateway source up")
            await client.open_incident("P1-test", "gateway errors", ["gw/*"], None)
            journald.write(ident, ["camera stream failed"], priority="err")

            async def errored() -> bool:
                return bool((await incident(client))["errors"] == 1)

            await wait_until(errored, what="the error in the engine")
            assert (await incident(client))["last_error"]["message"] == "camera stream failed"
            await client.mitigate("P1-test", "restart gateway service")
            journald.write(ident, [f"ok {i}" for i in range(3)], priority="info")

            sshd.kill()
            await wait_until(lambda: state_is("blind"), what="blind")
            past_window = time.time() + WINDOW + 0.5

            async def window_passed() -> bool:
                return time.time() > past_window

            journald.write(ident, [f"ok {i}" for i in range(3, 20)], priority="info")
            await wait_until(window_passed, what="the window to pass")
            assert (await incident(client))["state"] == "blind"
            reason = (await source(client, name))["reason"]
            assert "connection refused" in reason

            sshd.start()
            await wait_until(lambda: state_is("resolved"), what="resolved from the backlog")
            stats = daemon.pipeline.sources[name].scanner.stats
            assert stats.lines == 21  # the error and 20 numbered lines, each once
            kinds = [e["kind"] for e in await timeline_events(client)]
        assert "blind" in kinds and "resolved" in kinds and "source_down" in kinds

    async def test_changed_host_key_in_status_and_timeline(
        self, tmp_path: Path, sshd: Sshd, journald: Journald
    ) -> None:
        """A gateway whose key changed stays down with that reason in status and on the timeline."""
        ident = unique_ident()
        cfg = write_config(tmp_path, sshd, ident)
        cfg.write_text(cfg.read_text().replace(str(sshd.known_hosts), str(sshd.wrong_known_hosts())))
        settings = config.load(cfg)
        name = f"gw/{sshd.address}"
        async with running(settings), AsyncClient(settings) as client:
            await client.open_incident("P1-test", "gateway errors", ["gw/*"], None)

            async def mismatch() -> bool:
                return "HOST KEY MISMATCH" in str((await source(client, name))["reason"])

            await wait_until(mismatch, what="the host key reason in status")

            async def noted() -> bool:
                return any(
                    e["kind"] == "source_down" and "HOST KEY MISMATCH" in e["detail"]["reason"]
                    for e in await timeline_events(client)
                )

            await wait_until(noted, what="the host key reason on the timeline")
            assert (await source(client, name))["up"] is False


class TestUnitLiveness:
    """The unit's state, asked over the same SSH connection (tests/sshd.py stands in for systemctl)."""

    async def test_entries_stop_and_the_unit_is_inactive(
        self, tmp_path: Path, sshd: Sshd, journald: Journald
    ) -> None:
        """A stopped unit writes no errors because it is down: no resolution until it runs again,
        then a window after it does; the status says why meanwhile."""
        ident = unique_ident()
        name = f"gw/{sshd.address}"
        settings = config.load(write_config(tmp_path, sshd, ident))
        async with running(settings), AsyncClient(settings) as client:

            async def running_unit() -> bool:
                return bool((await source(client, name))["running"] is True)

            await wait_until(running_unit, what="the unit reported running")
            await client.open_incident("P1-test", "gateway", ["gw/*"], None)
            await client.mitigate("P1-test", "restart gateway service")
            journald.write(ident, ["serving"], priority="info")
            sshd.unit_state("inactive")  # the unit stopped: nothing more is written

            async def explained() -> bool:
                reasons = (await incident(client))["cannot_resolve"]
                return any(f"{name}: unit novavms-gateway is inactive since" in r for r in reasons)

            await wait_until(explained, what="the inactive unit in the status")
            past = time.time() + WINDOW + 0.5

            async def window_passed() -> bool:
                return time.time() > past

            await wait_until(window_passed, what="a window while inactive")
            assert (await incident(client))["state"] != "resolved"
            back = time.time()
            sshd.unit_state("active")
            await wait_until(running_unit, what="the unit running again")
            journald.write(ident, ["serving again"], priority="info")  # a record after it runs

            async def resolved() -> bool:
                return bool((await incident(client))["state"] == "resolved")

            await wait_until(resolved, what="resolved a window after it runs again")
            assert parse_time((await incident(client))["resolved_at"]) >= back - 1.0 + WINDOW
            kinds = [e["kind"] for e in await timeline_events(client)]
        assert "not_running" in kinds and "gap" in kinds

    async def test_no_entries_and_no_answer_from_systemd(
        self, tmp_path: Path, sshd: Sshd, journald: Journald
    ) -> None:
        """A unit with no entries, on a host whose systemd does not answer: up, but no evidence."""
        sshd.unit_state(None)
        settings = config.load(write_config(tmp_path, sshd, unique_ident()))
        name = f"gw/{sshd.address}"
        async with running(settings), AsyncClient(settings) as client:
            await client.open_incident("P1-test", "gateway", ["gw/*"], None)
            await client.mitigate("P1-test", "restart")

            async def explained() -> bool:
                reasons = (await incident(client))["cannot_resolve"]
                return f"{name}: unit novavms-gateway is unknown (no answer from systemd)" in reasons

            await wait_until(explained, what="no answer from systemd in the status")
            past = time.time() + WINDOW + 0.5

            async def window_passed() -> bool:
                return time.time() > past

            await wait_until(window_passed, what="a window")
            inc = await incident(client)
            assert inc["state"] != "resolved" and (await source(client, name))["up"] is True

    async def test_a_local_unit_with_no_entries_cannot_resolve(
        self, tmp_path: Path, journald: Journald
    ) -> None:
        """The local journal of a unit that writes nothing (and that systemd here does not run)."""
        body = f"""
[[sources]]
name = "gw"
kind = "journal"
identifier = "{unique_ident()}"
[[rules]]
name = "priority"
field = "PRIORITY"
max = 3
"""
        settings = config.load(config_file(tmp_path, body, window=WINDOW))
        async with running(settings), AsyncClient(settings) as client:
            await client.open_incident("P1-test", "gateway", ["gw"], None)
            await client.mitigate("P1-test", "restart")

            async def explained() -> bool:
                reasons = (await incident(client))["cannot_resolve"]
                return any(r.startswith("gw: unit novavms-gateway is ") for r in reasons)

            await wait_until(explained, what="the unit's state in the status")
            past = time.time() + WINDOW + 0.5

            async def window_passed() -> bool:
                return time.time() > past

            await wait_until(window_passed, what="a window")
            assert (await incident(client))["state"] != "resolved"
