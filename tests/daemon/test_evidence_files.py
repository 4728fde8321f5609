"""The daemon with file sources: every error read counts, and silence is not health (DESIGN §2.1).

Each test is a case from the evidence issue, written live into a followed file while
the daemon runs; window and waits are short, the assertions exact.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.daemon.harness import AsyncClient, append, config_file, incident, running, stamp
from tests.support import wait_until
from watcher import config
from watcher.cli import app
from watcher.daemon.daemon import Daemon
from watcher.times import parse_time

WINDOW = 3.0
RULES = """
[[rules]]
name = "level"
field = "level"
values = ["error"]
[[rules]]
name = "text"
regex = 'ERROR|Traceback \\(most recent call last\\)'
"""


def file_source(name: str, path: Path, extra: str = "") -> str:
    return f'[[sources]]\nname = "{name}"\nkind = "file"\npath = "{path}"\n{extra}\n'


def settings(tmp: Path, sources: str, **resolution: str) -> config.Settings:
    extra = "".join(f'{k} = "{v}"\n' for k, v in resolution.items())
    cfg = config_file(tmp, sources + RULES, window=WINDOW)
    cfg.write_text(cfg.read_text().replace("[resolution]\n", f"[resolution]\n{extra}", 1))
    return config.load(cfg)


def info(at: float, msg: str = "ok") -> str:
    return json.dumps({"ts": stamp(at), "level": "info", "msg": msg})


async def mitigated(client: AsyncClient, scope: str = "edge*", incident_id: str = "P1-test") -> float:
    await client.open_incident(incident_id, "edge broken", [scope], None)
    doc = await client.mitigate(incident_id, "rollback")
    return parse_time(str(doc["mitigated_at"]))


async def timeline(client: AsyncClient, incident_id: str = "P1-test") -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = (await client.timeline(incident_id))["events"]  # type: ignore[assignment]
    return events


def lines_read(daemon: Daemon, name: str = "edge") -> int:
    return daemon.pipeline.sources[name].stats().lines


class TestStampsNotTrusted:
    async def test_error_stamped_an_hour_ahead_resets_at_its_arrival(self, tmp_path: Path) -> None:
        """A live error stamped +1 h after the mitigation resets the streak when it arrives; the
        source's clock skew is reported (status, metric, timeline)."""
        log = tmp_path / "edge.log"
        append(log, info(time.time()))
        s = settings(tmp_path, file_source("edge", log))
        async with running(s) as daemon, AsyncClient(s) as client:
            await wait_until(lambda: lines_read(daemon) == 1, what="the first line read")
            m = await mitigated(client)
            append(log, json.dumps({"ts": stamp(time.time() + 3600), "level": "error", "msg": "ahead"}))
            before = time.time()

            async def reset() -> bool:
                return any(e["kind"] == "streak_reset" for e in await timeline(client))

            await wait_until(reset, what="the streak reset")
            inc = await incident(client)
            assert m < parse_time(inc["streak_start"]) < before + 5  # arrival, not +1 h
            (entry,) = [e for e in await timeline(client) if e["kind"] == "streak_reset"]
            assert entry["detail"]["stamped"] > before + 3000
            src = next(x for x in (await client.status())["sources"] if x["name"] == "edge")
            assert (src.get("clock_skew") or 0) > 3000
            skew = daemon.registry.get_sample_value("watcher_source_clock_skew_seconds", {"source": "edge"})
            assert skew is not None and skew > 3000
            assert any(e["kind"] == "clock_skew" for e in await timeline(client))

    async def test_error_stamped_an_hour_ago_but_written_live_counts(self, tmp_path: Path) -> None:
        """A live error stamped -1 h (before the mitigation) counts at its arrival."""
        log = tmp_path / "edge.log"
        log.touch()
        s = settings(tmp_path, file_source("edge", log))
        async with running(s), AsyncClient(s) as client:
            m = await mitigated(client)
            await asyncio.sleep(0.3)  # the source has been caught up since: what comes now is live
            append(log, json.dumps({"ts": stamp(time.time() - 3600), "level": "error", "msg": "behind"}))

            async def reset() -> bool:
                return (
                    bool((await incident(client))["errors"] == 1)
                    and parse_time((await incident(client))["streak_start"]) > m
                )

            await wait_until(reset, what="the streak reset at the arrival")

    async def test_unparsable_stamp_is_its_own_record_at_arrival(self, tmp_path: Path) -> None:
        """`9999-12-31T23:59:59Z ERROR ...` after an info line is not merged into it: it resets."""
        log = tmp_path / "edge.log"
        append(log, info(time.time() - 60))
        s = settings(tmp_path, file_source("edge", log))
        async with running(s) as daemon, AsyncClient(s) as client:
            await wait_until(lambda: lines_read(daemon) == 1, what="the first line read")
            m = await mitigated(client)
            append(log, "9999-12-31T23:59:59Z ERROR: disk full")

            async def reset() -> bool:
                inc = await incident(client)
                return inc["errors"] == 1 and parse_time(inc["streak_start"]) > m

            await wait_until(reset, what="the error counted at its arrival")


