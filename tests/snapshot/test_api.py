"""POST /api/v1/snapshots (`watcher snapshot --via-daemon`): validation before the daemon is asked."""

from __future__ import annotations

from typing import Any

import pytest

from tests.daemon.fake_api import AUTH, Api, FakeControl, call

PATH = "/api/v1/snapshots"


async def test_forwarded(api: Api, control: FakeControl) -> None:
    """A valid request reaches the daemon with who asked; the answer is the snapshot result (201)."""
    await call(api, "POST", "/api/v1/incidents", json={"id": "P1", "title": "t"}, headers=AUTH)
    body = {"reason": "before rollback", "incident": "P1", "scope": ["cloud/*"], "since": 1.0, "until": 2.0}
    status, answer = await call(api, "POST", PATH, json=body, headers={**AUTH, "X-Watcher-User": "al@b"})
    assert status == 201 and answer["sha256"] == "0" * 64
    assert control.calls[-1] == ("snapshot", "P1", "before rollback", "cloud/*", "manual", "False", "al@b")


async def test_needs_the_token(api: Api, control: FakeControl) -> None:
    """Like every POST, a snapshot needs the API token."""
    status, _ = await call(api, "POST", PATH, json={"reason": "r"})
    assert status == 401 and control.calls == []


async def test_unknown_incident_is_404(api: Api) -> None:
    """An incident the daemon does not know is 404."""
    status, answer = await call(api, "POST", PATH, json={"reason": "r", "incident": "P9"}, headers=AUTH)
    assert status == 404 and "P9" in answer["error"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "missing field 'reason'"),
        ({"reason": " "}, "reason must be"),
        ({"reason": "r", "incident": "../x"}, "incident must be"),
        ({"reason": "r", "scope": "cloud/*"}, "scope must be a list"),
        ({"reason": "r", "since": "2h"}, "since must be Unix seconds"),
        ({"reason": "r", "until": -1}, "until must be Unix seconds"),
        ({"reason": "r", "redact": "yes"}, "redact must be true or false"),
        ({"reason": "r", "trigger": "container_stop"}, 'trigger must be "manual" or "then"'),
        ({"reason": "r", "path": "/etc"}, "unknown field 'path'"),
    ],
)
async def test_bad_input_is_400(api: Api, control: FakeControl, body: dict[str, Any], needle: str) -> None:
    """Malformed fields are 400 with a sentence naming the field; the daemon is not asked."""
    status, answer = await call(api, "POST", PATH, json=body, headers=AUTH)
    assert status == 400 and needle in answer["error"]
    assert [c for c in control.calls if c[0] == "snapshot"] == []
