"""watcher.ssh.connect against a real sshd: each failure is one line a user can act on."""

from __future__ import annotations

import asyncio
import os
import pwd
import time
from pathlib import Path

import asyncssh
import pytest
from typer.testing import CliRunner

from tests.sshd import TEST_USER, LinkCut, Sshd, journald_fixture, sshd_fixture  # noqa: F401
from tests.support import RULE, free_port, wait_until
from watcher.cli import app
from watcher.config import JournalSourceConfig
from watcher.errors import SourceError
from watcher.sources import ssh

pytestmark = pytest.mark.journal


def config(server: Sshd, **over: object) -> JournalSourceConfig:
    return server.journal_source(**({"connect_timeout": "5s"} | over))


async def reason(cfg: JournalSourceConfig, host: str = "127.0.0.1") -> str:
    with pytest.raises(SourceError) as info:
        conn = await ssh.connect(cfg, host, ssh.user_for(cfg, host))
        conn.close()
    return str(info.value)


class TestConnect:
    async def test_connects_and_runs_journalctl(self, sshd: Sshd) -> None:
        """Host key from known_hosts, key auth, the configured user."""
        async with await ssh.connect(config(sshd), sshd.address, TEST_USER) as conn:
            done = await conn.run("id -un; journalctl --version", check=True)
        assert str(done.stdout).startswith(f"{TEST_USER}\n")

    async def test_aes_gcm_with_openssh(self, sshd: Sshd) -> None:
        """OpenSSH offers AES-GCM, which costs a fifth of chacha20-poly1305 per packet here."""
        async with await ssh.connect(config(sshd), sshd.address, TEST_USER) as conn:
            assert conn.get_extra_info("recv_cipher") == ssh.CIPHERS[0]

    async def test_per_host_user_wins(self, sshd: Sshd) -> None:
        """host_users overrides user for that host (here: a user sshd refuses)."""
        cfg = config(sshd, host_users={sshd.address: "nobody"})
        assert ssh.user_for(cfg, sshd.address) == "nobody"
        assert "nobody@127.0.0.1" in await reason(cfg)

    async def test_changed_host_key(self, sshd: Sshd) -> None:
        """A key different from the pinned one is called a mismatch, not just 'untrusted'."""
        text = await reason(config(sshd, known_hosts=sshd.wrong_known_hosts()))
        assert "HOST KEY MISMATCH" in text and "known_hosts.wrong" in text

    async def test_unknown_host(self, sshd: Sshd, tmp_path: Path) -> None:
        """A host missing from known_hosts is refused, never accepted on first use."""
        empty = tmp_path / "known_hosts"
        empty.write_text("")
        assert "unknown host key" in await reason(config(sshd, known_hosts=empty))

    async def test_auth_failed(self, sshd: Sshd, tmp_path: Path) -> None:
        """A key the gateway does not know: authentication failed, naming the key."""
        other = tmp_path / "other_key"
        asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(other))
        text = await reason(config(sshd, client_keys=[other]))
        assert "authentication failed" in text and str(other) in text

    async def test_refused(self, sshd: Sshd) -> None:
        """Nothing listening: connection refused."""
        assert "connection refused" in await reason(config(sshd, port=free_port()))

    async def test_timeout(self, sshd: Sshd) -> None:
        """A port that accepts but never speaks SSH: timeout after connect_timeout."""

        async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()
            writer.close()

        server = await asyncio.start_server(mute, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            text = await reason(config(sshd, port=port, connect_timeout="0.3s"))
        assert "timeout" in text


class TestDefaults:
    """Issue case 10: no `user` crashed check-config and run; no `client_keys` turned key auth off."""

    @pytest.fixture
    def home(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        """The local user the watcher runs as: the test's login, with a home of its own."""
        account = pwd.struct_passwd(
            (TEST_USER, "x", os.geteuid(), os.getegid(), "", str(tmp_path), "/bin/sh")
        )
        monkeypatch.setattr(ssh, "_local_user", lambda: account)
        return tmp_path

    async def test_no_user_and_no_keys_mean_the_local_user_and_its_default_identity(
        self, sshd: Sshd, home: Path
    ) -> None:
        """As ssh(1) would: log in as the local user, offering ~/.ssh/id_ed25519 of that user."""
        (home / ".ssh").mkdir()
        (home / ".ssh" / "id_ed25519").write_bytes(sshd.client_key_path.read_bytes())
        cfg = config(sshd, user=None, client_keys=[])
        assert ssh.user_for(cfg, sshd.address) == TEST_USER
        assert ssh.client_keys(cfg) == [home / ".ssh" / "id_ed25519"]
        async with await ssh.connect(cfg, sshd.address, ssh.user_for(cfg, sshd.address)) as conn:
            done = await conn.run("id -un", check=True)
        assert done.stdout == f"{TEST_USER}\n"

    async def test_no_default_identity_is_one_line_saying_where_it_looked(
        self, sshd: Sshd, home: Path
    ) -> None:
        """Neither client_keys nor a default identity file: the reason names the directory and the fix."""
        text = await reason(config(sshd, user=None, client_keys=[]))
        assert f"{TEST_USER}@127.0.0.1:{sshd.port}: no client_keys configured" in text
        assert f"in {home / '.ssh'}: set client_keys" in text

    def test_check_config_without_user_is_not_an_internal_error(self, sshd: Sshd, tmp_path: Path) -> None:
        """`hosts` without `user` was exit 70 (TypeError inside asyncssh); now it reaches the host."""
        cfg = tmp_path / "watcher.toml"
        cfg.write_text(
            f'state_dir = "{tmp_path / "state"}"\n[[sources]]\nname = "gw"\nkind = "journal"\n'
            f'hosts = ["{sshd.address}"]\nport = {sshd.port}\nknown_hosts = "{sshd.known_hosts}"\n'
            f'client_keys = ["{sshd.client_key_path}"]\n'
        )
        res = CliRunner().invoke(app, ["check-config", "--config", str(cfg)])
        assert res.exit_code == 1 and "internal error" not in res.stderr
        assert f"sources[0].hosts[0]: root@127.0.0.1:{sshd.port}: authentication failed" in res.stderr


class TestProxyJump:
    async def test_through_a_jump_host_with_the_same_trust(self, sshd: Sshd, tmp_path: Path) -> None:
        """proxy_jump: the jump host is checked against the same known_hosts and closed with the link."""
        jump = Sshd()
        jump.config_extra = [f"PermitOpen 127.0.0.1:{sshd.port}"]
        jump.start()
        try:
            known = tmp_path / "known_hosts"
            known.write_bytes(sshd.known_hosts.read_bytes() + jump.known_hosts.read_bytes())
            cfg = config(
                sshd,
                known_hosts=known,
                client_keys=[sshd.client_key_path, jump.client_key_path],
                proxy_jump=f"{TEST_USER}@127.0.0.1:{jump.port}",
            )
            async with await ssh.connect(cfg, sshd.address, TEST_USER) as conn:
                done = await conn.run("id -un", check=True)
                assert done.stdout == f"{TEST_USER}\n"
                assert jump.remote_pids("sshd")  # the forwarding session lives on the jump host
            known.write_bytes(sshd.known_hosts.read_bytes())  # the jump host's key is not trusted
            text = await reason(cfg, sshd.address)
            assert "unknown host key" in text and f"{jump.port}" in text
        finally:
            jump.stop()


class TestKeepalive:
    @pytest.mark.parametrize("interval", [1.0, 3.0, 7.0, 10.0, 15.0])
    def test_dead_link_bound(self, interval: float) -> None:
        """asyncssh drops a link after interval x (count_max + 1) of silence: within 30 s up to 15 s."""
        count = ssh.keepalive_count_max(interval)
        assert count >= 1 and interval * (count + 1) <= ssh.DEAD_LINK_BOUND
        assert ssh.dead_link_bound(interval) == interval * (count + 1) > ssh.DEAD_LINK_BOUND - interval

    def test_long_interval_still_probes(self) -> None:
        """An interval over half the bound still tolerates one unanswered keepalive: 2 x interval."""
        assert ssh.keepalive_count_max(30.0) == 1 and ssh.dead_link_bound(30.0) == 60.0


class TestReconnect:
    @pytest.mark.slow
    async def test_a_connect_pending_through_an_outage_is_answered_soon_after(self) -> None:
        """A connect begun while the far end is silent completes within SYN_PATIENCE of its return,
        not when the kernel's SYN retransmissions, ever further apart, next reach it (about 11 s
        after the first SYN: 3 s later here)."""
        link = LinkCut()
        server = Sshd(address=link.remote, netns=link.netns)
        try:
            server.start()
            link.cut()
            began = time.monotonic()
            cfg = config(server, connect_timeout="20s")
            attempt = asyncio.create_task(ssh.connect(cfg, server.address, TEST_USER))
            await wait_until(lambda: time.monotonic() - began > 8.0, within=10, what="8 s of outage")
            link.restore()
            back = time.monotonic()
            async with await attempt:
                took = time.monotonic() - back
        finally:
            server.stop()
            link.remove()
        assert took < ssh.SYN_PATIENCE + 0.5


class TestCheckConfig:
    def test_reaches_each_host(self, sshd: Sshd, tmp_path: Path) -> None:
        """check-config logs in to every gateway; a bad host key is one line naming the host's key."""
        cfg = tmp_path / "watcher.toml"
        cfg.write_text(
            f'state_dir = "{tmp_path / "state"}"\n[[sources]]\nname = "gw"\nkind = "journal"\n'
            f'hosts = ["{sshd.address}"]\nuser = "{TEST_USER}"\nport = {sshd.port}\n'
            f'known_hosts = "{sshd.known_hosts}"\nclient_keys = ["{sshd.client_key_path}"]\n{RULE}'
        )
        assert CliRunner().invoke(app, ["check-config", "--config", str(cfg)]).exit_code == 0
        cfg.write_text(cfg.read_text().replace(str(sshd.known_hosts), str(sshd.wrong_known_hosts())))
        res = CliRunner().invoke(app, ["check-config", "--config", str(cfg)])
        assert res.exit_code == 1
        assert "sources[0].hosts[0]:" in res.stderr and "HOST KEY MISMATCH" in res.stderr
