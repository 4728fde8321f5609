"""JournalSource against a real sshd and a real journald (entries written with systemd-cat)."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.fake_gateway import FakeGateway, FakeJournal, loopback_addresses
from tests.sshd import TEST_USER, Journald, LinkCut, Sshd, journald_fixture, sshd_fixture, unique_ident  # noqa: F401
from tests.support import RULES, wait_until
from watcher.config import JournalSourceConfig, RuleConfig, Settings
from watcher.events import Chunk, Gap, Liveness, SourceDown, Watermark
from watcher.sources import BuildContext, Source, SourceEvent
from watcher.sources.journal.source import JournalSource, cursor_time
from watcher.sources.journal.stream import (
    HEARTBEAT,
    Feed,
    Start,
    catch_up_script,
    follow_script,
    joined,
    output_fields,
    run_local,
)
from watcher.sources.registry import build_sources

pytestmark = pytest.mark.journal


def gateway(server: Sshd, ident: str, **over: object) -> JournalSourceConfig:
    """The server's journal source, following `ident`, with short timeouts for tests."""
    fast: dict[str, object] = {"keepalive_interval": "3s", "reconnect_min": "0.05s", "reconnect_max": "0.2s"}
    return server.journal_source(identifier=ident, **(fast | over))


def fake_config(gw: FakeGateway) -> JournalSourceConfig:
    return JournalSourceConfig.model_validate(
        {
            "name": "gw",
            "kind": "journal",
            "hosts": ["127.0.0.1"],
            "user": "watcher",
            "port": gw.port,
            "known_hosts": gw.known_hosts,
            "client_keys": [gw.client_key_path],
            "reconnect_min": "0.05s",
            "reconnect_max": "0.2s",
        }
    )


def messages(events: list[SourceEvent]) -> list[str]:
    out = []
    for e in events:
        if isinstance(e, Chunk):
            out += [json.loads(line)["MESSAGE"] for line in e.data.splitlines()]
    return out


class Reader:
    """Pumps a source into a list in the background; the generator is closed on exit."""

    def __init__(self, src: Source, after: str | None = None) -> None:
        self.src = src
        self.after = after
        self.events: list[SourceEvent] = []

    async def _pump(self) -> None:
        async for e in self.src.read(self.after):
            self.events.append(e)

    def cursor(self) -> str | None:
        chunks = [e for e in self.events if isinstance(e, Chunk)]
        return chunks[-1].cursor if chunks else None

    def watermark(self) -> float:
        return max((e.at for e in self.events if isinstance(e, Watermark)), default=float("-inf"))

    def downs(self) -> list[str]:
        return [e.reason for e in self.events if isinstance(e, SourceDown)]

    async def until_messages(self, n: int, within: float = 20) -> None:
        async def enough() -> bool:
            return len(messages(self.events)) >= n

        await wait_until(enough, within, f"{n} messages")

    async def until_watermark(self, at: float, within: float = 20) -> None:
        async def past() -> bool:
            return self.watermark() >= at

        await wait_until(past, within, f"watermark past {at}")

    async def until_down(self, part: str, within: float = 20) -> None:
        async def down() -> bool:
            return any(part in r for r in self.downs())

        await wait_until(down, within, f"down with {part!r}")


@asynccontextmanager
async def reading(src: JournalSource, after: str | None = None) -> AsyncIterator[Reader]:
    reader = Reader(src, after)
    task = asyncio.create_task(reader._pump())
    try:
        yield reader
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def numbered(prefix: str, lo: int, hi: int) -> list[str]:
    return [f"{prefix} {i}" for i in range(lo, hi)]


