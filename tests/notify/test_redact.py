"""redact: credentials never survive, ordinary log text does, and redacting twice changes nothing."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from watcher.redact import MARK, redact

SECRET = st.text(
    alphabet="abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=10, max_size=40
)


class TestRedact:
    @pytest.mark.parametrize(
        ("text", "want"),
        [
            ("Authorization: Bearer abc.def-123456", f"Authorization: {MARK}"),
            ("proxy-authorization: Basic dXNlcjpwYXNz", f"proxy-authorization: {MARK}"),
            ("Cookie: session=s3cr3t; theme=dark", f"Cookie: {MARK}"),
            ("Set-Cookie: sid=31d4d96e407aad42; Path=/", f"Set-Cookie: {MARK}"),
            ("GET / bearer eyJhbGciOiJIUzI1NiJ9x", f"GET / bearer {MARK}"),
            ("login password=hunter22 user=bob", f"login password={MARK} user=bob"),
            ("db_password: s3cret!x next", f"db_password: {MARK} next"),
            ('{"password": "p@ss word", "user": "bob"}', f'{{"password": "{MARK}", "user": "bob"}}'),
            ("{'api_key': 'k-123456'}", f"{{'api_key': '{MARK}'}}"),
            ("GET /cb?token=abc123&x=1", f"GET /cb?token={MARK}&x=1"),
            ("client_secret=abcdef", f"client_secret={MARK}"),
            ("postgres://app:hunter2@db:5432/x", f"postgres://app:{MARK}@db:5432/x"),
            ("redis://:pa55w0rd@cache:6379", f"redis://:{MARK}@cache:6379"),
            (
                "jwt eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
                f"jwt {MARK}",
            ),
            ("slack xoxb-1234567890-abcdefghij ok", f"slack {MARK} ok"),
            ("gh ghp_16C7e42F292c6912E7710c838347Ae178B4a!", f"gh {MARK}!"),
            ("aws AKIAIOSFODNN7EXAMPLE key", f"aws {MARK} key"),
            (
                "https://hooks.slack.com/services/T000/B000/XXXX done",
                f"https://hooks.slack.com/services/{MARK} done",
            ),
        ],
    )
    def test_known_shapes(self, text: str, want: str) -> None:
        """Each credential shape of the issue is replaced, and only the credential."""
        assert redact(text) == want

    def test_private_key_block_even_when_cut_off(self) -> None:
        """A whole key block goes; a block truncated before its END line is hidden to the end."""
        block = (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n-----END OPENSSH PRIVATE KEY-----"
        )
        assert redact(f"key:\n{block}\nafter") == f"key:\n{MARK}\nafter"
        assert redact("x -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA") == f"x {MARK}"

    def test_extra_literals(self) -> None:
        """The webhook URLs passed in are hidden wherever they appear; tiny literals are ignored."""
        url = "https://chat.example/hook/abc"
        assert redact(f"posting to {url} failed", [url, "", "ab"]) == f"posting to {MARK} failed"

    @pytest.mark.parametrize(
        "text",
        [
            '{"level":"error","msg":"db down","status":503}',
            "2026-11-27T14:00:00Z camera 4 reconnect failed errors=3",
            "Traceback (most recent call last):",
            "GET /api/v1/streams?limit=10 200",
        ],
    )
    def test_ordinary_lines_untouched(self, text: str) -> None:
        """Log lines without credentials come through unchanged."""
        assert redact(text) == text

    @given(
        SECRET,
        st.sampled_from(
            [
                "password={}",
                "token: {}",
                '"secret": "{}"',
                "Authorization: Bearer {}",
                "https://u:{}@h/",
                "Cookie: s={}",
                "api-key={}",
            ]
        ),
    )
    def test_planted_secret_never_survives(self, secret: str, shape: str) -> None:
        """Whatever the secret, in any supported shape and position, it is gone."""
        assume(secret not in f"before {shape} after")  # `Authorizat` is in the header's own name
        text = f"before {shape.format(secret)} after"
        assert secret not in redact(text)

    @given(st.text(max_size=200))
    def test_idempotent(self, text: str) -> None:
        """Redacting redacted text changes nothing."""
        once = redact(text)
        assert redact(once) == once
