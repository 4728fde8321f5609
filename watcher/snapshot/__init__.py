"""Evidence snapshots: one archive writer (`archive`, `manifest`), the collection machinery
(`collect`) the source kinds' collectors plug into, and `watcher snapshot` as a request
(`command`, `plan`). See docs/architecture.md, "Evidence snapshots"."""