class TestOverSsh:
    async def test_backlog_since_then_follow(self, sshd: Sshd, journald: Journald) -> None:
        """Entries since the given start, then new ones, each once; the watermark passes them."""
        ident = unique_ident()
        journald.write(ident, numbered("old", 0, 3))
        src = JournalSource(gateway(sshd, ident), sshd.address, since=time.time() - 60)
        async with reading(src) as r:
            await r.until_messages(3)
            journald.write(ident, numbered("new", 0, 5))
            written = time.time()
            await r.until_messages(8)
            await r.until_watermark(written)
        assert messages(r.events) == numbered("old", 0, 3) + numbered("new", 0, 5)
        assert r.downs() == []

    async def test_resume_by_cursor_no_duplicates(self, sshd: Sshd, journald: Journald) -> None:
        """A restart from the saved cursor yields exactly what came after it (the -u/--after-cursor quirk)."""
        ident = unique_ident()
        journald.write(ident, numbered("e", 0, 4))
        cfg = gateway(sshd, ident)
        async with reading(JournalSource(cfg, sshd.address, since=time.time() - 60)) as first:
            await first.until_messages(4)
        cursor = first.cursor()
        assert cursor is not None and cursor_time(cursor) is not None
        journald.write(ident, numbered("e", 4, 10))
        async with reading(JournalSource(cfg, sshd.address), after=cursor) as second:
            await second.until_messages(6)
            await second.until_watermark(time.time())
        assert messages(second.events) == numbered("e", 4, 10)
        assert not any(isinstance(e, Gap) for e in second.events)

    async def test_unparseable_cursor_resumes_from_its_time(self, sshd: Sshd, journald: Journald) -> None:
        """A saved cursor journalctl rejects: said so, then read on from the time the cursor carries."""
        ident = unique_ident()
        journald.write(ident, ["before the cursor's time"])

        async def stored() -> bool:
            return journald.count(ident) == 1  # stamped by journald, so before `after`

        await wait_until(stored, what="the first entry stored")
        after = time.time()
        journald.write(ident, numbered("r", 0, 3))
        broken = f"s=not-a-seqnum-id;t={int(after * 1e6):x}"
        async with reading(JournalSource(gateway(sshd, ident), sshd.address), after=broken) as r:
            await r.until_messages(3)
            await r.until_watermark(time.time())
        assert any("Failed to seek to cursor" in d for d in r.downs())
        assert messages(r.events) == numbered("r", 0, 3)

    async def test_sshd_killed_then_back_reads_backlog_once(self, sshd: Sshd, journald: Journald) -> None:
        """sshd dies: down, watermark frozen; back: what was written meanwhile, exactly once."""
        ident = unique_ident()
        src = JournalSource(gateway(sshd, ident), sshd.address, since=time.time() - 1)
        async with reading(src) as r:
            journald.write(ident, numbered("n", 0, 5))
            await r.until_messages(5)
            sshd.kill()
            await r.until_down("")
            frozen = r.watermark()
            journald.write(ident, numbered("n", 5, 25))
            await r.until_down("connection refused")
            assert r.watermark() == frozen
            sshd.start()
            await r.until_messages(25)
            await r.until_watermark(time.time())
        assert messages(r.events) == numbered("n", 0, 25)

    async def test_journalctl_killed_on_the_gateway(self, sshd: Sshd, journald: Journald) -> None:
        """The remote journalctl dies: the source says so, reconnects and continues without duplicates."""
        ident = unique_ident()
        src = JournalSource(gateway(sshd, ident), sshd.address, since=time.time() - 1)
        async with reading(src) as r:
            journald.write(ident, numbered("k", 0, 3))
            await r.until_messages(3)

            async def following() -> bool:
                return bool(sshd.remote_pids("--follow"))

            await wait_until(following, what="the remote journalctl")

            async def killed() -> bool:  # sh may not have exec'd journalctl yet
                return sshd.kill_remote("journalctl") == 1

            await wait_until(killed, what="the remote journalctl killed")
            await r.until_down("journalctl stopped")
            journald.write(ident, numbered("k", 3, 6))
            await r.until_messages(6)
        assert messages(r.events) == numbered("k", 0, 6)

    async def test_no_journalctl_left_after_disconnect(self, sshd: Sshd, journald: Journald) -> None:
        """Closing the source ends the remote journalctl and its wrapper (no pty, no SIGHUP needed)."""
        ident = unique_ident()
        src = JournalSource(gateway(sshd, ident), sshd.address)
        async with reading(src) as r:
            await r.until_watermark(time.time())
            assert sshd.remote_pids(ident)

        async def gone() -> bool:
            return not sshd.remote_pids(ident)

        await wait_until(gone, 5, "the remote journalctl to exit")

    async def test_changed_host_key_keeps_it_down(self, sshd: Sshd, journald: Journald) -> None:
        """A host key that differs from known_hosts: down with that reason, nothing read."""
        ident = unique_ident()
        journald.write(ident, ["must not be read"])
        cfg = gateway(sshd, ident, known_hosts=sshd.wrong_known_hosts())
        async with reading(JournalSource(cfg, sshd.address, since=time.time() - 60)) as r:
            await r.until_down("HOST KEY MISMATCH")
        assert messages(r.events) == []
        assert r.watermark() == float("-inf")


