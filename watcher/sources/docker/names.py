"""Which containers a docker source watches, and the sub-source name each one reads into.

A docker source `cloud` yields per-container sub-sources named like the journal's
per-host ones: `cloud/<compose service>` (`cloud/<service>-<n>` for replica n > 1),
else `cloud/<container name>`. A recreated container (new id, same service) keeps
the name, so incidents scoped `cloud/api` or `cloud/*` follow it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from watcher.config import DockerSourceConfig
from watcher.names import subsource

PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
NUMBER = "com.docker.compose.container-number"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def sub_source(source: str, container_name: str, labels: Mapping[str, str]) -> str:
    """`cloud/api`, `cloud/api-2` or `cloud/<name>`; names are kept to [A-Za-z0-9_.-]."""
    service = labels.get(SERVICE)
    if service:
        number = labels.get(NUMBER, "1")
        leaf = service if number in ("", "1") else f"{service}-{number}"
    else:
        leaf = container_name.lstrip("/")
    return subsource(source, _UNSAFE.sub("_", leaf) or "_")


def selected(cfg: DockerSourceConfig, container_name: str, labels: Mapping[str, str]) -> bool:
    """Whether the config's selection matches: every selector given must hold.

    `containers` lists container names or compose service names; `labels` must all be
    present with those values (an empty value means any value).
    """
    if cfg.compose_project is not None and labels.get(PROJECT) != cfg.compose_project:
        return False
    if cfg.containers and not (
        container_name.lstrip("/") in cfg.containers or labels.get(SERVICE) in cfg.containers
    ):
        return False
    return all(labels.get(k) == v or (v == "" and k in labels) for k, v in cfg.labels.items())


def one_shot(cfg: DockerSourceConfig, sub: str) -> bool:
    """Whether sub-source `sub` (`cloud/migrate`, `cloud/migrate-2`) is one the config names in
    `one_shot`: a service or container that runs once and exits."""
    leaf = sub.partition("/")[2]
    for name in cfg.one_shot:
        safe = _UNSAFE.sub("_", name.lstrip("/")) or "_"
        if leaf == safe or re.fullmatch(re.escape(safe) + r"-[0-9]+", leaf):
            return True
    return False


def list_filters(cfg: DockerSourceConfig) -> dict[str, list[str]]:
    """Server-side pre-filter for listing and events; `selected` has the final word."""
    labels = [f"{k}={v}" if v else k for k, v in cfg.labels.items()]
    if cfg.compose_project is not None:
        labels.append(f"{PROJECT}={cfg.compose_project}")
    return {"label": labels} if labels else {}


def selected_containers(
    cfg: DockerSourceConfig, listed: Sequence[Mapping[str, Any]]
) -> list[tuple[str, str]]:
    """(sub-source, container id) of the containers in a listing the source follows."""
    chosen = []
    for c in listed:
        name = str((c.get("Names") or [""])[0]).lstrip("/")
        labels = c.get("Labels") or {}
        if selected(cfg, name, labels):
            chosen.append((sub_source(cfg.name, name, labels), str(c["Id"])))
    return chosen
