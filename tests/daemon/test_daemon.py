"""The daemon end to end: real files, the real HTTP API, a real process killed and restarted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import require_binary
from tests.daemon.harness import (
    WINDOW,
    AsyncClient,
    append,
    healthy,
    incident,
    process,
    running,
    stamp,
    write_config,
)
from tests.support import free_port, wait_until
from watcher import config
from watcher.times import parse_time


class TestIncidentFlow:
    async def test_open_mitigate_resolve_regress(self, tmp_path: Path) -> None:
        """Clean for the window resolves at streak_start + window; a later error regresses it."""
        log = tmp_path / "edge.log"
        append(log, f'{{"ts":"{stamp(time.time())}","level":"info","msg":"up"}}')
        settings = config.load(write_config(tmp_path, log, free_port()))
        async with running(settings), AsyncClient(settings) as client:
            await client.open_incident("P1-test", "edge broken", ["edge*"], None)
            doc = await client.mitigate("P1-test", "rollback")
            mitigated = parse_time(str(doc["mitigated_at"]))
            append(log, f'{{"ts":"{stamp(time.time())}","level":"info","msg":"serving"}}')  # alive

            async def state_is(want: str) -> bool:
                return bool((await incident(client))["state"] == want)

            await wait_until(lambda: state_is("resolved"), what="resolved")
            inc = await incident(client)
            assert parse_time(inc["resolved_at"]) == pytest.approx(mitigated + WINDOW, abs=0.002)

            append(log, f'{{"ts":"{stamp(time.time())}","level":"error","msg":"boom again"}}')
            await wait_until(lambda: state_is("regressed"), what="regressed")
            timeline = await client.timeline("P1-test")
            kinds = [e["kind"] for e in timeline["events"]]
            assert kinds[:3] == ["opened", "mitigated", "resolved"] and "regressed" in kinds

    async def test_bad_input_is_counted_and_loses_nothing_else(self, tmp_path: Path) -> None:
        """Non-UTF-8 bytes and broken JSON are counted; the error after them still counts."""
        log = tmp_path / "edge.log"
        log.write_bytes(b"caf\xe9 \xff\n" + b'{"level":"error", broken\n')
        append(log, f'{{"ts":"{stamp(time.time())}","level":"error","msg":"real"}}')
        port = free_port()
        settings = config.load(write_config(tmp_path, log, port))
        async with running(settings), aiohttp.ClientSession() as http:

            async def sample(name: str) -> float:
                async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                    body = await resp.text()
                found = [ln for ln in body.splitlines() if ln.startswith(name)]
                return float(found[0].rsplit(" ", 1)[1]) if found else 0.0

            async def counted() -> bool:
                return await sample('watcher_source_lines_total{source="edge"}') == 3

            await wait_until(counted, what="three lines counted")
            assert await sample('watcher_source_bad_lines_total{reason="bad_utf8",source="edge"}') == 1
            assert await sample('watcher_source_errors_total{rule="level",source="edge"}') == 1

    async def test_unreachable_source_is_down_and_daemon_keeps_running(self, tmp_path: Path) -> None:
        """A missing file shows down with the reason; the incident goes blind, never resolved."""
        settings = config.load(write_config(tmp_path, tmp_path / "missing.log", free_port()))
        async with running(settings), AsyncClient(settings) as client:
            await client.open_incident("P1-test", "t", [], None)
            await client.mitigate("P1-test", "x")

            async def blind() -> bool:
                doc = await client.status()
                src = doc["sources"][0]
                return bool(src["up"] is False and (await incident(client))["state"] == "blind")

            await wait_until(blind, what="blind")
            src = (await client.status())["sources"][0]
            assert src["reason"] == f"{tmp_path / 'missing.log'}: no such file (waiting for it to appear)"

    async def test_the_cli_workflow_as_a_user_types_it(self, tmp_path: Path) -> None:
        """incident open/mitigate, status, timeline --format markdown|json, close: through the API."""
        log = tmp_path / "edge.log"
        append(log, f'{{"ts":"{stamp(time.time())}","level":"info","msg":"up"}}')
        cfg = write_config(tmp_path, log, free_port(), window=600)
        exe = str(Path(sys.executable).with_name("watcher"))

        async def cli(*args: str) -> str:
            proc = await asyncio.create_subprocess_exec(
                exe, *args, "--config", str(cfg), stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            out, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
            return out.decode()

        async with running(config.load(cfg)):
            assert "opened P1-cli" in await cli("incident", "open", "P1-cli", "--title", "Live view black")
            await cli("incident", "mitigate", "P1-cli", "--action", "flag | reverted")
            append(log, f'{{"ts":"{stamp(time.time())}","level":"error","msg":"still broken"}}')
            status = await cli("status")
            assert "P1-cli" in status and "edge" in status
            assert "VERIFYING" in status and "Live view black" in status
            assert json.loads(await cli("status", "--json"))["incidents"][0]["state"] == "verifying"

            async def reset_recorded() -> bool:
                return "Streak reset" in await cli("timeline", "P1-cli")

            await wait_until(reset_recorded, what="the streak reset on the timeline")
            markdown = await cli("timeline", "P1-cli", "--format", "markdown")
            assert "| time (UTC) | event |" in markdown
            assert "Mitigation: flag \\| reverted" in markdown  # a pipe cannot break the table
            assert '[level]: `{"ts":' in markdown
            doc = json.loads(await cli("timeline", "P1-cli", "--format", "json"))
            assert [e["kind"] for e in doc["events"]][:3] == ["opened", "mitigated", "streak_reset"]
            assert "closed P1-cli" in await cli("incident", "close", "P1-cli", "--reason", "done")

    async def test_cli_says_when_daemon_is_not_running(self, tmp_path: Path) -> None:
        """One line, no traceback, naming the config, state_dir and address tried and how to change them."""
        port = free_port()
        cfg = write_config(tmp_path, tmp_path / "x.log", port)
        exe = Path(sys.executable).with_name("watcher")
        proc = await asyncio.create_subprocess_exec(
            str(exe), "status", "--config", str(cfg), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        _out, err = await proc.communicate()
        text = err.decode()
        assert proc.returncode == 1 and "Traceback" not in text
        assert text.startswith(f"DaemonNotRunning: no watcher daemon answers on 127.0.0.1:{port}")
        for named in (f"config {cfg}", f"state_dir {tmp_path / 'state'}", "--config FILE", "WATCHER_CONFIG"):
            assert named in " ".join(text.split()), named


class TestRestartSafety:
    async def test_sigkill_mid_streak_loses_nothing(self, tmp_path: Path) -> None:
        """Kill -9, write while down, restart: same incident, lines once, same resolution time."""
        log = tmp_path / "edge.log"
        port = free_port()
        cfg = write_config(tmp_path, log, port, window=4.0)
        settings = config.load(cfg)
        with process(cfg) as proc:
            await wait_until(lambda: healthy(port), what="daemon up")
            async with AsyncClient(settings) as client:
                await client.open_incident("P1-test", "t", [], None)
                await client.mitigate("P1-test", "rollback")
                first = time.time()
                append(log, f'{{"ts":"{stamp(first)}","level":"error","msg":"one"}}')

                async def saw_first() -> bool:
                    return bool((await incident(client))["errors"] == 1)

                await wait_until(saw_first, what="first error")
            proc.send_signal(signal.SIGKILL)
            proc.wait()

        second = time.time()
        append(log, *(f'{{"ts":"{stamp(second)}","level":"info","n":{i}}}' for i in range(500)))
        append(log, f'{{"ts":"{stamp(second)}","level":"error","msg":"two"}}')
        append(log, f'{{"ts":"{stamp(second + 1)}","level":"info","msg":"still serving"}}')
        with process(cfg):
            await wait_until(lambda: healthy(port), what="daemon up again")
            async with AsyncClient(settings) as client:

                async def resolved() -> bool:
                    return bool((await incident(client))["state"] == "resolved")

                await wait_until(resolved, what="resolved after restart")
                inc = await incident(client)
                timeline = await client.timeline("P1-test")
        assert inc["errors"] == 2  # each error line read exactly once across the kill
        assert parse_time(inc["resolved_at"]) == pytest.approx(parse_time(stamp(second)) + 4.0, abs=0.002)
        assert len(timeline["mitigations"]) == 1

    async def test_sigterm_exits_zero_promptly(self, tmp_path: Path) -> None:
        """systemd's stop: drain, commit and exit 0 well within 10 s."""
        port = free_port()
        cfg = write_config(tmp_path, tmp_path / "edge.log", port)
        with process(cfg) as proc:
            await wait_until(lambda: healthy(port), what="daemon up")
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, 10)
            assert code == 0 and time.monotonic() - started < 10