class TestNetworkCut:
    @pytest.mark.slow
    async def test_link_down_detected_within_the_keepalive_bound(self, journald: Journald) -> None:
        """The far end falls silent (no FIN, no RST): down within keepalive_interval, watermark
        frozen, no entry lost."""
        link = LinkCut()
        server = Sshd(address=link.remote, netns=link.netns)
        try:
            server.start()
            ident = unique_ident()
            cfg = gateway(server, ident, keepalive_interval="2s")
            src = JournalSource(cfg, server.address, since=time.time() - 1)
            async with reading(src) as r:
                journald.write(ident, numbered("c", 0, 2))
                await r.until_messages(2)
                await r.until_watermark(time.time())
                link.cut()
                cut = time.monotonic()
                frozen_at = r.watermark() + 2.0  # heartbeats already in flight may still land
                await r.until_down("nothing received", within=30)
                detected = time.monotonic() - cut
                assert r.watermark() <= frozen_at
        finally:
            server.stop()
            link.remove()
        assert detected < 2.0 + 2 * HEARTBEAT + 1.0
        assert messages(r.events) == numbered("c", 0, 2)


class TestLocal:
    async def test_local_journalctl_without_hosts(self, journald: Journald) -> None:
        """No hosts: the local journal, read by a local journalctl, same semantics."""
        ident = unique_ident()
        cfg = JournalSourceConfig.model_validate(
            {"name": "gw", "kind": "journal", "identifier": ident, "keepalive_interval": "3s"}
            | {"reconnect_min": "0.05s"}
        )
        journald.write(ident, numbered("l", 0, 2))
        src = JournalSource(cfg, None, since=time.time() - 60)
        async with reading(src) as r:
            await r.until_messages(2)
            journald.write(ident, numbered("l", 2, 4))
            await r.until_messages(4)
            await r.until_watermark(time.time())
        assert src.name == "gw"
        assert messages(r.events) == numbered("l", 0, 4)


