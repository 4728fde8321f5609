"""Rule regexes in linear time (issue case 4): what is refused, what RE2 reads differently, how fast."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.patterns import compile_linear, translate


class TestRefused:
    @pytest.mark.parametrize(
        ("pattern", "reason"),
        [
            (r"(ab)\1", "backreferences such as \\1 need backtracking"),
            (r"(?P<x>a)(?P=x)", "backreferences such as (?P=name) need backtracking"),
            (r"boom(?=!)", "lookahead (?=...) needs backtracking"),
            (r"boom(?!!)", "negative lookahead (?!...) needs backtracking"),
            (r"(?<!x)boom", "lookbehind (?<=...) / (?<!...) needs backtracking"),
            (r"(?>a+)b", "atomic groups (?>...) are a backtracking construct"),
            (r"a++b", "possessive quantifiers such as a++ are a backtracking construct"),
            (r"(a)?(?(1)b|c)", "conditionals (?(1)...) need backtracking"),
            (r"(?x) a b", "verbose mode (?x) is not supported; write the pattern without spaces"),
            (r"a(?#why)", "comments (?#...) are not supported; remove them"),
            (r"(?a)\w", "only the flags i, m and s are supported"),
            (r"a{1001}", "a repetition may count at most 1000"),
            (r"\N{EM DASH}", "invalid escape sequence: \\N (not supported here)"),
        ],
    )
    def test_what_needs_backtracking_is_refused_with_the_reason(self, pattern: str, reason: str) -> None:
        """Each construct a linear engine cannot run says which one it is."""
        with pytest.raises(ValueError, match="cannot be matched in linear time: ") as exc:
            compile_linear(pattern)
        assert str(exc.value).endswith(reason)

    def test_a_pattern_python_cannot_read_is_invalid(self) -> None:
        """The syntax is Python's: what `re` cannot parse is not a regex here either."""
        with pytest.raises(ValueError, match="invalid regular expression: missing \\)"):
            compile_linear("(a")
        with pytest.raises(ValueError, match="invalid regular expression: bad escape"):
            compile_linear(r"\pL")


class TestDialect:
    @pytest.mark.parametrize(
        ("python", "re2"),
        [
            (r"ok\Z", r"ok\z"),
            (r"[\Z]", r"[\Z]"),
            (r"x{,3}y{,}", r"x{0,3}y{0,}"),
            (r"[{,3}]", r"[{,3}]"),
            (r"caf\u00e9 \U0001F600", r"caf\x{00e9} \x{0001F600}"),
            (r"\\u00e9", r"\\u00e9"),
            (r"[]\u00e9]", r"[]\x{00e9}]"),
        ],
    )
    def test_python_spellings_are_translated(self, python: str, re2: str) -> None:
        """`\\Z`, `{,n}` and `\\uXXXX` mean in RE2 what they mean in Python; escapes and classes stay."""
        assert translate(python) == re2

    def test_what_reads_differently_is_as_documented(self) -> None:
        """ASCII classes, and `$` only at the very end (README, "Rules")."""
        assert not compile_linear(r"^\w+$").search("h\u00e9llo")
        assert compile_linear(r"(?i)caf\u00c9").search("un caf\u00e9")
        assert compile_linear(r"ok$").search("all ok") and not compile_linear(r"ok$").search("ok\n")
        assert compile_linear(r"^a{,2}b\Z").search("aab") and compile_linear(r"\u00e9").search("\u00e9")


_ATOMS = st.sampled_from(["a", "b", "a|b", "a|aa", ".", r"\w", r"\s", "[ab]", "x?", ""])


@st.composite
def nested(draw: st.DrawFn, depth: int = 3) -> str:
    """Nested quantified groups: the shapes that make a backtracking engine exponential."""
    if depth == 0:
        return draw(_ATOMS)
    inner = "".join(draw(st.lists(nested(depth - 1), min_size=1, max_size=3)))
    return f"({inner}){draw(st.sampled_from(['*', '+', '?', '{1,3}', '']))}"


class TestLinearTime:
    def test_the_issues_pattern_on_34_characters_and_on_a_megabyte(self) -> None:
        """`(a+)+$` froze the daemon on 34 characters; here a megabyte takes milliseconds."""
        rx = compile_linear("(a+)+$")
        started = time.perf_counter()
        assert not rx.search("a" * 34 + "!")
        assert not rx.search("a" * 1_000_000 + "!")
        assert time.perf_counter() - started < 2.0

    @settings(max_examples=200, deadline=None)
    @given(pattern=nested(), suffix=st.sampled_from(["!", "c", "\n", "ab!"]), n=st.sampled_from([30, 3000]))
    def test_no_pattern_takes_more_than_linear_time(self, pattern: str, suffix: str, n: int) -> None:
        """Whatever the nesting, 3,000 near-matching characters take milliseconds, not hours."""
        rx = compile_linear(pattern + "$")
        started = time.perf_counter()
        rx.search("ab" * n + suffix)
        rx.search("a" * n + suffix)
        assert time.perf_counter() - started < 1.0
