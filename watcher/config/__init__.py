"""Configuration: a TOML file, overridden key by key by `WATCHER_SECTION__KEY` variables.

`load()` is the only entry point; `Settings` is what it returns. Every problem is
reported at once, one line each, naming the key as the user wrote it. One module per
section: sources, rules, notify, runbook; base holds what they share; endpoint reads the two
keys a client of the daemon needs without the rest.

The names below are imported on first use: pydantic takes longer to import than a
CLI command that only talks to the daemon may take to run (watcher.config.endpoint).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watcher.config.base import Format
    from watcher.config.notify import NotifyConfig
    from watcher.config.rules import RuleConfig, RuleSettings, load_rules
    from watcher.config.runbook import RunbookConfig
    from watcher.config.settings import (
        DEFAULT_CONFIG,
        HttpConfig,
        ResolutionConfig,
        RetentionConfig,
        Settings,
        load,
        valid_sources,
    )
    from watcher.config.sources import (
        DockerSourceConfig,
        FileSourceConfig,
        JournalSourceConfig,
        SourceConfig,
        SshLogin,
        SshSettings,
    )

_HOME = {
    "Format": "base",
    "NotifyConfig": "notify",
    "RuleConfig": "rules",
    "RuleSettings": "rules",
    "load_rules": "rules",
    "RunbookConfig": "runbook",
    "DEFAULT_CONFIG": "settings",
    "HttpConfig": "settings",
    "ResolutionConfig": "settings",
    "RetentionConfig": "settings",
    "Settings": "settings",
    "load": "settings",
    "valid_sources": "settings",
    "DockerSourceConfig": "sources",
    "FileSourceConfig": "sources",
    "JournalSourceConfig": "sources",
    "SourceConfig": "sources",
    "SshLogin": "sources",
    "SshSettings": "sources",
}

__all__ = [
    "DEFAULT_CONFIG",
    "DockerSourceConfig",
    "FileSourceConfig",
    "Format",
    "HttpConfig",
    "JournalSourceConfig",
    "NotifyConfig",
    "ResolutionConfig",
    "RetentionConfig",
    "RuleConfig",
    "RuleSettings",
    "RunbookConfig",
    "Settings",
    "SourceConfig",
    "SshLogin",
    "SshSettings",
    "load",
    "load_rules",
    "valid_sources",
]


def __getattr__(name: str) -> object:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
