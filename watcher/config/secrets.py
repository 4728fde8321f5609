"""Secrets given inline or, better, in a file: webhook URLs, the Slack token, PagerDuty keys.

A secret is a `SecretStr`, so it never shows in a repr, a log line or an error message;
these functions never quote it back either.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr


def secret_or_file(key: str, value: SecretStr | None, path: Path | None) -> SecretStr | None:
    """The secret `key` given inline, or read (stripped) from `path`; ValueError naming the key
    when both are given or the file cannot be read."""
    if path is None:
        return value
    if value is not None:
        raise ValueError(f"set {key} or {key}_file, not both")
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise ValueError(f"{key}_file: cannot read {path}: {exc.strerror}") from None
    if not text:
        raise ValueError(f"{key}_file: {path} is empty")
    return SecretStr(text)
