"""DockerSource against a real, private Docker engine (tests/dockerd.py).

Exactness is checked against the engine itself: what the source delivered for a
sub-source must equal, line for line and stream by stream, what `docker logs -t`
has for its containers, whatever happened in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from tests.dockerd import IMAGE, Dockerd, Reach, private_dockerd
from tests.support import wait_until
from watcher.config import DockerSourceConfig
from watcher.details import Note
from watcher.events import Chunk, Gap, SourceDown, Watermark
from watcher.sources import SourceEvent
from watcher.sources.docker.cursor import Cursor
from watcher.sources.docker.lane import time_ns
from watcher.sources.docker.source import DockerSource

pytestmark = pytest.mark.docker

COUNT = 'i=0; while [ $i -lt {n} ]; do i=$((i+1)); echo "{tag} out $i"; echo "{tag} err $i" >&2; done'
TRAP = "trap 'exit 0' TERM; "


class Reader:
    """Runs a DockerSource in a task and keeps everything it yields."""

    def __init__(self, source: DockerSource, after: str | None = None) -> None:
        self.source = source
        self.events: list[SourceEvent] = []
        self._gen = source.read(after)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for event in self._gen:
            self.events.append(event)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._gen.aclose()

    def lines(self, sub: str, stream: str | None = None) -> list[bytes]:
        out: list[bytes] = []
        for e in self.events:
            if isinstance(e, Chunk) and e.source == sub and (stream is None or e.stream == stream):
                out += e.data.split(b"\n")[:-1]
        return out

    def cursor(self, sub: str) -> str | None:
        chunks = [e for e in self.events if isinstance(e, Chunk) and e.source == sub]
        return chunks[-1].cursor if chunks else None

    def of(self, kind: type[Any], sub: str | None = None) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind) and (sub is None or e.source == sub)]


def source(engine: Dockerd, reach: Reach | None = None, **select: Any) -> DockerSource:
    """A source reading `engine`, by its socket unless `reach` says otherwise."""
    fields = (reach or Reach()).fields(engine, **select)
    cfg = DockerSourceConfig.model_validate({"name": "cloud", "kind": "docker", **fields})
    return DockerSource(cfg, max_line_bytes=2 << 20, retry=0.1, max_retry=0.5)


@contextlib.contextmanager
def client(engine: Dockerd) -> Iterator[docker.DockerClient]:
    c = engine.client()
    try:
        yield c
    finally:
        c.close()


@contextlib.asynccontextmanager
async def reading(src: DockerSource, after: str | None = None) -> AsyncIterator[Reader]:
    reader = Reader(src, after)
    try:
        await wait_until(lambda: any(isinstance(e, Watermark) for e in reader.events), what="attached")
        yield reader
    finally:
        await reader.stop()


def truth(*containers: Container, stream: str) -> list[bytes]:
    """What the engine has: `docker logs -t` of the containers, in order, for one stream."""
    out: list[bytes] = []
    for c in containers:
        data = c.logs(stdout=stream == "stdout", stderr=stream == "stderr", timestamps=True)
        out += data.split(b"\n")[:-1]
    return out


def unique() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


async def written(c: Container, n: int) -> None:
    """Wait until `c` has written `n` lines to each stream. Before its first line `exactly`
    holds at once, without yielding: the blocking calls after it would then starve the
    source, which could not see the container before it is removed."""

    async def done() -> bool:
        return all(len(truth(c, stream=s)) >= n for s in ("stdout", "stderr"))

    await wait_until(done, what=f"{n} lines of {c.name}")


async def exactly(
    reader: Reader,
    sub: str,
    *containers: Container,
    streams: tuple[str, ...] = ("stdout", "stderr"),
    before: dict[str, list[bytes]] | None = None,
) -> None:
    """Wait until the reader has exactly what the engine has (after `before`), stream by stream.

    The engine is asked again at every poll: a container may still be writing.
    """
    for stream in streams:
        prefix = (before or {}).get(stream, [])

        async def same(stream: str = stream, prefix: list[bytes] = prefix) -> bool:
            return reader.lines(sub, stream) == prefix + truth(*containers, stream=stream)

        await wait_until(same, what=f"{sub} {stream} to equal `docker logs -t`")


async def test_stdout_stderr_across_restart(docker_engine: Dockerd, reach: Reach) -> None:
    """Both streams read and kept apart; `docker restart` (same id) continues without loss or repeat."""
    name = unique()
    with client(docker_engine) as dc:
        async with reading(source(docker_engine, reach, containers=[name])) as reader:
            script = TRAP + COUNT.format(n=300, tag="run") + "; sleep 1000"
            c = dc.containers.run(IMAGE, ["sh", "-c", script], name=name, detach=True)
            try:
                await exactly(reader, f"cloud/{name}", c)
                c.restart(timeout=1)
                await wait_until(lambda: len(reader.lines(f"cloud/{name}", "stdout")) >= 600, what="2nd run")
                await exactly(reader, f"cloud/{name}", c)
                assert reader.lines(f"cloud/{name}", "stderr")[-1].endswith(b"run err 300")
            finally:
                c.remove(force=True)


async def test_stop_rm_run_same_name(docker_engine: Dockerd, reach: Reach) -> None:
    """A container removed and run again under its name continues the sub-source; a note says so."""
    name = unique()
    sub = f"cloud/{name}"
    with client(docker_engine) as dc:
        async with reading(source(docker_engine, reach, containers=[name])) as reader:
            first = dc.containers.run(
                IMAGE, ["sh", "-c", COUNT.format(n=100, tag="first")], name=name, detach=True
            )
            await written(first, 100)
            await exactly(reader, sub, first)
            old = truth(first, stream="stdout")
            first.stop(timeout=1)
            first.remove()
            second = dc.containers.run(
                IMAGE, ["sh", "-c", COUNT.format(n=100, tag="second")], name=name, detach=True
            )
            try:
                await wait_until(lambda: len(reader.lines(sub, "stdout")) >= 200, what="second run")
                assert reader.lines(sub, "stdout") == old + truth(second, stream="stdout")
                (note,) = reader.of(Note, sub)
                assert note.text == f"{sub} recreated: image {IMAGE} → {IMAGE}"
                assert not reader.of(Gap)
            finally:
                second.remove(force=True)


async def test_compose_recreate_reads_old_to_end_then_new(docker_engine: Dockerd, reach: Reach) -> None:
    """Compose-style recreate (new id, same service, new image): old to its last line, new from its first."""
    project = unique()
    with client(docker_engine) as dc:
        dc.images.get(IMAGE).tag("watcher-busybox", "v2")
        labels = {"com.docker.compose.project": project, "com.docker.compose.service": "api"}
        async with reading(source(docker_engine, reach, compose_project=project)) as reader:
            script = TRAP + COUNT.format(n=200, tag="old") + "; sleep 1000"
            old = dc.containers.run(
                IMAGE, ["sh", "-c", script], name=f"{project}-api-1", labels=labels, detach=True
            )
            new = None
            try:
                await written(old, 200)
                await exactly(reader, "cloud/api", old)
                old.stop(timeout=1)
                old.rename(f"{old.short_id}_{project}-api-1")
                new = dc.containers.run(
                    "watcher-busybox:v2",
                    ["sh", "-c", COUNT.format(n=200, tag="new")],
                    name=f"{project}-api-1",
                    labels=labels,
                    detach=True,
                )
                before = {stream: truth(old, stream=stream) for stream in ("stdout", "stderr")}
                old.remove()
                await written(new, 200)
                await exactly(reader, "cloud/api", new, before=before)
                (note,) = reader.of(Note, "cloud/api")
                assert note.text == f"cloud/api recreated: image {IMAGE} → watcher-busybox:v2"
                assert not reader.of(Gap)
            finally:
                for c in (old, new):
                    if c is not None:
                        with contextlib.suppress(docker.errors.NotFound):
                            c.remove(force=True)


async def test_removed_before_its_create_is_handled(docker_engine: Dockerd, reach: Reach) -> None:
    """The events lag behind the engine: a container created, run and removed before the source
    handles its `create` can no longer be read, so it is a gap, not silence; one removed
    without ever starting wrote nothing (no gap, no sub-source)."""
    ran, never = unique(), unique()
    with client(docker_engine) as dc:
        async with reading(source(docker_engine, reach, containers=[ran, never])) as reader:
            # Blocking calls: the source runs only once they are all done.
            dc.containers.create(IMAGE, ["true"], name=never).remove()
            c = dc.containers.run(IMAGE, ["sh", "-c", "echo lost"], name=ran, detach=True)
            c.wait()
            c.reload()
            run = c.attrs["State"]
            c.remove()
            await wait_until(lambda: bool(reader.of(Gap)), what="gap")
            (gap,) = reader.of(Gap)
            assert gap.source == f"cloud/{ran}"
            ran_from, ran_to = sorted(time_ns(run[k]) / 1e9 for k in ("StartedAt", "FinishedAt"))
            assert gap.start <= ran_from and ran_to <= gap.end  # StartedAt is set after the process began
            assert not reader.lines(f"cloud/{ran}")
            # Nothing left to read: it advances (an incident covering it can resolve).
            await wait_until(lambda: bool(reader.of(Watermark, f"cloud/{ran}")), what="watermark")
            assert not [e for e in reader.events if e.source == f"cloud/{never}"]


async def test_long_line_and_tty(docker_engine: Dockerd, reach: Reach) -> None:
    """A 1 MiB line (64 pieces of 16 KiB) is one line again, with and without a TTY."""
    names = [unique(), unique()]
    script = "head -c 1048576 /dev/zero | tr '\\0' x; echo; echo after"
    with client(docker_engine) as dc:
        async with reading(source(docker_engine, reach, containers=names)) as reader:
            made = [
                dc.containers.run(IMAGE, ["sh", "-c", script], name=names[0], detach=True),
                dc.containers.run(IMAGE, ["sh", "-c", script], name=names[1], detach=True, tty=True),
            ]
            try:
                for name in names:  # without, then with a TTY
                    sub = f"cloud/{name}"

                    async def both(sub: str = sub) -> bool:
                        return len(reader.lines(sub)) >= 2

                    await wait_until(both, what=f"{sub} lines")
                    big, after = reader.lines(sub)
                    text = big.split(b" ", 1)[1]
                    assert text.rstrip(b"\r") == b"x" * 1048576
                    assert after.split(b" ", 1)[1].rstrip(b"\r") == b"after"
                    assert {e.stream for e in reader.of(Chunk, sub) if e.data} == {"stdout"}
            finally:
                for c in made:
                    c.remove(force=True)


async def test_watermark_of_a_container_that_never_pauses(docker_engine: Dockerd, reach: Reach) -> None:
    """A container that writes without a 0.1 s pause is caught up once a line written after
    attaching is read: its watermark advances (it used to stay frozen, the incident blind)."""
    name = unique()
    sub = f"cloud/{name}"
    script = TRAP + "while true; do echo tick; sleep 0.005; done"
    with client(docker_engine) as dc:
        c = dc.containers.run(IMAGE, ["sh", "-c", script], name=name, detach=True)
        try:
            await written(c, 0)
            async with reading(source(docker_engine, reach, containers=[name])) as reader:
                attached = time.time()

                def advanced() -> bool:
                    return any(w.at > attached for w in reader.of(Watermark, sub))

                await wait_until(advanced, within=10, what=f"{sub}'s watermark past the attach")
        finally:
            c.remove(force=True)


async def test_resume_after_kill_exactly_once(docker_engine: Dockerd, reach: Reach) -> None:
    """A watcher killed at any line resumes from its cursor: 1,000 lines written meanwhile, each once."""
    name = unique()
    sub = f"cloud/{name}"
    with client(docker_engine) as dc:
        gate = "until [ -e /tmp/go ]; do sleep 0.05; done; "
        script = COUNT.format(n=500, tag="a") + "; " + gate + COUNT.format(n=500, tag="b") + "; sleep 1000"
        c = dc.containers.run(IMAGE, ["sh", "-c", TRAP + script], name=name, detach=True)
        try:
            async with reading(source(docker_engine, reach, containers=[name])) as first:
                await wait_until(lambda: len(first.lines(sub, "stdout")) >= 500, what="first half")
            cursor = first.cursor(sub)
            assert cursor is not None
            c.exec_run(["touch", "/tmp/go"])  # 1,000 more lines while nobody reads
            await wait_until(lambda: len(truth(c, stream="stdout")) == 1000, what="second half written")
            async with reading(
                source(docker_engine, reach, containers=[name]), json.dumps({sub: cursor})
            ) as second:
                for stream in ("stdout", "stderr"):

                    async def complete(s: str = stream) -> bool:
                        return first.lines(sub, s) + second.lines(sub, s) == truth(c, stream=s)

                    await wait_until(complete, what=f"{stream}: each line once")
                assert len(truth(c, stream="stdout")) == 1000
        finally:
            c.remove(force=True)


async def test_removed_while_not_watching_is_a_gap(docker_engine: Dockerd, reach: Reach) -> None:
    """A cursor whose container is gone, not read to its end: a gap from its last line to now."""
    cursor = Cursor("0" * 64, 1_700_000_000_000_000_000).dumps()
    async with reading(
        source(docker_engine, reach, containers=["nothing-here"]), json.dumps({"cloud/gone": cursor})
    ) as r:
        await wait_until(lambda: bool(r.of(Gap, "cloud/gone")), what="gap")
        (gap,) = r.of(Gap, "cloud/gone")
        assert gap.start == 1_700_000_000.0 and gap.end > gap.start
        # Nothing left to read: it keeps advancing while the engine is reachable (not blind forever).
        await wait_until(lambda: bool(r.of(Watermark, "cloud/gone")), what="watermark")


async def test_dockerd_restart(reach: Reach) -> None:
    """The engine goes away: the source and its sub-sources are down; back, nothing lost or repeated."""
    name = unique()
    sub = f"cloud/{name}"
    with private_dockerd() as engine, client(engine) as dc:
        script = "n=$(cat /n 2>/dev/null || echo 0); while true; do n=$((n+1)); echo $n > /n; echo line $n; sleep 0.01; done"  # noqa: E501
        c = dc.containers.run(
            IMAGE, ["sh", "-c", TRAP + script], name=name, detach=True, restart_policy={"Name": "always"}
        )
        async with reading(source(engine, reach, containers=[name])) as reader:
            await wait_until(lambda: len(reader.lines(sub)) >= 50, what="lines before")
            engine.stop()
            await wait_until(lambda: {sub, "cloud"} <= {e.source for e in reader.of(SourceDown)}, what="down")
            engine.start()
            before = len(reader.lines(sub))
            await wait_until(lambda: len(reader.lines(sub)) >= before + 50, what="lines after", within=40)
            with client(engine) as dc2:
                assert c.id is not None
                c2 = dc2.containers.get(c.id)
                c2.stop(timeout=1)
                await exactly(reader, sub, c2, streams=("stdout",))