class TestContinuations:
    async def test_untimestamped_error_lines_over_time_each_count(self, tmp_path: Path) -> None:
        """`ERROR: database connection refused` every 0.1 s after one stamped line: 24 errors in the
        daemon, and 24 in `classify` of the same file."""
        log = tmp_path / "edge.log"
        append(log, f"{stamp(time.time())} INFO pool ready")
        s = settings(tmp_path, file_source("edge", log))
        async with running(s) as daemon, AsyncClient(s) as client:
            await client.open_incident("P1-test", "db", ["edge*"], None)
            await wait_until(lambda: lines_read(daemon) == 1, what="the stamped line read")
            for _ in range(24):
                append(log, "ERROR: database connection refused")
                await asyncio.sleep(0.1)

            async def counted() -> bool:
                return bool((await incident(client))["errors"] == 24)

            await wait_until(counted, what="24 errors")
        cfg = tmp_path / "watcher.toml"
        res = CliRunner().invoke(app, ["classify", "--config", str(cfg), "--json", f"edge={log}"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["errors"] == 24

    async def test_traceback_with_its_head_is_one_error(self, tmp_path: Path) -> None:
        """A traceback written with its head is one error event; a frame-like line arriving later
        is a record of its own, counted at its arrival (not at the old head's time)."""
        log = tmp_path / "edge.log"
        log.touch()
        s = settings(tmp_path, file_source("edge", log))
        async with running(s) as daemon, AsyncClient(s) as client:
            await client.open_incident("P1-test", "t", ["edge*"], None)
            append(
                log,
                f"{stamp(time.time())} Traceback (most recent call last):",
                '  File "/app/handlers.py", line 12, in handle',
                "    frame = decode(packet)",
                "ValueError: bad frame",
            )
            await wait_until(lambda: lines_read(daemon) == 4, what="the traceback read")
            assert (await incident(client))["errors"] == 1
            append(log, f"{stamp(time.time())} INFO handled")
            await wait_until(lambda: lines_read(daemon) == 5, what="the info line")
            m = await mitigated_only(client)
            await asyncio.sleep(1.5)  # longer than a continuation may lag behind its head
            append(log, "    ERROR: worker lost its connection")

            async def reset() -> bool:
                inc = await incident(client)
                return inc["errors"] == 2 and parse_time(inc["streak_start"]) > m

            await wait_until(reset, what="the late indented error counted at its arrival")


async def mitigated_only(client: AsyncClient) -> float:
    doc = await client.mitigate("P1-test", "rollback")
    return parse_time(str(doc["mitigated_at"]))


class TestRotation:
    async def test_errors_written_to_the_renamed_file_before_the_reopen_count(self, tmp_path: Path) -> None:
        """logrotate renames and creates; the application writes to the old file until its SIGHUP."""
        log = tmp_path / "edge.log"
        writer = log.open("a", buffering=1)
        writer.write(info(time.time()) + "\n")
        s = settings(tmp_path, file_source("edge", log, 'rotate_wait = "10s"'))
        async with running(s) as daemon, AsyncClient(s) as client:
            await client.open_incident("P1-test", "t", ["edge*"], None)
            await wait_until(lambda: lines_read(daemon) == 1, what="the first line")
            log.rename(tmp_path / "edge.log.1")
            append(log, info(time.time(), "new file"))
            await wait_until(lambda: lines_read(daemon) == 2, what="the new file followed")
            writer.write(json.dumps({"ts": stamp(time.time()), "level": "error", "msg": "late"}) + "\n")
            writer.close()

            async def counted() -> bool:
                return bool((await incident(client))["errors"] == 1)

            await wait_until(counted, what="the error in the renamed file")


class TestSilence:
    async def test_quiet_ok_error_log_resolves_and_a_silent_one_cannot(self, tmp_path: Path) -> None:
        """An error-only log that says quiet_ok resolves on silence; an ordinary silent log cannot,
        and its status says why."""
        quiet, silent = tmp_path / "errors.log", tmp_path / "app.log"
        quiet.touch()
        silent.touch()
        sources = file_source("errors", quiet, "quiet_ok = true") + file_source("app", silent)
        s = settings(tmp_path, sources)
        async with running(s), AsyncClient(s) as client:
            await mitigated(client, "errors", "P1-quiet")
            await mitigated(client, "app", "P1-silent")

            async def quiet_resolved() -> bool:
                return bool((await incident(client, "P1-quiet"))["state"] == "resolved")

            await wait_until(quiet_resolved, what="the quiet_ok log resolved")

            async def explained() -> bool:
                return bool((await incident(client, "P1-silent"))["cannot_resolve"])

            await wait_until(explained, what="the silent log's reason")
            inc = await incident(client, "P1-silent")
            assert inc["state"] == "verifying"
            assert inc["cannot_resolve"] == ["app: no record in the last 3s"]

            async def noted() -> bool:
                notes = [e for e in await timeline(client, "P1-silent") if e["kind"] == "cannot_resolve"]
                return bool(notes) and "app: no record in the last 3s" in notes[-1]["detail"]["reasons"]

            await wait_until(noted, what="the reason on the timeline")

    async def test_a_missed_heartbeat_is_a_gap(self, tmp_path: Path) -> None:
        """expect_every with expect_match: other lines do not stand in for the heartbeat; while it is
        missed nothing resolves, and once it is back the missed span is a gap."""
        log = tmp_path / "gw.log"
        log.touch()
        extra = 'expect_every = "1s"\nexpect_match = "heartbeat ok"'
        s = settings(tmp_path, file_source("edge", log, extra))
        beating = True

        async def write() -> None:
            while True:
                append(log, info(time.time(), "heartbeat ok" if beating else "busy"))
                await asyncio.sleep(0.2)

        async with running(s), AsyncClient(s) as client:
            writer = asyncio.create_task(write())
            try:
                await mitigated(client)
                beating = False
                await reason_contains(
                    client, "edge: no record matching 'heartbeat ok' (expect_every 1s) since"
                )
                beating = True

                async def resolved() -> bool:
                    return bool((await incident(client))["state"] == "resolved")

                await wait_until(resolved, what="resolved once the heartbeat is back")
            finally:
                writer.cancel()
            gaps = [e for e in await timeline(client) if e["kind"] == "gap"]
            assert gaps and "heartbeat ok" in gaps[0]["detail"]["reason"]


async def reason_contains(client: AsyncClient, text: str) -> None:
    async def said() -> bool:
        return any(text in r for r in (await incident(client))["cannot_resolve"])

    await wait_until(said, what=f"cannot resolve: {text}")
