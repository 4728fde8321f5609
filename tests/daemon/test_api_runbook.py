"""The API routes of an incident's life beyond open/mitigate/close, against an in-memory daemon:
what each passes on, and the sentence each bad body gets."""

from __future__ import annotations

import pytest

from tests.daemon.fake_api import AUTH, Api, FakeControl, call, open_p1
from watcher.times import parse_time

P1 = "/api/v1/incidents/P1-gw"


class TestRunbookRoutes:
    async def test_open_with_named_orgs(self, api: Api, control: FakeControl) -> None:
        """`orgs` on open: trimmed, duplicates dropped, passed on in order."""
        status, _ = await open_p1(api, orgs=[" org-a", "org-b", "org-a"])
        assert status == 201
        assert control.calls == [("open", "P1-gw", "api", "org-a", "org-b")]

    @pytest.mark.parametrize("orgs", ["org-a", [""], [3], ["x" * 129], ["o"] * 51])
    async def test_bad_orgs_are_400(self, api: Api, orgs: object) -> None:
        """Anything but a short list of short org ids is refused, saying what is expected."""
        status, body = await open_p1(api, orgs=orgs)
        assert status == 400
        assert body["error"].startswith("orgs must be a list of at most 50 org ids of at most 128 characters")

    async def test_mitigation_at_a_time(self, api: Api, control: FakeControl) -> None:
        """`at` in RFC 3339 arrives as Unix seconds; without it, None (now)."""
        await open_p1(api)
        body = {"action": "rolled back sfu", "at": "2026-12-03T14:21:30Z"}
        assert (await call(api, "POST", P1 + "/mitigations", json=body, headers=AUTH))[0] == 201
        await call(api, "POST", P1 + "/mitigations", json={"action": "again"}, headers=AUTH)
        ats = [m["at"] for m in control.records["P1-gw"]["mitigations"]]
        assert ats == [parse_time("2026-12-03T14:21:30Z"), None]

    @pytest.mark.parametrize("at", [1796306700, "yesterday", "2026-13-03T14:21:30Z"])
    async def test_bad_mitigation_time_is_400(self, api: Api, at: object) -> None:
        """A time that is not RFC 3339 is refused with one sentence."""
        await open_p1(api)
        status, body = await call(
            api, "POST", P1 + "/mitigations", json={"action": "x", "at": at}, headers=AUTH
        )
        assert status == 400 and body["error"].startswith("at")

    @pytest.mark.parametrize(("path", "kind"), [("/notes", "note"), ("/hypotheses", "hypothesis")])
    async def test_note_and_hypothesis(self, api: Api, control: FakeControl, path: str, kind: str) -> None:
        """A note or a hypothesis: 201, passed on with who wrote it; an empty text is 400."""
        await open_p1(api)
        headers = {**AUTH, "X-Watcher-User": "carol@bastion"}
        status, _ = await call(api, "POST", P1 + path, json={"text": "Org A confirms"}, headers=headers)
        assert status == 201
        assert control.calls[-1] == (kind, "P1-gw", "Org A confirms", "carol@bastion")
        status, body = await call(api, "POST", P1 + path, json={"text": " "}, headers=AUTH)
        assert (status, body) == (400, {"error": "text must be a non-empty string"})

    async def test_changes_need_the_token(self, api: Api) -> None:
        """A note, a change, a reopening change the record: 401 without the token."""
        await open_p1(api)
        for method, path in (("POST", "/notes"), ("POST", "/hypotheses"), ("PATCH", ""), ("POST", "/reopen")):
            status, _ = await call(api, method, P1 + path, json={"text": "x"})
            assert status == 401, (method, path)

    async def test_change_passes_only_what_changes(self, api: Api, control: FakeControl) -> None:
        """PATCH: the fields given, None for the rest; an unknown field is 400."""
        await open_p1(api)
        status, _ = await call(api, "PATCH", P1, json={"window": "20m", "orgs": ["org-a"]}, headers=AUTH)
        assert status == 200
        assert control.calls[-1] == ("change", "P1-gw", repr((None, 1200.0, ("org-a",))), "api")
        status, body = await call(api, "PATCH", P1, json={"title": "renamed"}, headers=AUTH)
        assert status == 400 and "title" in body["error"]

    async def test_reopen(self, api: Api) -> None:
        """Reopening an open incident is 400 with the daemon's sentence; a closed one, 200."""
        await open_p1(api)
        status, body = await call(api, "POST", P1 + "/reopen", json={}, headers=AUTH)
        assert (status, body) == (
            400,
            {"error": "incident P1-gw is open; only a closed incident can be reopened"},
        )
        await call(api, "POST", P1 + "/close", headers=AUTH)
        status, body = await call(api, "POST", P1 + "/reopen", json={}, headers=AUTH)
        assert status == 200 and body["state"] == "investigating"

    async def test_list_open_or_all(self, api: Api) -> None:
        """GET /incidents: the open ones; ?all=true the closed too; anything else for all is 400."""
        await open_p1(api)
        await call(api, "POST", "/api/v1/incidents", json={"id": "P1-b", "title": "t"}, headers=AUTH)
        await call(api, "POST", "/api/v1/incidents/P1-b/close", headers=AUTH)
        _, listed = await call(api, "GET", "/api/v1/incidents")
        _, every = await call(api, "GET", "/api/v1/incidents?all=true")
        assert [i["id"] for i in listed["incidents"]] == ["P1-gw"]
        assert [i["id"] for i in every["incidents"]] == ["P1-b", "P1-gw"]
        status, body = await call(api, "GET", "/api/v1/incidents?all=yes")
        assert (status, body) == (400, {"error": "all must be true or false, not 'yes'"})

    async def test_statuspage_reads_without_the_token(self, api: Api) -> None:
        """The draft is a read: no token needed; an unknown incident is 404."""
        await open_p1(api)
        status, body = await call(api, "GET", P1 + "/statuspage")
        assert status == 200 and body["publishable"] is False
        assert (await call(api, "GET", "/api/v1/incidents/P1-none/statuspage"))[0] == 404
