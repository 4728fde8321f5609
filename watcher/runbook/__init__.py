"""The runbook around the verdict (DESIGN §6.1): when to escalate, what a customer may read,
and the postmortem draft. Pure: from an incident's record (watcher.facts) and a clock."""
