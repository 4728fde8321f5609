"""Docker collection: a container's logs with Docker's timestamps over the range, and its inspect.

The log is read in one pass over Docker's multiplexed stream with the docker
source's own reader and decoder (follow.py, stream.py):
dockerd decodes the log file once, stdout and stderr are kept apart
(`stdout.log`, `stderr.log`, each in the `docker logs -t` shape that `watcher
replay` reads), and a line Docker split into 16 KiB pieces is one line again.
`inspect.json` is `docker inspect` with the values of `Config.Env` left out:
environments carry database passwords and tokens, and a snapshot gets attached
to tickets. The manifest carries the facts a postmortem asks first: image tag and
id, restart count, state, exit code, health.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import docker
from docker.errors import DockerException, NotFound

from watcher.snapshot.archive import Spool
from watcher.snapshot.collect import Collection, Job
from watcher.sources.docker.cursor import since_param
from watcher.sources.docker.follow import LogStream
from watcher.sources.docker.host import describe
from watcher.sources.docker.stream import STDERR, STDOUT
from watcher.times import parse_time

ENV_OMITTED = "<not collected>"
MAX_LINE = 16 << 20
"""A longer line is cut here (the shared decoder holds a long line while joining Docker's 16 KiB pieces)."""


def container_job(
    client: docker.DockerClient, source: str, container_id: str, since: float | None, until: float | None
) -> Job:
    return Job(source, "docker", lambda col: _collect(client, container_id, since, until, col))


def _collect(
    client: docker.DockerClient, cid: str, since: float | None, until: float | None, col: Collection
) -> None:
    short = cid[:12]
    try:
        info: dict[str, Any] = client.api.inspect_container(cid)
    except NotFound:
        col.lack("container", f"container {short} no longer exists")
        return
    except DockerException as exc:
        col.lack("container", f"cannot inspect container {short}: {describe(exc)}")
        return
    col.describe(**summary(info))
    with col.member(f"{short}/inspect.json") as spool:
        spool.write(json.dumps(scrubbed(info), indent=2, sort_keys=True).encode() + b"\n")
    tty = bool((info.get("Config") or {}).get("Tty"))
    try:
        with col.member(f"{short}/stdout.log") as out, col.member(f"{short}/stderr.log") as err:
            _logs(client, cid, tty, since, until, {STDOUT: out, STDERR: err})
    except DockerException as exc:
        col.lack(f"{short} logs", f"cannot read the logs of container {short}: {describe(exc)}")


def _logs(
    client: docker.DockerClient,
    cid: str,
    tty: bool,
    since: float | None,
    until: float | None,
    spools: dict[int, Spool],
) -> None:
    """One pass over the container's log (dockerd decodes it once), each line to its stream's spool."""
    ns = round(since * 1e9) if since else None
    stream = LogStream(
        client.api, cid, since=since_param(ns) if ns else None, tty=tty, follow=False, max_line_bytes=MAX_LINE
    )
    try:
        stream.open()
        # The body ends with the chunked terminator, not with the connection (keep-alive).
        while not stream.decoder.done and (block := stream.read()):
            for lines in stream.decoder.feed(block):
                spools[lines.stream].write(_upto(lines.data, until))
        for lines in stream.decoder.flush():
            spools[lines.stream].write(_upto(lines.data, until))
    finally:
        stream.close()


def _upto(data: bytes, until: float | None) -> bytes:
    """The lines of a run stamped at or before `until`; only a run that crosses it is parsed line by line.

    Docker's `until` is not used: the shared log reader has no such parameter, and lines
    written while the snapshot runs are past the range anyway.
    """
    if until is None or _stamp(data[data.rfind(b"\n", 0, len(data) - 1) + 1 :]) <= until:
        return data
    return b"".join(line for line in data.splitlines(True) if _stamp(line) <= until)


def _stamp(line: bytes) -> float:
    try:
        return parse_time(line[: line.find(b" ")].decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return 0.0  # no stamp of its own: keep it with what came before


def summary(info: Mapping[str, Any]) -> dict[str, object]:
    state = info.get("State") or {}
    config = info.get("Config") or {}
    return {
        "container": info.get("Id"),
        "container_name": str(info.get("Name", "")).lstrip("/"),
        "image": config.get("Image"),
        "image_id": info.get("Image"),
        "restart_count": info.get("RestartCount"),
        "state": state.get("Status"),
        "exit_code": state.get("ExitCode"),
        "oom_killed": state.get("OOMKilled"),
        "health": (state.get("Health") or {}).get("Status"),
        "started_at": state.get("StartedAt"),
        "finished_at": state.get("FinishedAt"),
    }


def scrubbed(info: Mapping[str, Any]) -> dict[str, Any]:
    """`info` with every environment value replaced; the variable names stay, as evidence of config."""
    out = dict(info)
    config = dict(out.get("Config") or {})
    if config.get("Env"):
        config["Env"] = [f"{item.partition('=')[0]}={ENV_OMITTED}" for item in config["Env"]]
    out["Config"] = config
    return out
