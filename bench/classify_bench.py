"""Throughput and memory of `watcher classify` against GNU grep and Google's mtail.

`python bench/classify_bench.py [--lines 2000000] [--corpus bench/out/corpus.log]`
generates the corpus if needed, reads it once so every tool runs on a warm page
cache, then runs each tool on the same file and checks its error count against the
corpus's ground truth. Prints a Markdown table and writes bench/out/classify.json;
exits 1 if any tool that ran disagrees with the truth. MB means 10^6 bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Run as `python bench/classify_bench.py`, only bench/ is on sys.path; the repo root
# makes `bench.corpus` importable the same way the tests import it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import mtail
from bench.corpus import ERROR_RULES, IGNORE_RULES, generate, single_error_pattern, truth_path
from bench.measure import TIME, Measured, best_of, last_line, measure, warm_cache

ROOT = Path(__file__).resolve().parents[1]
PREFIX_BYTES = 2_000_000


@dataclass(slots=True)
class Row:
    """One line of the results table."""

    tool: str
    command: str
    available: bool
    note: str = ""
    wall_s: float | None = None
    lines_per_s: float | None = None
    mb_per_s: float | None = None
    peak_rss_mb: float | None = None
    errors: int | None = None
    errors_by_rule: dict[str, int] | None = None
    mismatches: list[str] = field(default_factory=list)

    @property
    def matches_truth(self) -> bool | None:
        return None if not self.available else not self.mismatches


# ---- the three tools -----------------------------------------------------------------


def grep_single_stages(corpus: Path) -> list[list[str]]:
    return [["grep", "-c", "-E", single_error_pattern(), str(corpus)]]


def grep_pipeline_stages(corpus: Path) -> list[list[str]]:
    ignore = "|".join(IGNORE_RULES.values())
    errors = "|".join(ERROR_RULES.values())
    return [["grep", "-v", "-E", ignore, str(corpus)], ["grep", "-c", "-E", errors]]


def watcher_stages(watcher: Sequence[str], config: Path, corpus: Path) -> list[list[str]]:
    return [[*watcher, "classify", "--config", str(config), "--json", str(corpus)]]


def watcher_argv(entry: Path) -> tuple[list[str], str]:
    """The installed entry point, else this checkout's package run as a module, and why."""
    if entry.exists():
        return [str(entry)], ""
    return [sys.executable, "-m", "watcher"], f"{entry} is not installed; ran `python -m watcher`"


def parse_grep(m: Measured) -> tuple[int, dict[str, int] | None]:
    # grep -c exits 1 when the count is 0; anything else non-zero is a failure.
    if any(rc not in (0, 1) for rc in m.returncodes):
        raise RuntimeError(last_line(m.stderr) or f"exit {m.returncodes}")
    return int(m.stdout.strip()), None


@dataclass(frozen=True, slots=True)
class WatcherCounts:
    errors: int
    errors_by_rule: dict[str, int]
    doc: Mapping[str, object]  # the object they came from: optional fields to check too


def parse_watcher(m: Measured) -> WatcherCounts:
    """Counts from `classify --json`, whatever its exit code (it may flag found errors)."""
    try:
        doc = _find_counts(_json_document(m.stdout))
    except (RuntimeError, ValueError):
        doc = None
    if doc is None:
        reason = last_line(m.stderr) or "--json output has no errors_by_rule"
        raise RuntimeError(f"exit {m.returncodes[0]}: {reason}")
    raw = doc["errors_by_rule"]
    assert isinstance(raw, dict)  # _find_counts only returns objects where it is one
    by_rule = {str(k): int(v) for k, v in raw.items()}
    total = doc.get("errors")
    return WatcherCounts(total if isinstance(total, int) else sum(by_rule.values()), by_rule, doc)


def optional_mismatches(doc: Mapping[str, object], truth: Mapping[str, object]) -> list[str]:
    """Differences in the fields classify --json may carry besides the error counts.

    Its `ignored_by_rule` counts error lines an ignore rule won over: the truth's
    `suppressed_by_ignore`, not every line an ignore rule matches.
    """
    out = []
    for field_name, truth_name in (("lines", "lines"), ("records", "records")):
        got = doc.get(field_name)
        if isinstance(got, int) and got != truth[truth_name]:
            out.append(f"{field_name} {got} != truth {truth[truth_name]}")
    ignored, want = doc.get("ignored_by_rule"), truth["suppressed_by_ignore"]
    if isinstance(ignored, dict) and isinstance(want, dict):
        got_ignored = {k: ignored.get(k, 0) for k in want}
        if got_ignored != want:
            out.append(f"ignored_by_rule {got_ignored} != truth {want}")
    return out


