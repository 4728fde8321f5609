"""Microsoft Teams through a Workflows webhook ("When a Teams webhook request is received"):
one Adaptive Card in the message envelope the Workflows templates read.

Workflows answers 202 with an empty body and reports a card it cannot show only in the
flow's run history, so the card keeps to what every Teams client renders: TextBlocks
and nothing interactive. The envelope is kept well under the documented 28 KB limit.
"""

from __future__ import annotations

import re

from watcher.events import Kind

CARD_LIMIT = 20_000
"""Characters of card text at most: the whole envelope must stay under 28 KB."""
_EMPHASIS = re.compile(r"(?<![*\w])\*([^*\n]+)\*(?![*\w])")

_COLORS = {
    str(Kind.RESOLVED): "Good",
    str(Kind.REGRESSED): "Attention",
    str(Kind.STREAK_RESET): "Warning",
    str(Kind.BLIND): "Attention",
    str(Kind.GAP): "Warning",
}


def card(kind: str, headline: str, details: list[str], code: str | None) -> dict[str, object]:
    """The POST body: `{"type": "message", "attachments": [an Adaptive Card]}`."""
    # Slack's *bold* (the default templates use it) is Teams' italics: the headline is bold anyway.
    blocks: list[dict[str, object]] = [
        {
            "type": "TextBlock",
            "text": _cut(_EMPHASIS.sub(r"\1", headline), 1000),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": _COLORS.get(kind, "Default"),
        }
    ]
    budget = CARD_LIMIT
    for line in details:
        text = _cut(line, max(budget, 0))
        budget -= len(text)
        if text:
            blocks.append({"type": "TextBlock", "text": text, "wrap": True, "spacing": "Small"})
    if code is not None and budget > 0:
        blocks.append(
            {"type": "TextBlock", "text": _cut(code, budget), "wrap": True, "fontType": "Monospace"}
        )
    content = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": blocks,
        "msteams": {"width": "Full"},
    }
    attachment = {
        "contentType": "application/vnd.microsoft.card.adaptive",
        "contentUrl": None,
        "content": content,
    }
    return {"type": "message", "attachments": [attachment]}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"
