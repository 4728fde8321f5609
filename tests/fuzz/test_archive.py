"""Fuzz: archive verification. Any file handed to `snapshot verify`: a verdict, never an exception."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.budget import budget
from tests.snapshot.helpers import meta, writes
from watcher.snapshot.collect import take
from watcher.snapshot.manifest import MODES, verify

pytestmark = pytest.mark.fuzz

_TYPES = [
    tarfile.REGTYPE,
    tarfile.AREGTYPE,
    tarfile.SYMTYPE,
    tarfile.LNKTYPE,
    tarfile.DIRTYPE,
    tarfile.CONTTYPE,
]
_NAMES = st.sampled_from(
    ["top/a.log", "top/b/c.log", "top/MANIFEST.json", "other/a.log", "top/../x", "/abs", "top"]
)


@pytest.fixture(scope="module")
def snapshot() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        logs = {"stdout.log": b"2026-11-27T14:05:00Z ERROR x\n" * 200, "inspect.json": b"{}\n"}
        yield take(Path(d), [writes("cloud/api", logs)], meta()).path


@st.composite
def members(draw: st.DrawFn) -> list[tuple[str, bytes, int, bytes]]:
    """(name, type, mode, data) of a tar someone made by hand, manifest or not."""
    out = []
    for _ in range(draw(st.integers(0, 5))):
        data = draw(st.binary(max_size=40))
        out.append(
            (
                draw(_NAMES),
                draw(st.sampled_from(_TYPES)),
                draw(st.sampled_from([0o600, 0o644, 0o4755, 0o777])),
                data,
            )
        )
    if draw(st.booleans()):
        files = [
            {"path": n.partition("/")[2], "bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()}
            for n, _, _, d in out
        ]
        out.append(("top/MANIFEST.json", tarfile.REGTYPE, 0o600, json.dumps({"files": files}).encode()))
    return out


def build(path: Path, items: list[tuple[str, bytes, int, bytes]]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, mode, data in items:
            info = tarfile.TarInfo(name)
            info.type, info.mode = kind, mode
            regular = kind in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
            info.size = len(data) if regular else 0
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = "../../etc/passwd"
            tar.addfile(info, io.BytesIO(data) if regular else None)


class TestArchiveFuzz:
    @budget(700)
    @given(st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)), max_size=4), st.integers(0, 3))
    def test_a_changed_byte_anywhere_never_verifies_against_the_published_hash(
        self, snapshot: Path, flips: list[tuple[int, int]], cut: int
    ) -> None:
        """Flipped bytes, a truncated tail, appended garbage: problems listed, never an exception."""
        original = snapshot.read_bytes()
        data = bytearray(original)
        for at, value in flips:
            data[at % len(data)] = value
        if cut == 1:
            data = data[: len(data) // 2]
        elif cut == 2:
            data += b"garbage"
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "s.tar.gz"
            path.write_bytes(bytes(data))
            result = verify(path, hashlib.sha256(original).hexdigest())
        assert result.ok == (bytes(data) == original), result.problems

    @budget(600)
    @given(members())
    def test_a_hand_made_tar_is_refused_unless_it_is_a_plain_snapshot(
        self, items: list[tuple[str, bytes, int, bytes]]
    ) -> None:
        """Links, devices, odd modes, duplicates, escapes from the top directory: never verified."""
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "s.tar.gz"
            build(path, items)
            result = verify(path)
        if result.ok:
            names = [n for n, _, _, _ in items]
            assert len(set(names)) == len(names)
            assert all(k in (tarfile.REGTYPE, tarfile.AREGTYPE) and m in MODES for _, k, m, _ in items)
            assert all(n.startswith("top/") and ".." not in n for n in names)
