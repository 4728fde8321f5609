"""Evidence snapshots: the archive writer (`archive`, `manifest`, `names`) and the collection
machinery (`collect`) the source kinds' collectors plug into. A user's request is
watcher.evidence. See docs/architecture.md, "Evidence snapshots"."""