def _json_document(text: str) -> object:
    """The whole output as JSON, else its last JSON line (tolerates a progress preamble)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        lines = [ln for ln in text.splitlines() if ln.strip().startswith("{")]
        if not lines:
            raise RuntimeError("no JSON object in --json output") from None
        return json.loads(lines[-1])


def _find_counts(doc: object) -> dict[str, object] | None:
    """The first object, depth first, that carries `errors_by_rule` (e.g. under "total")."""
    if isinstance(doc, dict):
        if isinstance(doc.get("errors_by_rule"), dict):
            return doc
        children: Iterator[object] = iter(doc.values())
    elif isinstance(doc, list):
        children = iter(doc)
    else:
        return None
    for child in children:
        found = _find_counts(child)
        if found is not None:
            return found
    return None


# ---- checking against the truth ------------------------------------------------------


def compare(row: Row, truth: Mapping[str, object]) -> None:
    """Record every way `row` differs from the ground truth."""
    if row.errors != truth["errors"]:
        row.mismatches.append(f"errors {row.errors} != truth {truth['errors']}")
    if row.errors_by_rule is None:
        return
    expected = truth["errors_by_rule"]
    assert isinstance(expected, dict)
    for rule in sorted(set(expected) | set(row.errors_by_rule)):
        got, want = row.errors_by_rule.get(rule, 0), expected.get(rule, 0)
        if got != want:
            row.mismatches.append(f"{rule}: {got} != truth {want}")


def fill(row: Row, m: Measured, lines: int, size: int) -> None:
    row.wall_s = m.wall_s
    row.lines_per_s = lines / m.wall_s
    row.mb_per_s = size / 1e6 / m.wall_s
    row.peak_rss_mb = m.peak_rss_bytes / 1e6


def shell(stages: Sequence[Sequence[str]], env_prefix: str = "") -> str:
    """How a user would type `stages`, for the report."""
    return env_prefix + " | ".join(shlex.join(s) for s in stages)


# ---- the benchmark -------------------------------------------------------------------


@dataclass(slots=True)
class Bench:
    corpus: Path
    config: Path
    watcher: Path
    repeat: int
    truth: dict[str, object]
    size: int
    rows: list[Row] = field(default_factory=list)

    @property
    def lines(self) -> int:
        value = self.truth["lines"]
        assert isinstance(value, int)
        return value

    def run_watcher_and_grep(self) -> None:
        """watcher classify and both grep forms, taking turns (measure.best_of)."""
        env = dict(os.environ, LC_ALL="C")  # byte matching, no UTF-8 decoding: grep's best case
        greps = (
            (
                "grep -c -E",
                grep_single_stages(self.corpus),
                "one ERE; the corpus keeps ignored lines out of it",
            ),
            (
                "grep -v then grep -c",
                grep_pipeline_stages(self.corpus),
                "general form: drop ignored lines, then count errors",
            ),
        )
        argv, how = watcher_argv(self.watcher)
        stages = watcher_stages(argv, self.config, self.corpus)
        # A warm-up run writes what a second run of a user's finds: bytecode, and the
        # compiled hyperscan database (classify/hscache.py).
        measure(watcher_stages(argv, self.config, self.tiny()), self.watcher_env)
        ours, *theirs = best_of(self.repeat, [(stages, self.watcher_env), *((g, env) for _, g, _ in greps)])
        self.watcher_row(stages, ours, how)
        for (tool, grep, note), m in zip(greps, theirs, strict=True):
            row = Row(tool, shell(grep, "LC_ALL=C "), True, note)
            row.errors, _ = parse_grep(m)
            fill(row, m, self.lines, self.size)
            compare(row, self.truth)
            self.rows.append(row)

    def run_mtail(self) -> None:
        notes = {
            "mtail": "config regexes as written, one per rule; ignore rules first, then stop",
            "mtail, tuned regexes": "same rules rewritten so Go's regexp can skip to a literal",
        }
        runs = {tool: mtail.stages(self.corpus, program) for tool, (program, _, _) in mtail.PROGRAMS.items()}
        measured = best_of(self.repeat, [(stages, None) for stages in runs.values()])
        for (tool, stages), m in zip(runs.items(), measured, strict=True):
            row = Row(tool, shell(stages), True, notes[tool])
            row.errors_by_rule, seen, ignored = mtail.parse(m)
            row.errors = sum(row.errors_by_rule.values())
            fill(row, m, self.lines, self.size)
            compare(row, self.truth)
            if seen != self.lines:
                row.mismatches.append(f"read {seen} lines != truth {self.lines}")
            if ignored != self.truth["ignore_matches"]:
                row.mismatches.append(f"ignore matches {ignored} != truth {self.truth['ignore_matches']}")
            self.rows.append(row)

    @property
    def watcher_env(self) -> dict[str, str]:
        # `python -m watcher` must import this checkout's package from anywhere; and as a
        # user's install runs: bytecode cached (PYTHONDONTWRITEBYTECODE would compile every
        # module on every run).
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        return dict(env, PYTHONPATH=str(ROOT))

    def watcher_row(self, stages: list[list[str]], m: Measured, how: str) -> None:
        row = Row("watcher classify", shell(stages), False)
        self.rows.append(row)
        try:
            counts = parse_watcher(m)
        except (RuntimeError, ValueError, TypeError, KeyError) as exc:
            row.note = f"not available: {exc}"
            return
        row.errors, row.errors_by_rule = counts.errors, counts.errors_by_rule
        row.available, row.note = True, how
        fill(row, m, self.lines, self.size)
        compare(row, self.truth)
        row.mismatches += optional_mismatches(counts.doc, self.truth)

    def tiny(self) -> Path:
        path = self.corpus.with_name(self.corpus.stem + ".head.log")
        write_prefix(self.corpus, path, 4096)
        return path

    def rss_independence(self) -> dict[str, object]:
        """watcher's peak RSS on the first tenth and on the whole file: memory must not scale."""
        full = next((r for r in self.rows if r.tool == "watcher classify" and r.available), None)
        if full is None:
            return {"available": False}
        prefix = self.corpus.with_name(self.corpus.stem + ".prefix.log")
        # A tenth, at least PREFIX_BYTES: both sizes past the read buffers, so that any growth
        # with the input would show.
        prefix_lines = write_prefix(self.corpus, prefix, max(PREFIX_BYTES, self.size // 10))
        m = measure(watcher_stages(watcher_argv(self.watcher)[0], self.config, prefix), self.watcher_env)
        return {
            "available": m.returncodes == [0],
            "prefix_bytes": prefix.stat().st_size,
            "prefix_lines": prefix_lines,
            "prefix_peak_rss_mb": m.peak_rss_bytes / 1e6,
            "full_bytes": self.size,
            "full_peak_rss_mb": full.peak_rss_mb,
        }


def write_prefix(src: Path, dst: Path, limit: int) -> int:
    """Copy whole lines of `src` up to `limit` bytes; return how many lines."""
    with src.open("rb") as f:
        head = f.read(limit)
    head = head[: head.rfind(b"\n") + 1]
    dst.write_bytes(head)
    return head.count(b"\n")


def ensure_corpus(corpus: Path, lines: int, seed: int) -> dict[str, object]:
    """The truth for `corpus`, regenerating both when missing or of another size or seed."""
    tpath = truth_path(corpus)
    if corpus.exists() and tpath.exists():
        truth: dict[str, object] = json.loads(tpath.read_text())
        if truth.get("lines") == lines and truth.get("seed") == seed:
            return truth
    print(f"generating {corpus} ({lines:,} lines, seed {seed})", file=sys.stderr)
    generate(corpus, lines, seed)
    loaded: dict[str, object] = json.loads(tpath.read_text())
    return loaded


# ---- report --------------------------------------------------------------------------


def ratios(rows: list[Row]) -> dict[str, float | None]:
    by = {r.tool: r for r in rows if r.available}

    def div(num: str, den: str, attr: str) -> float | None:
        a, b = getattr(by.get(num), attr, None), getattr(by.get(den), attr, None)
        return a / b if isinstance(a, float) and isinstance(b, float) and b else None

    return {
        "watcher_vs_mtail_throughput": div("watcher classify", "mtail", "lines_per_s"),
        "watcher_vs_tuned_mtail_throughput": div("watcher classify", "mtail, tuned regexes", "lines_per_s"),
        "watcher_time_over_grep_time": div("watcher classify", "grep -c -E", "wall_s"),
        "grep_vs_mtail_throughput": div("grep -c -E", "mtail", "lines_per_s"),
    }


def markdown(bench: Bench, ratio: dict[str, float | None], rss: dict[str, object]) -> str:
    t = bench.truth
    out = [
        f"Corpus: {bench.corpus} ({bench.lines:,} lines, {bench.size / 1e6:.0f} MB, "
        f"{t['errors']:,} error events). Page cache warm for every tool; "
        f"best of {bench.repeat} run(s); MB = 10^6 bytes.",
        "",
        "| tool | wall s | lines/s | MB/s | peak RSS MB | errors | matches truth |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in bench.rows:
        if not r.available:
            out.append(f"| {r.tool} | - | - | - | - | - | {r.note} |")
            continue
        verdict = "yes" if r.matches_truth else "**NO: " + "; ".join(r.mismatches) + "**"
        out.append(
            f"| {r.tool} | {r.wall_s:.2f} | {r.lines_per_s:,.0f} | {r.mb_per_s:,.1f} | "
            f"{r.peak_rss_mb:,.1f} | {r.errors:,} | {verdict} |"
        )
    out += ["", *(f"- {r.tool}: {r.note}" for r in bench.rows if r.available and r.note)]
    out += [*(f"- {k}: {_fmt(v)}" for k, v in ratio.items())]
    if rss.get("available"):
        out.append(
            f"- watcher peak RSS: {rss['prefix_peak_rss_mb']:.1f} MB on a "
            f"{rss['prefix_bytes']:,}-byte prefix, {rss['full_peak_rss_mb']:.1f} MB on the full file"
        )
    out += ["", "Commands:", *(f"- {r.tool}: `{r.command}`" for r in bench.rows)]
    return "\n".join(out)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}x"


def tool_versions() -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        p = subprocess.run(argv, capture_output=True, text=True, check=False)
        return (p.stdout or p.stderr).partition("\n")[0]

    return {
        "grep": first_line(["grep", "--version"]),
        "mtail": first_line(["mtail", "--version"]),
        "python": platform.python_version(),
        "cpus": str(os.cpu_count()),
    }


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.write_mtail:
        print(*mtail.write_programs(), sep="\n")
        return 0
    for tool in ("grep", "mtail", TIME):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (apt-get install {Path(tool).name})", file=sys.stderr)
            return 2
    truth = ensure_corpus(args.corpus, args.lines, args.seed)
    bench = Bench(args.corpus, args.config, args.watcher, args.repeat, truth, warm_cache(args.corpus))
    bench.run_watcher_and_grep()
    if not args.no_mtail:
        bench.run_mtail()
    ratio, rss = ratios(bench.rows), bench.rss_independence()
    print(markdown(bench, ratio, rss))
    _write_json(args.out, bench, ratio, rss)
    bad = [r.tool for r in bench.rows if r.matches_truth is False]
    if bad:
        print(f"\nMISMATCH against ground truth: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


def _write_json(path: Path, bench: Bench, ratio: dict[str, float | None], rss: dict[str, object]) -> None:
    doc = {
        "corpus": str(bench.corpus),
        "bytes": bench.size,
        "cache": "warm (file read once before timing)",
        "repeat": bench.repeat,
        "truth": bench.truth,
        "rows": [asdict(r) | {"matches_truth": r.matches_truth} for r in bench.rows],
        "ratios": ratio,
        "rss_independence": rss,
        "versions": tool_versions(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--corpus", type=Path, default=ROOT / "bench" / "out" / "corpus.log")
    ap.add_argument("--config", type=Path, default=ROOT / "config" / "watcher.toml")
    ap.add_argument("--watcher", type=Path, default=ROOT / ".venv" / "bin" / "watcher")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "classify.json")
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool; the fastest counts")
    ap.add_argument("--write-mtail", action="store_true", help="regenerate the bench/*.mtail programs")
    ap.add_argument("--no-mtail", action="store_true", help="grep only (mtail takes a minute on 2M lines)")
    return ap.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
