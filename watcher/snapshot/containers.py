"""Docker collection: a container's logs with Docker's timestamps over the range, and its inspect.

stdout and stderr are fetched as two streams (`stdout.log`, `stderr.log`, each in
the `docker logs -t` shape that `watcher replay` reads) rather than one
interleaved stream, so the evidence keeps them apart. `inspect.json` is
`docker inspect` with the values of `Config.Env` left out: environments carry
database passwords and tokens, and a snapshot gets attached to tickets. The
manifest carries the facts a postmortem asks first: image tag and id, restart
count, state, exit code, health.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException, NotFound

from watcher.client import default_user
from watcher.config import DockerSourceConfig
from watcher.snapshot.collect import Collection, Job, SnapshotResult, take
from watcher.snapshot.manifest import Meta
from watcher.sources import docker_names as names

ENV_OMITTED = "<not collected>"


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
        col.lack("container", f"cannot inspect container {short}: {exc}")
        return
    col.describe(**summary(info))
    with col.member(f"{short}/inspect.json") as spool:
        spool.write(json.dumps(scrubbed(info), indent=2, sort_keys=True).encode() + b"\n")
    for stream in ("stdout", "stderr"):
        try:
            with col.member(f"{short}/{stream}.log") as spool:
                logs = client.api.logs(
                    cid,
                    stdout=stream == "stdout",
                    stderr=stream == "stderr",
                    timestamps=True,
                    stream=True,
                    follow=False,  # the SDK follows whenever it streams unless told not to
                    since=since or None,  # the SDK refuses 0: "from the start" is no argument
                    until=until or None,
                )
                try:
                    for block in logs:
                        spool.write(block)
                finally:
                    logs.close()
        except DockerException as exc:
            col.lack(f"{short} {stream}", f"cannot read the logs of container {short}: {exc}")


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


def selected(cfg: DockerSourceConfig, containers: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(sub-source, container id) of the listed containers the source follows, named as it names them."""
    chosen = []
    for c in containers:
        name = str((c.get("Names") or [""])[0]).lstrip("/")
        labels = c.get("Labels") or {}
        if names.selected(cfg, name, labels):
            chosen.append((names.sub_source(cfg.name, name, labels), str(c["Id"])))
    return chosen


def snapshot_containers(
    client: docker.DockerClient,
    containers: Sequence[tuple[str, str]],
    *,
    state_dir: Path,
    incident: str | None,
    reason: str,
    since: float | None,
    until: float | None,
    trigger: str,
    by: str | None = None,
    created_at: float | None = None,
) -> SnapshotResult:
    """Blocking: a snapshot of `containers` ([(sub-source name, container id)]), for the daemon's triggers."""
    meta = Meta(
        created_at=created_at if created_at is not None else time.time(),
        by=by or default_user(),
        trigger=trigger,
        incident=incident,
        reason=reason,
        scope=sorted({source for source, _ in containers}),
        since=since,
        until=until,
    )
    jobs = [container_job(client, source, cid, since, until) for source, cid in containers]
    return take(state_dir, jobs, meta)