@pytest.mark.prometheus
class TestPrometheus:
    async def test_prometheus_scrapes_the_streak(self, tmp_path: Path) -> None:
        """A real Prometheus scrapes /metrics and answers a query for the clean streak."""
        prometheus = require_binary("prometheus")
        promtool = require_binary("promtool")
        port, prom_port = free_port(), free_port()
        log = tmp_path / "edge.log"
        log.touch()
        settings = config.load(write_config(tmp_path, log, port, window=600))
        (tmp_path / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: watcher\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        )
        async with running(settings), AsyncClient(settings) as client:
            await client.open_incident("P1-prom", "t", [], None)
            await client.mitigate("P1-prom", "x")
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                    body = await resp.read()
                check = await asyncio.create_subprocess_exec(
                    promtool,
                    "check",
                    "metrics",
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                out, err = await check.communicate(body)
                assert (check.returncode, out + err) == (0, b"")
                prom = await asyncio.create_subprocess_exec(
                    prometheus,
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                try:
                    query = f"http://127.0.0.1:{prom_port}/api/v1/query"
                    params = {"query": 'watcher_incident_clean_streak_seconds{incident="P1-prom"} > 0'}

                    async def answered() -> bool:
                        async with http.get(query, params=params) as resp:
                            if resp.status != 200:  # 503 while Prometheus is still starting
                                return False
                            doc = await resp.json()
                        return bool(doc["status"] == "success" and doc["data"]["result"])

                    await wait_until(answered, within=30, what="prometheus to scrape the streak")
                finally:
                    prom.terminate()
                    await asyncio.wait_for(prom.wait(), 10)


def test_entry_point_is_installed() -> None:
    """The console script exists where pip put it, as users run it."""
    assert os.access(Path(sys.executable).with_name("watcher"), os.X_OK)


class TestSystemdNotify:
    async def test_ready_watchdog_stopping(self, tmp_path: Path) -> None:
        """Type=notify: READY=1 once sources are attached, WATCHDOG=1 pings, STOPPING=1 on SIGTERM."""
        sock_path = tmp_path / "notify.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(sock_path))
        sock.setblocking(False)
        port = free_port()
        cfg = write_config(tmp_path, tmp_path / "edge.log", port)
        env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "200000"}
        exe = Path(sys.executable).with_name("watcher")
        proc = await asyncio.create_subprocess_exec(
            str(exe), "run", "--config", str(cfg), env=env, stderr=subprocess.DEVNULL
        )
        loop = asyncio.get_running_loop()
        seen: list[bytes] = []
        try:
            async with asyncio.timeout(20):
                while b"WATCHDOG=1" not in seen or b"READY=1" not in seen:
                    seen.append(await loop.sock_recv(sock, 64))
                proc.send_signal(signal.SIGTERM)
                while b"STOPPING=1" not in seen:
                    seen.append(await loop.sock_recv(sock, 64))
                assert await proc.wait() == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            sock.close()
