"""The benchmark corpus: deterministic, and its ground truth is what the patterns count."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from bench import mtail
from bench.classify_bench import optional_mismatches, parse_watcher
from bench.corpus import (
    ERROR_RULES,
    IGNORE_RULES,
    KINDS,
    Corpus,
    Kind,
    generate,
    single_error_pattern,
    truth_path,
)
from bench.measure import Measured

LINES = 20_000
ERRORS = {name: re.compile(p) for name, p in ERROR_RULES.items()}
IGNORES = {name: re.compile(p) for name, p in IGNORE_RULES.items()}
SINGLE = re.compile(single_error_pattern())
EVERY_PATTERN = [*ERRORS.values(), *IGNORES.values(), SINGLE]
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus") / "corpus.log"
    generate(out, LINES, seed=1)
    return out


def recount(path: Path) -> dict[str, object]:
    """The truth, re-derived from the bytes with the grep-equivalent regexes alone."""
    errors: Counter[str] = Counter()
    suppressed: Counter[str] = Counter()
    ignored: Counter[str] = Counter()
    lines = 0
    for line in path.read_text().splitlines():
        lines += 1
        rule = next((n for n, rx in ERRORS.items() if rx.search(line)), None)
        ignore = next((n for n, rx in IGNORES.items() if rx.search(line)), None)
        if ignore is not None:
            ignored[ignore] += 1
            suppressed[ignore] += rule is not None
        elif rule is not None:
            errors[rule] += 1
    return {
        "lines": lines,
        "errors": sum(errors.values()),
        "errors_by_rule": {n: errors[n] for n in ERROR_RULES},
        "suppressed_by_ignore": {n: suppressed[n] for n in IGNORE_RULES},
        "ignore_matches": {n: ignored[n] for n in IGNORE_RULES},
    }


def by_spec(line: str, ignore: mtail.Spec, errors: mtail.Spec) -> tuple[str | None, str | None]:
    """(first ignore rule, first error rule) matching `line` under an mtail program's regexes."""

    def first(spec: mtail.Spec) -> str | None:
        return next((n for n, rxs in spec.items() if any(re.search(r, line) for r in rxs)), None)

    return first(ignore), first(errors)


def first_line_and_rest(kind: Kind, seed: int) -> tuple[str, list[str]]:
    c = Corpus(seed)
    head, *rest = kind.render(c, c.tick()).splitlines()
    return head, rest


class TestDeterminism:
    def test_same_seed_same_bytes(self, corpus: Path, tmp_path: Path) -> None:
        """Generating again with the same seed writes the same corpus and the same truth."""
        again = tmp_path / "again.log"
        generate(again, LINES, seed=1)
        assert again.read_bytes() == corpus.read_bytes()
        assert truth_path(again).read_text() == truth_path(corpus).read_text()

    def test_other_seed_other_bytes(self, corpus: Path, tmp_path: Path) -> None:
        """Another seed gives another corpus of exactly the same line count."""
        other = tmp_path / "other.log"
        generate(other, LINES, seed=2)
        assert other.read_bytes() != corpus.read_bytes()
        assert other.read_bytes().count(b"\n") == LINES


class TestGroundTruth:
    def test_truth_equals_recount(self, corpus: Path) -> None:
        """Every count in the truth file is what the patterns find in the file itself."""
        truth = json.loads(truth_path(corpus).read_text())
        counted = recount(corpus)
        assert {k: truth[k] for k in counted} == counted
        assert truth["bytes"] == corpus.stat().st_size

    def test_single_pattern_counts_unsuppressed_errors(self, corpus: Path) -> None:
        """The one-ERE grep form counts exactly the truth's errors, ignore rules included."""
        truth = json.loads(truth_path(corpus).read_text())
        assert sum(1 for ln in corpus.read_text().splitlines() if SINGLE.search(ln)) == truth["errors"]

    def test_mix_is_realistic(self, corpus: Path) -> None:
        """~0.4% error events, some suppressed, mean line ~160 bytes, every rule exercised."""
        truth = json.loads(truth_path(corpus).read_text())
        assert 0.002 < truth["errors"] / LINES < 0.006
        assert truth["suppressed_by_ignore"]["planned-maintenance"] > 0
        assert 150 < truth["bytes"] / LINES < 175
        assert {k.rule for k in KINDS if k.rule} == set(ERROR_RULES)

    def test_timestamps_increase(self, corpus: Path) -> None:
        """Every timestamped line is later than the one before it."""
        stamps = [m.group(0) for ln in corpus.read_text().splitlines() if (m := STAMP.search(ln))]
        assert len(stamps) > LINES * 0.99
        assert all(a < b for a, b in itertools.pairwise(stamps))


