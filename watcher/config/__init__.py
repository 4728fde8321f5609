"""Configuration: a TOML file, overridden key by key by `WATCHER_SECTION__KEY` variables.

`load()` is the only entry point; `Settings` is what it returns. Every problem is
reported at once, one line each, naming the key as the user wrote it. One module per
section: sources, rules, notify; base holds what they share.
"""

from watcher.config.base import Format
from watcher.config.notify import NotifyConfig
from watcher.config.rules import RuleConfig
from watcher.config.settings import (
    DEFAULT_CONFIG,
    HttpConfig,
    ResolutionConfig,
    Settings,
    load,
    valid_sources,
)
from watcher.config.sources import DockerSourceConfig, FileSourceConfig, JournalSourceConfig, SourceConfig

__all__ = [
    "DEFAULT_CONFIG",
    "DockerSourceConfig",
    "FileSourceConfig",
    "Format",
    "HttpConfig",
    "JournalSourceConfig",
    "NotifyConfig",
    "ResolutionConfig",
    "RuleConfig",
    "Settings",
    "SourceConfig",
    "load",
    "valid_sources",
]
