"""Loopback fakes of Mattermost's incoming webhooks and Microsoft Teams' Workflows webhooks.

Mattermost: `{"text": ...}` (Markdown) is required unless `attachments` is set; Block
Kit `blocks` are silently dropped (its request struct has no such field), so a body
with only blocks is a 400 `web.incoming_webhook.text.app_error`; success is 200
`text/plain` `ok`. Teams Workflows: the body must be a `message` with an Adaptive Card
attachment; over 28 KB is a 413; success is 202 with an empty body (a card it cannot
show fails later, in the flow's run history, so the fake checks the shape itself).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.loopback import LoopbackServer

TEAMS_LIMIT = 28 * 1024


@dataclass
class ChatFakes(LoopbackServer):
    mattermost: list[str] = field(default_factory=list)
    """The text of each post Mattermost would show."""
    teams: list[dict[str, Any]] = field(default_factory=list)
    """Each Adaptive Card Teams accepted."""
    refused: list[tuple[str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def url(self, which: str) -> str:
        path = (
            "/hooks/3kq8f5xqxbrzbd" if which == "mattermost" else "/workflows/abc/triggers/manual?sig=s3cr3t"
        )
        return f"http://127.0.0.1:{self.port}{path}"

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/hooks/{key}", self._mattermost)
        router.add_post("/workflows/{flow}/triggers/manual", self._teams)

    async def _mattermost(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        if not body.get("text") and not body.get("attachments"):
            self.refused.append(("mattermost", 400))
            error = {
                "id": "web.incoming_webhook.text.app_error",
                "message": "No text specified",
                "status_code": 400,
            }
            return web.json_response(error, status=400)
        self.mattermost.append(body["text"])
        return web.Response(text="ok", content_type="text/plain")

    async def _teams(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if len(raw) > TEAMS_LIMIT:
            self.refused.append(("teams", 413))
            return web.Response(status=413)
        body = json.loads(raw)
        attachments = body.get("attachments") or [{}]
        card = attachments[0].get("content") or {}
        adaptive = attachments[0].get("contentType") == "application/vnd.microsoft.card.adaptive"
        if body.get("type") != "message" or not adaptive or card.get("type") != "AdaptiveCard":
            self.refused.append(("teams", 400))
            return web.Response(status=400)
        self.teams.append(card)
        return web.Response(status=202)