class TestRecordShapes:
    @pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
    def test_head_matches_only_its_rule(self, kind: Kind) -> None:
        """A record's first line matches its own error and ignore rule, and no other."""
        for seed in range(30):
            head, _ = first_line_and_rest(kind, seed)
            assert [n for n, rx in ERRORS.items() if rx.search(head)] == ([kind.rule] if kind.rule else [])
            assert [n for n, rx in IGNORES.items() if rx.search(head)] == (
                [kind.ignore] if kind.ignore else []
            )
            counted = kind.rule is not None and kind.ignore is None
            assert bool(SINGLE.search(head)) == counted
            assert by_spec(head, mtail.TUNED_IGNORE, mtail.TUNED_ERRORS) == (kind.ignore, kind.rule)

    @pytest.mark.parametrize("kind", [k for k in KINDS if k.lines > 1], ids=lambda k: k.name)
    def test_continuation_lines_match_nothing(self, kind: Kind) -> None:
        """Lines after a block's head carry no timestamp and match no pattern: one block, one event."""
        for seed in range(30):
            _, rest = first_line_and_rest(kind, seed)
            assert len(rest) == kind.lines - 1
            for line in rest:
                assert not STAMP.match(line) and not line.startswith(("{", "ts="))
                assert not any(rx.search(line) for rx in EVERY_PATTERN), line

    def test_blocks_in_the_corpus_match_nothing_after_the_head(self, corpus: Path) -> None:
        """In the generated file too, every untimestamped line matches no pattern."""
        rest = [ln for ln in corpus.read_text().splitlines() if not STAMP.search(ln)]
        assert rest, "no multi-line block in the corpus"
        assert not [ln for ln in rest if any(rx.search(ln) for rx in EVERY_PATTERN)]


class TestBenchGlue:
    @pytest.mark.parametrize("tool", mtail.PROGRAMS)
    def test_mtail_programs_are_current(self, tool: str) -> None:
        """The checked-in .mtail files are what the rules render to (regenerate: --write-mtail)."""
        path, ignore, errors = mtail.PROGRAMS[tool]
        assert path.read_text() == mtail.render(ignore, errors)

    def test_tuned_mtail_rules_count_alike(self, corpus: Path) -> None:
        """On the corpus, the tuned mtail regexes classify every line as the config's do."""
        for line in corpus.read_text().splitlines():
            assert by_spec(line, mtail.TUNED_IGNORE, mtail.TUNED_ERRORS) == by_spec(
                line, mtail.VERBATIM_IGNORE, mtail.VERBATIM_ERRORS
            ), line

    @pytest.mark.parametrize(
        "stdout",
        [
            '{"errors": 3, "errors_by_rule": {"level": 2, "oom": 1}, "lines": 9}',
            'progress\n{"total": {"errors_by_rule": {"level": 2, "oom": 1}}}\n',
        ],
    )
    def test_watcher_counts_read_tolerantly(self, stdout: str) -> None:
        """classify --json counts are found at the top level or nested, total or not."""
        counts = parse_watcher(Measured(1.0, 0, [0], stdout, ""))
        assert (counts.errors, counts.errors_by_rule) == (3, {"level": 2, "oom": 1})

    def test_watcher_optional_fields_are_checked(self) -> None:
        """lines, records and ignored_by_rule, when classify --json has them, must match too."""
        truth = {"lines": 9, "records": 8, "suppressed_by_ignore": {"planned-maintenance": 2}}
        good = {"lines": 9, "records": 8, "ignored_by_rule": {"planned-maintenance": 2}}
        assert optional_mismatches(good, truth) == []
        assert optional_mismatches({}, truth) == []
        bad = {"lines": 9, "records": 7, "ignored_by_rule": {"zero-errors": 2}}
        assert [m.split()[0] for m in optional_mismatches(bad, truth)] == ["records", "ignored_by_rule"]

    def test_watcher_without_counts_is_an_error(self) -> None:
        """Output without errors_by_rule is reported with the command's last stderr line."""
        with pytest.raises(RuntimeError, match="No such command"):
            parse_watcher(Measured(1.0, 0, [2], "", "Usage: ...\nError: No such command 'classify'.\n"))