class TestFakeGateway:
    """Faults staged by an in-process SSH server playing the gateway."""

    async def test_gateway_reboot_while_unreachable(self) -> None:
        """The end of the old boot and the new boot are both read, once: the catch-up run has no --boot."""
        journal = FakeJournal()
        gw = FakeGateway(journal)
        await gw.start()
        cfg = fake_config(gw)
        async with reading(JournalSource(cfg, "127.0.0.1", since=time.time() - 5)) as r:
            journal.add("boot1 a")
            await r.until_messages(1)
            await gw.stop()
            await r.until_down("")
            journal.add("boot1 b (last words)")
            journal.reboot()
            journal.add("boot2 a")
            await gw.start(port=gw.port)
            await r.until_messages(3)
            journal.add("boot2 b")
            await r.until_messages(4)
            await r.until_watermark(time.time() - 0.5)
        await gw.stop()
        assert messages(r.events) == ["boot1 a", "boot1 b (last words)", "boot2 a", "boot2 b"]

    async def test_fleet_limits_concurrent_handshakes(self) -> None:
        """40 gateways from one process: at most max_handshakes in flight, every one then followed."""
        gw = FakeGateway()
        addresses = loopback_addresses(40)
        await gw.start(addresses)
        settings = Settings(
            sources=[
                fake_config(gw).model_copy(update={"hosts": addresses, "max_handshakes": 3}),
            ],
            rules=RULES,  # type: ignore[arg-type]
        )
        built = build_sources(settings, BuildContext(settings.max_line_bytes, time.time))
        readers = [Reader(src) for src in built]
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(r._pump()) for r in readers]

                async def all_caught_up() -> bool:
                    return all(r.watermark() > 0 for r in readers)

                await wait_until(all_caught_up, 30, "every gateway caught up")
                for t in tasks:
                    t.cancel()
        finally:
            await gw.stop()
        assert [src.name for src in built] == [f"gw/{a}" for a in addresses]
        assert 1 <= gw.max_handshaking <= 3

    async def test_handshake_count_forgets_a_client_that_gave_up(self) -> None:
        """A client that drops mid-handshake is no longer counted (the benchmark's max_handshaking)."""
        gw = FakeGateway()
        await gw.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            await reader.readline()  # the server's version line: the handshake is under way
            await wait_until(lambda: gw.handshaking == 1, what="the handshake counted")
            writer.close()
            await wait_until(lambda: gw.handshaking == 0, what="the dropped handshake forgotten")
            src = JournalSource(fake_config(gw), "127.0.0.1", since=time.time() - 5)
            async with reading(src) as r:
                await r.until_watermark(time.time() - 5)
            await wait_until(lambda: gw.handshaking == 0, what="no handshake left once authenticated")
        finally:
            await gw.stop()
        assert gw.max_handshaking == 1

    async def test_journalctl_without_field_selection(self) -> None:
        """A journalctl that refuses --output-fields (before systemd 236): every field is read."""
        journal = FakeJournal()
        gw = FakeGateway(journal)
        gw.old_journalctl = True
        await gw.start()
        src = JournalSource(fake_config(gw), "127.0.0.1", since=time.time() - 5, fields=("MESSAGE",))
        try:
            async with reading(src) as r:
                journal.add("still read")
                await r.until_messages(1)
        finally:
            await gw.stop()
        assert any("output-fields" in d for d in r.downs())

    async def test_vacuumed_cursor_is_a_gap(self) -> None:
        """The saved cursor's entry is gone: a Gap from it to the first entry still there, then on."""
        now = time.time()
        journal = FakeJournal()
        journal.add("a", at=now - 100)
        saved = journal.add("b", at=now - 90)
        journal.add("c", at=now - 50)
        journal.add("d", at=now - 40)
        journal.vacuum(keep_last=1)
        gw = FakeGateway(journal)
        await gw.start()
        cfg = fake_config(gw)
        try:
            async with reading(JournalSource(cfg, "127.0.0.1"), after=saved) as r:
                await r.until_messages(1)
                journal.add("e")
                await r.until_messages(2)
                await r.until_watermark(time.time() - 0.5)
        finally:
            await gw.stop()
        gaps = [e for e in r.events if isinstance(e, Gap)]
        assert len(gaps) == 1
        assert gaps[0].start == pytest.approx(now - 90, abs=1e-5)
        assert gaps[0].end == pytest.approx(now - 40, abs=1e-5)
        assert "vacuumed" in gaps[0].reason
        assert messages(r.events) == ["d", "e"]
        assert r.downs() == []


