"""The state store's schema: SQLite migrations, applied in order, each in one transaction."""

from __future__ import annotations

DB_NAME = "watcher.db"

# Append only: entry i moves the schema from version i to i+1 in one transaction.
# Never edit a released entry; add a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE incidents (id TEXT PRIMARY KEY, title TEXT NOT NULL, scope TEXT NOT NULL,
            window_s REAL NOT NULL, opened_at REAL NOT NULL, opened_by TEXT NOT NULL,
            closed_at REAL, close_reason TEXT, closed_by TEXT)""",
        """CREATE TABLE mitigations (seq INTEGER PRIMARY KEY, incident TEXT NOT NULL REFERENCES
            incidents(id), at REAL NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL)""",
        "CREATE INDEX mitigations_by_incident ON mitigations(incident, at, seq)",
        # AUTOINCREMENT: ids are never reused, so insertion order stays total even if
        # old rows are pruned one day.
        """CREATE TABLE timeline (seq INTEGER PRIMARY KEY AUTOINCREMENT, incident TEXT NOT NULL
            REFERENCES incidents(id), at REAL NOT NULL, kind TEXT NOT NULL, state TEXT,
            detail TEXT NOT NULL, recorded_at REAL NOT NULL)""",
        "CREATE INDEX timeline_by_incident ON timeline(incident, at, seq)",
        """CREATE TABLE resume_points (source TEXT PRIMARY KEY, cursor TEXT, watermark REAL,
            updated_at REAL NOT NULL)""",
        """CREATE TABLE engine_state (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL,
            saved_at REAL NOT NULL)""",
        """CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL,
            kind TEXT NOT NULL, payload TEXT NOT NULL, created_at REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL,
            last_error TEXT, done_at REAL)""",
        "CREATE INDEX outbox_pending ON outbox(channel, id) WHERE status = 'pending'",
    ),
    (
        # Schema 1 daemons queued a row per transition but had no sender: once a webhook is
        # configured those would all be posted, hours late. They are history, not news.
        "DELETE FROM outbox WHERE status = 'pending'",
    ),
    (
        # Streak resets held back by the rate limit, one summary per channel and incident:
        # kept in memory only, they were lost on a kill and dropped on a new mitigation.
        """CREATE TABLE IF NOT EXISTS held_announcements (channel TEXT NOT NULL, incident TEXT NOT NULL,
            kind TEXT NOT NULL, payload TEXT NOT NULL, due_at REAL NOT NULL,
            PRIMARY KEY (channel, incident))""",
    ),
    (
        # The Slack app's status message of each incident, per outbox lane: the message
        # every later event edits and threads under. No foreign key: pruning closed
        # incidents must not be blocked by it.
        """CREATE TABLE IF NOT EXISTS slack_messages (lane TEXT NOT NULL, incident TEXT NOT NULL,
            channel TEXT NOT NULL, ts TEXT NOT NULL, posted_at REAL NOT NULL,
            PRIMARY KEY (lane, incident))""",
        # Every Alertmanager alert state seen, so a retried or repeated notification neither
        # opens a second incident nor repeats a timeline entry.
        """CREATE TABLE IF NOT EXISTS alerts (group_key TEXT NOT NULL, fingerprint TEXT NOT NULL,
            starts_at REAL NOT NULL, status TEXT NOT NULL, incident TEXT NOT NULL,
            received_at REAL NOT NULL, PRIMARY KEY (group_key, fingerprint, starts_at, status))""",
        "CREATE INDEX IF NOT EXISTS alerts_by_group ON alerts(group_key, received_at)",
    ),
    (
        # The orgs an incident names (`--org`), and whom its errors hit: the totals, and per
        # org its first and last error (at most the configured cap of orgs per incident).
        # No foreign keys: pruning closed incidents deletes these rows itself. Tables, not
        # columns: every statement here can run again harmlessly.
        """CREATE TABLE IF NOT EXISTS incident_orgs (incident TEXT PRIMARY KEY,
            orgs TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS impact (incident TEXT PRIMARY KEY, records INTEGER NOT NULL,
            first_at REAL, last_at REAL, untracked INTEGER NOT NULL, confirmed_at REAL)""",
        """CREATE TABLE IF NOT EXISTS impact_orgs (incident TEXT NOT NULL, org TEXT NOT NULL,
            first_at REAL NOT NULL, last_at REAL NOT NULL, records INTEGER NOT NULL,
            PRIMARY KEY (incident, org))""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
