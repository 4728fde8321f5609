"""Safe names: archive member paths from source, container and host names, and the file name.

Names come from places an attacker may influence (a container name, a compose
service label, a host list), so every path component is reduced to
`[A-Za-z0-9._-]`, may not start with a dot (no `..`, no hidden files) and is
bounded in length; the result is always relative and never climbs out of the
archive's top directory.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_COMPONENT = 80
MAX_SLUG = 40


def component(text: str) -> str:
    """One path component: unsafe runs become `_`, leading dots are dropped; never empty."""
    safe = _UNSAFE.sub("_", text).lstrip(".")[:MAX_COMPONENT]
    return safe or "_"


def member_path(source: str, filename: str) -> str:
    """`cloud/api` + `3f2a9c1b7d0e/stdout.log` -> `cloud/api/3f2a9c1b7d0e/stdout.log`, each part made safe."""
    return "/".join(component(p) for p in f"{source}/{filename}".split("/") if p)


def slug(text: str) -> str:
    """`before rollback to 2026.11.26` -> `before-rollback-to-2026-11-26`, for file names."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:MAX_SLUG].rstrip("-") or "snapshot"


def stem(at: float, incident: str | None, reason: str) -> str:
    """`<UTC>-<incident or adhoc>-<reason-slug>`, the snapshot's file name without `.tar.gz`."""
    when = datetime.fromtimestamp(at, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{when}-{component(incident) if incident else 'adhoc'}-{slug(reason)}"