class TestFeed:
    async def test_what_arrived_together_is_handed_over_together(self) -> None:
        """Everything since the last read comes at once, in arrival order: stdout back to back
        is one chunk, a heartbeat between two entries keeps them apart, the end comes last."""
        feed = Feed()
        for kind, data in [("out", b"a\n"), ("out", b"b\n"), ("err", b"1.0\n"), ("out", b"c\n")]:
            feed.put(kind, data)  # type: ignore[arg-type]
        feed.end("channel closed")
        assert joined(await feed.get(5)) == [
            ("out", b"a\nb\n"),
            ("err", b"1.0\n"),
            ("out", b"c\n"),
            ("end", b"channel closed"),
        ]

    async def test_silence_after_what_arrived(self) -> None:
        """What arrived is handed over first; then a silent feed raises TimeoutError."""
        feed = Feed()
        feed.put("out", b"a\n")
        assert await feed.get(0.05) == [("out", b"a\n")]
        with pytest.raises(TimeoutError):
            await feed.get(0.05)

    async def test_what_arrives_as_the_watch_fires_ends_the_silence(self) -> None:
        """An entry that arrives in the turn the silence watch fired is handed over, and the next
        read waits afresh instead of reporting a silence that ended (a false "link down")."""
        feed = Feed()
        waiting = asyncio.create_task(feed.get(0.05))
        await asyncio.sleep(0)  # the read is waiting, its watch set
        feed._expire(0.0)  # the watch fires: nothing came for the whole silence...
        feed.put("out", b"a\n")  # ...and an entry arrives before the read resumes
        assert await waiting == [("out", b"a\n")]
        asyncio.get_running_loop().call_later(0.01, feed.put, "out", b"b\n")
        assert await feed.get(5) == [("out", b"b\n")]


class TestCommands:
    def test_arguments_are_quoted(self) -> None:
        """A unit name with shell syntax reaches journalctl as one argument, never as shell code."""
        cfg = JournalSourceConfig(name="gw", kind="journal", unit="gw; touch /tmp/pwned $(id)")
        start = Start(cursor="s=1;i=2;t=3")
        for script in (catch_up_script(cfg, start), follow_script(cfg, start)):
            args = shlex.split(script)
            assert "--unit=gw; touch /tmp/pwned $(id)" in args
            assert "--cursor=s=1;i=2;t=3" in args
        assert "--follow" not in catch_up_script(cfg, start)  # --follow would imply --boot

    def test_start_points(self) -> None:
        """Cursor (inclusive, never --after-cursor), else --since the given time, else now."""
        assert Start(cursor="c").args() == ["--cursor=c"]
        assert Start(since=1795813403.25).args() == ["--since=@1795813403.250000"]
        assert Start().args() == ["--since=now"]

    def test_cursor_time(self) -> None:
        """The realtime a cursor carries in its t= field (hex microseconds)."""
        assert cursor_time("s=a;i=1;b=b;m=2;t=6614863fc067c;x=9") == pytest.approx(1795813403.264636)
        assert cursor_time("no time here") is None
        assert cursor_time(None) is None


