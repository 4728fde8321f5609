"""The snapshot format: content, hashes, names, permissions, and what verify catches."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from tests.snapshot.helpers import lacking, manifest, members, meta, rewrite, writes
from watcher.errors import SnapshotError
from watcher.snapshot.collect import Collection, Job, take
from watcher.snapshot.manifest import verify

LOG = b"".join(b"2026-11-27T14:00:%02d.000Z line %d\n" % (i % 60, i) for i in range(5000))


class TestContent:
    def test_members_and_manifest_hashes(self, tmp_path: Path) -> None:
        """Every file is stored as collected; the manifest has its sha256 and byte count."""
        result = take(tmp_path, [writes("cloud/api", {"stdout.log": LOG, "inspect.json": b"{}\n"})], meta())
        got = members(result.path)
        assert got["cloud/api/stdout.log"] == LOG
        files = {f["path"]: f for f in manifest(result.path)["files"]}
        assert files["cloud/api/stdout.log"] == {
            "path": "cloud/api/stdout.log",
            "source": "cloud/api",
            "sha256": hashlib.sha256(LOG).hexdigest(),
            "bytes": len(LOG),
        }
        assert result.sha256 == hashlib.sha256(result.path.read_bytes()).hexdigest()
        assert result.size == result.path.stat().st_size

    def test_manifest_says_who_why_and_when(self, tmp_path: Path) -> None:
        """Tool version, incident, reason, user@host, range and trigger are in the manifest."""
        doc = manifest(take(tmp_path, [writes("edge", {"a.log": b"x\n"})], meta(since=0.0, until=60.0)).path)
        assert doc["tool"]["name"] == "novavms-watcher" and doc["tool"]["version"]
        assert (doc["incident"], doc["reason"], doc["by"], doc["trigger"]) == (
            "P1-test",
            "before rollback",
            "tester@host",
            "manual",
        )
        assert doc["range"] == {"since": "1970-01-01T00:00:00.000Z", "until": "1970-01-01T00:01:00.000Z"}
        assert doc["complete"] is True and doc["missing"] == []

    def test_file_name(self, tmp_path: Path) -> None:
        """<state_dir>/snapshots/<UTC>-<incident>-<reason slug>.tar.gz; adhoc without an incident."""
        a = take(tmp_path, [writes("edge", {"a": b""})], meta(reason="Before rollback to 2026.11.26!"))
        b = take(tmp_path, [writes("edge", {"a": b""})], meta(incident=None, reason="?"))
        assert a.path.parent == tmp_path / "snapshots"
        assert a.path.name.endswith("-P1-test-before-rollback-to-2026-11-26.tar.gz")
        assert b.path.name.endswith("-adhoc-snapshot.tar.gz")

    def test_same_second_same_reason_does_not_clobber(self, tmp_path: Path) -> None:
        """Two snapshots with the same name both survive: the second gets -2."""
        m = meta()
        first = take(tmp_path, [writes("edge", {"a": b"1"})], m)
        second = take(tmp_path, [writes("edge", {"a": b"2"})], m)
        assert second.path.name == first.path.name.replace(".tar.gz", "-2.tar.gz")
        assert members(first.path)["edge/a"] == b"1"

    def test_redaction_without_newlines_stays_bounded(self, tmp_path: Path) -> None:
        """A 3 MiB stretch without a newline is redacted in pieces and stored whole, in order."""
        blob = bytes(range(256)).replace(b"\n", b"") * (3 * 4112)

        def collect(col: Collection) -> None:
            with col.member("bin.log") as spool:
                for i in range(0, len(blob), 65536):
                    spool.write(blob[i : i + 65536])

        result = take(tmp_path, [Job("edge", "file", collect)], meta(), redact=lambda line: line)
        assert members(result.path)["edge/bin.log"] == blob

    def test_redaction_across_write_boundaries(self, tmp_path: Path) -> None:
        """A secret split over two writes is still redacted, line by line; the last line keeps no newline."""

        def collect(col: Collection) -> None:
            with col.member("app.log") as spool:
                spool.write(b"ok\nlogin password=hun")
                spool.write(b"ter2 done\nlast token=abcdefgh")

        def hide(line: bytes) -> bytes:
            return line.replace(b"hunter2", b"[REDACTED]").replace(b"abcdefgh", b"[REDACTED]")

        result = take(tmp_path, [Job("edge", "file", collect)], meta(redacted=True), redact=hide)
        data = members(result.path)["edge/app.log"]
        assert data == b"ok\nlogin password=[REDACTED] done\nlast token=[REDACTED]"
        assert manifest(result.path)["redacted"] is True


class TestSafety:
    def test_permissions(self, tmp_path: Path) -> None:
        """The archive is 0600 in a 0700 directory; members are 0600 and owned by uid/gid 0."""
        result = take(tmp_path / "state", [writes("edge", {"a.log": b"x\n"})], meta())
        assert stat.S_IMODE(result.path.stat().st_mode) == 0o600
        assert stat.S_IMODE(result.path.parent.stat().st_mode) == 0o700
        with tarfile.open(result.path) as tar:
            for info in tar:
                assert (info.mode, info.uid, info.gid, info.uname, info.gname) == (0o600, 0, 0, "", "")
                assert info.isfile()

    @pytest.mark.parametrize(
        "source",
        ["../../etc", "/abs/olute", "..", "cloud/../../x", "gw/.hidden", "gw/a b;rm -rf", "cloud/\x00\n"],
    )
    def test_hostile_names_stay_inside(self, tmp_path: Path, source: str) -> None:
        """Names from containers and hosts cannot climb out, and the archive extracts with filter="data"."""
        result = take(tmp_path, [writes(source, {"../../passwd": b"x\n"})], meta())
        out = tmp_path / "out"
        with tarfile.open(result.path) as tar:
            for info in tar:
                assert not info.name.startswith("/") and ".." not in info.name.split("/")
            tar.extractall(out, filter="data")
        extracted = [p for p in out.rglob("*") if p.is_file()]
        assert len(extracted) == 2
        assert all(p.resolve().is_relative_to(out.resolve()) for p in extracted)
        assert verify(result.path).ok

    def test_failure_leaves_nothing(self, tmp_path: Path) -> None:
        """A collector bug aborts the snapshot: no archive, no temporary or spool file is left."""

        def broken(col: Collection) -> None:
            with col.member("a.log") as spool:
                spool.write(b"half")
                raise RuntimeError("collector bug")

        with pytest.raises(RuntimeError):
            take(tmp_path, [writes("edge", {"b": b"x"}), Job("cloud/api", "docker", broken)], meta())
        assert os.listdir(tmp_path / "snapshots") == []

    def test_unwritable_state_dir(self, tmp_path: Path) -> None:
        """A state_dir that is a file is a SnapshotError naming the directory."""
        (tmp_path / "state").write_text("")
        with pytest.raises(SnapshotError, match="cannot write a snapshot in"):
            take(tmp_path / "state", [writes("edge", {"a": b""})], meta())


class TestPartial:
    def test_missing_is_listed(self, tmp_path: Path) -> None:
        """What could not be collected is in the manifest and the result, with the reason."""
        jobs = [writes("edge", {"a.log": b"x\n"}), lacking("gw/gw-paris-07", "journal", "connection refused")]
        result = take(tmp_path, jobs, meta())
        assert result.missing == ["gw/gw-paris-07: journal: connection refused"]
        doc = manifest(result.path)
        assert doc["complete"] is False
        assert doc["missing"] == [
            {"source": "gw/gw-paris-07", "what": "journal", "reason": "connection refused"}
        ]
        assert verify(result.path).ok  # partial, but what it holds is intact


class TestVerify:
    @pytest.fixture
    def snap(self, tmp_path: Path) -> Path:
        return take(
            tmp_path, [writes("cloud/api", {"stdout.log": LOG, "inspect.json": b"{}\n"})], meta()
        ).path

    def test_intact(self, snap: Path) -> None:
        """An untouched snapshot verifies: every file, every byte."""
        result = verify(snap)
        assert result.ok and result.files == 2 and result.bytes == len(LOG) + 3

    def test_one_changed_byte(self, snap: Path) -> None:
        """One byte changed in one file (same size) is reported for that file."""

        def flip(name: str, data: bytes) -> bytes:
            if name != "cloud/api/stdout.log":
                return data
            return data[:1000] + bytes([data[1000] ^ 1]) + data[1001:]

        rewrite(snap, flip)
        result = verify(snap)
        assert not result.ok
        assert len(result.problems) == 1
        assert result.problems[0].startswith("cloud/api/stdout.log: sha256 ")

    def test_damaged_archive(self, snap: Path) -> None:
        """One byte changed in the compressed file itself is caught too."""
        data = bytearray(snap.read_bytes())
        data[len(data) // 2] ^= 0xFF
        snap.write_bytes(bytes(data))
        result = verify(snap)
        assert not result.ok

    def test_missing_and_extra_members(self, snap: Path) -> None:
        """A member dropped from the archive, or one slipped in, is named."""
        rewrite(snap, lambda name, data: None if name == "cloud/api/inspect.json" else data)
        with tarfile.open(snap) as tar:
            top = tar.getnames()[0].partition("/")[0]
        items = members(snap)
        items["cloud/api/extra.log"] = b"planted\n"
        with tarfile.open(snap, "w:gz") as tar:
            for name, data in items.items():
                info = tarfile.TarInfo(f"{top}/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        problems = verify(snap).problems
        assert "cloud/api/inspect.json: listed in the manifest but missing from the archive" in problems
        assert "cloud/api/extra.log: in the archive but not in the manifest" in problems

    def test_a_forged_copy_placed_first_is_refused(self, snap: Path) -> None:
        """Issue case 8: a duplicated member (the forged copy first, which `tar x` writes too) fails."""
        with tarfile.open(snap) as tar:
            real = [(info, tar.extractfile(info).read()) for info in tar]  # type: ignore[union-attr]
        forged = next(info for info, _ in real if info.name.endswith("/stdout.log"))
        with tarfile.open(snap, "w:gz") as tar:
            fake = b"all fine here\n"
            tar.addfile(replace_info(forged, size=len(fake)), io.BytesIO(fake))
            for info, data in real:
                tar.addfile(info, io.BytesIO(data))
        problems = verify(snap).problems
        twice = f"{forged.name}: in the archive twice: `tar x` would write both copies; a snapshot holds "
        assert twice + "each file once" in problems

    @pytest.mark.parametrize(
        ("mode", "kind", "problem"),
        [
            (0o4755, tarfile.REGTYPE, "setuid/setgid mode 4755: a snapshot's files are never executable"),
            (0o2600, tarfile.REGTYPE, "setuid/setgid mode 2600: a snapshot's files are never executable"),
            (0o755, tarfile.REGTYPE, "mode 0755: a snapshot's files are 0600 (or 0644)"),
            (0o666, tarfile.REGTYPE, "mode 0666: a snapshot's files are 0600 (or 0644)"),
            (0o600, tarfile.CONTTYPE, "not a regular file (a snapshot holds only files)"),
            (0o600, tarfile.SYMTYPE, "not a regular file (a snapshot holds only files)"),
        ],
    )
    def test_modes_and_kinds_the_writer_never_makes_are_refused(
        self, snap: Path, mode: int, kind: bytes, problem: str
    ) -> None:
        """Issue case 8: a member changed to setuid 4755 (uid 1001) verified; now its mode is refused."""
        with tarfile.open(snap) as tar:
            real = [(info, tar.extractfile(info).read()) for info in tar]  # type: ignore[union-attr]
        with tarfile.open(snap, "w:gz") as tar:
            for info, data in real:
                if info.name.endswith("/stdout.log"):
                    data = b"" if kind == tarfile.SYMTYPE else data
                    info = replace_info(info, mode=mode, type=kind, uid=1001, size=len(data))
                tar.addfile(info, io.BytesIO(data))
        name = next(info.name for info, _ in real if info.name.endswith("/stdout.log"))
        assert f"{name}: {problem}" in verify(snap).problems

    def test_the_published_sha256_is_checked(self, snap: Path) -> None:
        """With the hash printed when it was taken: the archive itself must be that file."""
        result = verify(snap)
        assert verify(snap, result.sha256).ok and verify(snap, result.sha256.upper()).ok
        other = verify(snap, "0" * 64)
        assert other.problems == [f"{snap}: sha256 {result.sha256} is not the published {'0' * 64}"]

    def test_not_a_snapshot(self, tmp_path: Path) -> None:
        """A file that is not a snapshot, or not there, fails with a reason."""
        (tmp_path / "x.tar.gz").write_bytes(b"hello")
        assert "damaged or not a snapshot" in verify(tmp_path / "x.tar.gz").problems[0]
        assert verify(tmp_path / "nope.tar.gz").problems == [f"{tmp_path / 'nope.tar.gz'}: no such file"]


class TestLeftovers:
    def test_a_killed_snapshots_files_are_swept_after_a_day(self, tmp_path: Path) -> None:
        """Spools and partial archives a day old are deleted by the next snapshot; fresh ones are not."""
        snaps = tmp_path / "snapshots"
        snaps.mkdir()
        old, fresh = snaps / ".spool-abc", snaps / ".20261127T000000Z-adhoc-x.xyz.part"
        old.write_bytes(b"x")
        fresh.write_bytes(b"y")
        os.utime(old, (1e9, 1e9))
        take(tmp_path, [writes("edge", {"a": b""})], meta())
        assert not old.exists() and fresh.exists()


def replace_info(info: tarfile.TarInfo, **changes: object) -> tarfile.TarInfo:
    """A copy of a tar header with some fields changed."""
    copy = tarfile.TarInfo(info.name)
    for field in ("size", "mtime", "mode", "type", "uid", "gid", "uname", "gname"):
        setattr(copy, field, changes.get(field, getattr(info, field)))
    return copy
