"""The Slack app's status messages: per outbox lane and incident, the message (channel ID and
`ts`) that later events edit with `chat.update` and reply to in its thread."""

from __future__ import annotations

from dataclasses import dataclass

from watcher.store.db import Database


@dataclass(frozen=True, slots=True)
class SlackMessage:
    channel: str
    """The channel ID Slack answered with: `chat.update` needs the ID, not a name."""
    ts: str
    """Kept as Slack's string: a float would lose digits."""


class SlackMessages:
    """The slack_messages table of a store: use the store's `slack_messages`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, lane: str, incident: str) -> SlackMessage | None:
        rows = self._db.query(
            "SELECT channel, ts FROM slack_messages WHERE lane = ? AND incident = ?", (lane, incident)
        )
        return SlackMessage(rows[0][0], rows[0][1]) if rows else None

    def put(self, lane: str, incident: str, message: SlackMessage, at: float) -> None:
        """Remember `message` as the incident's status message on `lane`, replacing a lost one."""
        with self._db.transaction():
            self._db.execute(
                "INSERT INTO slack_messages (lane, incident, channel, ts, posted_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (lane, incident) DO UPDATE SET channel = excluded.channel,"
                " ts = excluded.ts, posted_at = excluded.posted_at",
                (lane, incident, message.channel, message.ts, at),
            )