class TestUnitLiveness:
    """After each heartbeat the follow script asks whether the unit runs (tests/sshd.py's stand-in)."""

    async def test_the_units_state_changes_are_reported_in_the_stream(
        self, sshd: Sshd, journald: Journald
    ) -> None:
        """Running, then failed (dated at the last check that found it running), then running again."""
        src = JournalSource(gateway(sshd, unique_ident()), sshd.address)
        async with reading(src) as r:

            def reports() -> list[Liveness]:
                return [e for e in r.events if isinstance(e, Liveness)]

            await wait_until(lambda: len(reports()) == 1, what="the first report")
            assert reports()[0].alive
            sshd.unit_state("failed")
            await wait_until(lambda: len(reports()) == 2, what="the failure")
            down = reports()[1]
            assert not down.alive and down.reason == "unit novavms-gateway is failed"
            assert down.at >= reports()[0].at
            # While it ran, no watermark passed the last check that found it running.
            before = r.events.index(down)
            assert max(e.at for e in r.events[:before] if isinstance(e, Watermark)) <= down.at
            sshd.unit_state("active")
            await wait_until(lambda: len(reports()) == 3 and reports()[2].alive, what="running again")

    async def test_only_the_fields_the_rules_read(self, sshd: Sshd, journald: Journald) -> None:
        """Entries come with MESSAGE, the rules' fields and journalctl's own; a PRIORITY rule still
        sees each entry's priority."""
        ident = unique_ident()
        journald.write(ident, ["kept short"])
        src = JournalSource(
            gateway(sshd, ident), sshd.address, since=time.time() - 60, fields=("MESSAGE", "PRIORITY")
        )
        async with reading(src) as r:
            await r.until_messages(1)
        (entry,) = [
            json.loads(line) for e in r.events if isinstance(e, Chunk) for line in e.data.splitlines()
        ]
        assert {"MESSAGE", "PRIORITY", "__CURSOR", "__REALTIME_TIMESTAMP"} <= set(entry)
        assert not {
            k for k in entry if not k.startswith("__") and k not in ("MESSAGE", "PRIORITY", "_BOOT_ID")
        }
        assert entry["PRIORITY"] == "3"

    async def test_heartbeat_and_unit_state_in_one_write(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each second the clock and the unit's state leave in one write (one SSH packet), the
        check's words joined by single spaces and never globbed."""
        fake = tmp_path / "journalctl"
        fake.write_text("#!/bin/sh\nexec sleep 30\n")
        fake.chmod(0o755)
        monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
        cfg = JournalSourceConfig.model_validate(
            {"name": "gw", "kind": "journal", "liveness_command": "printf 'in  active\\nx *'; false"}
        )
        run = await run_local(follow_script(cfg, Start()))
        try:
            (kind, data), *_ = await run.feed.get(10)
        finally:
            await run.stop()
        clock, unit, rest = data.decode().split("\n")
        assert kind == "err" and rest == ""
        assert unit == f"unit 1 {clock} in active x *"

    def test_fields_asked_for(self) -> None:
        """MESSAGE and the fields of the rules (and ignore rules) that apply to the source."""
        rules = [
            RuleConfig(name="prio", field="PRIORITY", max=3),
            RuleConfig(name="mine", field="_COMM", values=["x"], sources=["gw/*"]),
            RuleConfig(name="theirs", field="UNIT", values=["x"], sources=["cloud"]),
            RuleConfig(name="nested", field="http.status", min=500),
            RuleConfig(name="text", regex="panic"),
        ]
        ignore = [RuleConfig(name="quiet", field="CODE_FILE", values=["x"])]
        assert output_fields(rules, ignore, "gw/a", None) == ("CODE_FILE", "MESSAGE", "PRIORITY", "_COMM")
        assert output_fields(rules, [], "gw/a", ["text"]) == ("MESSAGE",)
        assert output_fields(rules, [], "gw/a", ["text"], impact_field="ORG_ID") == ("MESSAGE", "ORG_ID")
        assert "--output-fields=MESSAGE,PRIORITY" in follow_script(
            JournalSourceConfig(name="gw", kind="journal"), Start(), ("MESSAGE", "PRIORITY")
        )

    def test_the_check_quotes_the_unit_and_can_be_turned_off(self) -> None:
        """The unit reaches the liveness command as one word; liveness_command = "" asks nothing."""
        cfg = JournalSourceConfig(name="gw", kind="journal", unit="gw; touch /tmp/pwned")
        assert "systemctl is-active 'gw; touch /tmp/pwned'" in follow_script(cfg, Start())
        off = cfg.model_copy(update={"liveness_command": ""})
        assert "unit" not in follow_script(off, Start()).replace("--unit=", "")
        assert not JournalSource(off, None).expectation("gw").liveness
