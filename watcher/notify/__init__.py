"""Announcements: what goes out when (`announce`), how it reads (`messages`), and the durable
delivery through the outbox (`sender`, `webhook`, `channels`)."""
