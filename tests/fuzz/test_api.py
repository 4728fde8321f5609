"""Fuzz: API bodies. Whatever a local process sends, the answer is a JSON sentence, never a 500."""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.daemon.fake_api import AUTH, FakeControl, running
from tests.fuzz.budget import budget
from watcher.daemon import requests
from watcher.redact import redact

pytestmark = pytest.mark.fuzz

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["15m", "15", "0s", "P1-x", "gw/*", "1" + "0" * 400 + "s", "manual", "then"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_FIELDS = [
    "id",
    "title",
    "scope",
    "window",
    "action",
    "reason",
    "incident",
    "since",
    "until",
    "redact",
    "trigger",
]
_BODIES = _JSON | st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=6)
_MODELS = [requests.OpenIncident, requests.Mitigation, requests.Close, requests.Snapshot]


class _Server:
    """The real ApiServer with an in-memory daemon, on its own loop in a thread: one for all examples."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=self.loop.run_until_complete, args=(self._serve(),), daemon=True
        )

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with running(FakeControl()) as server:
            self.port = server.port
            self.ready.set()
            await self._stop.wait()

    def __enter__(self) -> _Server:
        self._thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self.loop.close()

    def call(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            if resp.headers.get_content_type() != "application/json":
                return resp.status, raw.decode("utf-8", "replace")  # aiohttp's parser refused the request
            return resp.status, json.loads(raw)
        finally:
            conn.close()


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    with _Server() as s:
        yield s


class TestApiFuzz:
    @budget(500)
    @given(st.sampled_from(_MODELS), _BODIES)
    @example(requests.OpenIncident, {"id": "P1-x", "title": "t", "window": math.inf})  # case 1
    @example(requests.OpenIncident, {"id": "P1-x", "title": "t", "window": math.nan})
    @example(requests.OpenIncident, {"id": "P1-x", "title": "t", "window": 10**400})
    @example(requests.OpenIncident, {"id": "P1-x", "title": "t", "window": "15"})
    @example(requests.Snapshot, {"reason": "r", "since": math.inf})
    def test_a_body_is_a_request_or_one_sentence(self, model: type[requests.Body], body: object) -> None:
        """Each request model takes any JSON value: a checked request, or ValueError with one line."""
        try:
            parsed = requests.parse(model, body)
        except ValueError as exc:
            assert str(exc) and "\n" not in str(exc)
            return
        window = getattr(parsed, "window", None)
        assert window is None or 1 <= window <= 86400

    @budget(500)
    @given(
        st.sampled_from(
            [
                ("POST", "/api/v1/incidents"),
                ("POST", "/api/v1/incidents/P1-x/mitigations"),
                ("POST", "/api/v1/incidents/P1-x/close"),
                ("POST", "/api/v1/snapshots"),
                ("GET", "/api/v1/status"),
                ("GET", "/api/v1/incidents/P1-x/timeline"),
            ]
        ),
        _BODIES.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=60),
        st.sampled_from(["", "?redact=false", "?redact=true", "?redact=%00", "?x=1&redact=no"]),
        st.sampled_from(["", "alice@bastion", "x" * 200, "a\x7fb"]),
    )
    @example(("POST", "/api/v1/incidents"), b'{"id":"P1-x","title":"t","window":NaN}', "", "")  # case 1: 500
    @example(("POST", "/api/v1/incidents"), b"[" * 20_000, "", "")
    def test_http_answers_are_json_sentences_never_500(
        self, server: _Server, route: tuple[str, str], body: bytes, query: str, user: str
    ) -> None:
        """Any body, query or user header: a JSON answer, an error with a sentence, and no 500."""
        headers = {**AUTH, "Content-Type": "application/json"}
        if user:
            headers["X-Watcher-User"] = user
        method, path = route
        status, doc = server.call(method, path + query, body if method == "POST" else None, headers)
        assert status != 500, doc
        if isinstance(doc, str):  # malformed HTTP (a control character in a header): never reached us
            assert status == 400, doc
        elif status >= 400:
            assert isinstance(doc, dict) and isinstance(doc.get("error"), str) and doc["error"]

    @budget(1500)
    @given(st.text(max_size=300))
    @example("a." * 8000)  # case 3
    @example("token." * 1300)
    def test_redaction_is_idempotent_and_quick(self, text: str) -> None:
        """What reaches a reader: redacted once is redacted for good, and never slow."""
        once = redact(text)
        assert redact(once) == once
