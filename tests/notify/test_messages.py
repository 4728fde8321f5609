"""messages: what a channel receives for each kind, and that log text can neither ping nor leak."""

from __future__ import annotations

import json
from typing import Any

import pytest

from watcher.config.notify import check_template
from watcher.events import HEARTBEAT
from watcher.notify.messages import BLOCK_LIMIT, SECTION_LIMIT, Renderer
from watcher.notify.news import TEST, news_from_json

AT = 1_795_788_000.0  # 2026-11-27 14:00:00Z
HOOK = "https://hooks.example/T1/B2/sekrit"


def payload(kind: str, **detail: object) -> dict[str, object]:
    return {
        "incident": "P1-x",
        "title": "Live view black",
        "kind": kind,
        "at": AT,
        "state": "verifying",
        "detail": detail,
    }


def rendered(renderer: Renderer, kind: str, payload: dict[str, object]) -> dict[str, Any]:
    """What `renderer` posts for an outbox row with this kind and payload."""
    return renderer.body(news_from_json(kind, payload))


def texts(body: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in body["blocks"]]


class TestSlack:
    def test_resolved_carries_the_evidence(self) -> None:
        """Incident id first, UTC times, window, sources, lines checked and the span proven clean."""
        body = rendered(
            Renderer(),
            "resolved",
            payload("resolved", window=900, sources=["cloud", "gw/a"], lines=12345, streak_start=AT - 900),
        )
        assert body["text"].startswith(
            "*P1-x* RESOLVED at 2026-11-27 14:00:00Z: no errors for 15m in cloud, gw/a"
        )
        evidence = texts(body)[1]
        assert "12,345 lines checked" in evidence
        assert "clean from 2026-11-27 13:45:00Z to 2026-11-27 14:00:00Z (15m)" in evidence

    def test_regression_quotes_line_source_and_rule(self) -> None:
        """REGRESSION names source and rule and quotes the offending line in a code block."""
        body = rendered(
            Renderer(),
            "regressed",
            payload("regressed", source="cloud", rule="level", message='{"level":"error"}'),
        )
        assert texts(body)[0] == "*P1-x* REGRESSION at 2026-11-27 14:00:00Z by cloud [level]"
        assert texts(body)[-1] == '```{"level":"error"}```'

    def test_a_log_line_cannot_ping_or_link_or_break_out(self) -> None:
        """<!channel>, <@U1>, links and ``` in a log line arrive escaped and inside the code block."""
        line = "<!channel> <@U123> <https://evil|click> a&b ``` out"
        body = rendered(
            Renderer(), "streak_reset", payload("streak_reset", source="<!here>", rule="r", message=line)
        )
        dumped = json.dumps(body)
        assert "<!" not in dumped and "<@" not in dumped and "<http" not in dumped
        assert (
            texts(body)[-1]
            == "```&lt;!channel&gt; &lt;@U123&gt; &lt;https://evil|click&gt; a&amp;b ''' out```"
        )
        assert "&lt;!here&gt;" in texts(body)[0]

    def test_secrets_redacted_everywhere(self) -> None:
        """Tokens in the line, the title and the webhook URL itself never reach the channel."""
        body = rendered(
            Renderer(secrets=[HOOK]),
            "regressed",
            {
                **payload(
                    "regressed", source="s", rule="r", message=f"Authorization: Bearer abcdefgh1234 {HOOK}"
                ),
                "title": "password=hunter22",
            },
        )
        dumped = json.dumps(body)
        assert "abcdefgh1234" not in dumped and "sekrit" not in dumped and "hunter22" not in dumped

    def test_long_line_truncated_to_slack_limits(self) -> None:
        """A 1 MB line (all of it escaped to 4x) fits a 3,000-character section; no entity is cut."""
        body = rendered(
            Renderer(), "regressed", payload("regressed", source="s", rule="r", message="<" * 1_000_000)
        )
        block = texts(body)[-1]
        assert len(block) <= SECTION_LIMIT and block.endswith("… [truncated]```")
        assert block[3 : -len("… [truncated]```")].replace("&lt;", "") == ""
        assert len(body["text"]) <= 3000

    def test_heartbeat_lines_and_block_limit(self) -> None:
        """One line per incident; changed ones show state and streak, others 'no change'; ≤ 50 blocks."""
        incidents = [
            {
                "incident": "P1-a",
                "state": "verifying",
                "changed": True,
                "clean_streak": 421.7,
                "window": 900,
                "streak_start": AT,
                "blind_sources": [],
            },
            {"incident": "P1-b", "state": "investigating", "changed": False},
            {"incident": "P1-c", "state": "investigating", "changed": True, "errors": 3},
        ]
        body = rendered(Renderer(), HEARTBEAT, {"at": AT, "incidents": incidents})
        lines = body["text"].splitlines()
        assert lines[0] == "Heartbeat 2026-11-27 14:00:00Z: 3 open incident(s)"
        assert lines[1:] == [
            "P1-a verifying: clean 7m2s of 15m since 2026-11-27 14:00:00Z",
            "P1-b: still investigating, no change",
            "P1-c investigating: no mitigation yet, 3 error(s) seen",
        ]
        many = [{"incident": f"P1-{'x' * 200}{i}", "state": "blind", "changed": False} for i in range(2000)]
        assert len(rendered(Renderer(), HEARTBEAT, {"at": AT, "incidents": many})["blocks"]) == BLOCK_LIMIT

    def test_template_overrides_headline_with_escaped_values(self) -> None:
        """A configured template is used as is (it may ping); the values in it are escaped."""
        r = Renderer(templates={"opened": "<!here> $incident: $title"})
        body = rendered(r, "opened", {**payload("opened", scope=["*"], window=900), "title": "a<b"})
        assert texts(body)[0] == "<!here> P1-x: a&lt;b"

    def test_test_message(self) -> None:
        assert (
            "for the oncall channel from h1"
            in rendered(Renderer(), TEST, {"at": AT, "channel": "oncall", "host": "h1"})["text"]
        )


class TestJson:
    def test_generic_document(self) -> None:
        """JSON mode: kind, incident, state, RFC 3339 time, plain text and the redacted payload."""
        body = rendered(
            Renderer("json"),
            "regressed",
            payload("regressed", source="s", rule="r", message="a<b token=xyz123"),
        )
        assert (
            body["kind"] == "regressed"
            and body["incident"] == "P1-x"
            and body["at"] == "2026-11-27T14:00:00.000Z"
        )
        assert "a<b" in body["text"] and "xyz123" not in json.dumps(body)
        assert body["payload"]["detail"]["source"] == "s"


class TestTemplates:
    @pytest.mark.parametrize(
        ("kind", "text", "error"),
        [
            ("opened", "$incident $nope", r"unknown field\(s\) nope"),
            ("opened", "cost $5", "invalid placeholder"),
            ("nope", "$incident", "no announcement kind 'nope'"),
        ],
    )
    def test_rejected_at_load(self, kind: str, text: str, error: str) -> None:
        """Unknown fields, bad placeholders and unknown kinds are config errors."""
        with pytest.raises(ValueError, match=error):
            check_template(kind, text)
