"""What a reader sees: log text redacted as announced (issue case 6), no terminal escapes (case 9)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from tests.daemon.harness import AsyncClient, append, config_file, running, stamp
from tests.support import wait_until
from watcher import config

HOOK = "https://hooks.example.test/T0/B0/hooksecret"
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\u202e"
LINE = f"ERROR login password=hunter22 Authorization: Bearer abcdefghijkl0 via {HOOK} {ESCAPES}"


def write_config(tmp: Path, log: Path) -> Path:
    body = f"""
[notify]
incident_webhook = "{HOOK}"
[[sources]]
name = "edge"
kind = "file"
path = "{log}"
[[rules]]
name = "text-error"
regex = "ERROR"
"""
    return config_file(tmp, body, window=600)


class TestWhatAReaderSees:
    async def test_status_and_timeline_hide_credentials_and_escapes(self, tmp_path: Path) -> None:
        """A local user reading status or the timeline gets neither the password nor a terminal escape."""
        log = tmp_path / "edge.log"
        append(log, f"{stamp(time.time())} INFO up")
        cfg = write_config(tmp_path, log)
        exe = str(Path(sys.executable).with_name("watcher"))

        async def cli(*args: str) -> str:
            proc = await asyncio.create_subprocess_exec(
                exe, *args, "--config", str(cfg), stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            out, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
            return out.decode()

        settings = config.load(cfg)
        async with running(settings), AsyncClient(settings) as client:
            await client.open_incident("P1-x", f"edge {ESCAPES} password=titlepass", [], None)
            await client.mitigate("P1-x", f"rotated, token={HOOK}")
            append(log, f"{stamp(time.time())} {LINE}")

            async def reset() -> bool:
                events = (await client.timeline("P1-x"))["events"]
                return any(e["kind"] == "streak_reset" for e in events)

            await wait_until(reset, what="the streak reset on the timeline")
            shown = {
                "status": await cli("status"),
                "status --json": await cli("status", "--json"),
                "timeline": await cli("timeline", "P1-x"),
            }
            raw = await cli("status", "--no-redact")
            raw_json = json.loads(await cli("status", "--json", "--no-redact"))

        for what, text in shown.items():
            for secret in ("hunter22", "abcdefghijkl0", "hooksecret", "titlepass"):
                assert secret not in text, (what, secret)
            assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text, what
        assert "password=[REDACTED]" in shown["status"] and "\\x1b]0;pwned" in shown["status"]
        assert "\\x1b[2J" in shown["timeline"]
        assert "Mitigation: rotated, token=[REDACTED]" in shown["timeline"]
        # Asked for, with the token: the text as it was, still without live escapes on the terminal.
        assert "hunter22" in raw and "\x1b" not in raw and "\\x1b]0;pwned" in raw
        assert raw_json["incidents"][0]["last_error"]["message"].endswith(LINE)
