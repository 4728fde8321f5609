"""Deterministic log corpus for the classification benchmark, with its ground truth.

`python bench/corpus.py --lines 2000000 --seed 1 --out bench/out/corpus.log` writes
the corpus and `bench/out/corpus.truth.json`. The mix is what `watcher classify`
meets in a real incident: cloud API JSON lines, gateway logfmt and plain-text lines,
forwarded journald JSON, Go panics, Python tracebacks and Java stacks, and many lines
that mention "error" without being errors (`errors=0`, `"msg":"error budget ok"`).

The corpus is built so that three very different classifiers can be held to the
same truth: per record at most one error rule matches, only the first line of a
multi-line block can match any pattern (so matching *lines* equal error *events*),
and every line the `planned-maintenance` ignore rule suppresses is a logfmt line
that `single_error_pattern()` cannot match. `ERROR_RULES` and `IGNORE_RULES` are
the grep/mtail/Python spelling of the rules in config/watcher.toml on this corpus.
"""

from __future__ import annotations

import argparse
import bisect
import json
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

# A leading RFC 3339 timestamp; regex rules in watcher.toml apply to the text after it.
TS_ERE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z "

_LEVELS = "(error|fatal|panic|critical)"

# Rule name -> POSIX ERE that GNU grep, Go regexp (mtail) and Python `re` read alike.
# Field rules become text patterns over the two shapes they occur in here: JSON
# (`"level":"error"`) and logfmt (`level=error`); a JSON number never has quotes,
# journald's PRIORITY always has.
ERROR_RULES: dict[str, str] = {
    "level": f'"level":"{_LEVELS}"|^ts=[^ ]+ level={_LEVELS} ',
    "http-5xx": '"status":5[0-9]{2}[,}]',
    "priority": '"PRIORITY":"[0-3]"',
    "panic": TS_ERE + r"(panic: |fatal error: |Traceback \(most recent call last\):)",
    "java-exception": TS_ERE + 'Exception in thread "',
    "text-level": TS_ERE + "(ERROR|FATAL|CRITICAL)[: ]",
    "oom": "(out of memory|OOMKilled)",
}
IGNORE_RULES: dict[str, str] = {
    "zero-errors": r"\berrors?=0\b",
    "planned-maintenance": "planned maintenance",
}

# Suppressed logfmt lines put "(planned maintenance)" in msg; no other error msg has a
# parenthesis, so this level pattern cannot match a suppressed line.
_LEVEL_NOT_IGNORED = f'"level":"{_LEVELS}"|^ts=[^ ]+ level={_LEVELS} gw=[^ ]+ cam=[0-9]+ msg="[^"(]*"'

START = datetime(2026, 11, 27, 13, 0, 0, tzinfo=UTC)
_BATCH_RECORDS = 50_000


def single_error_pattern() -> str:
    """One ERE matching exactly the error lines that no ignore rule suppresses, on this corpus.

    grep cannot say "ignore wins"; this pattern needs no `grep -v` stage because the
    corpus never lets an ignored line look like an error to it.
    """
    rules = dict(ERROR_RULES, level=_LEVEL_NOT_IGNORED)
    return "|".join(rules.values())


@dataclass(frozen=True, slots=True)
class Kind:
    """One record shape: how often it occurs and which rules its first line matches."""

    name: str
    weight: float
    lines: int
    render: Callable[[Corpus, str], str]
    rule: str | None = None
    ignore: str | None = None


@dataclass(slots=True)
class Truth:
    """What a correct classifier must report for the generated file."""

    seed: int
    lines: int = 0
    bytes: int = 0
    records: int = 0
    errors_by_rule: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_RULES, 0))
    # Error lines an ignore rule won over, and every line an ignore rule matches.
    suppressed_by_ignore: dict[str, int] = field(default_factory=lambda: dict.fromkeys(IGNORE_RULES, 0))
    ignore_matches: dict[str, int] = field(default_factory=lambda: dict.fromkeys(IGNORE_RULES, 0))

    def count(self, kind: Kind) -> None:
        self.records += 1
        self.lines += kind.lines
        if kind.ignore is not None:
            self.ignore_matches[kind.ignore] += 1
            if kind.rule is not None:
                self.suppressed_by_ignore[kind.ignore] += 1
        elif kind.rule is not None:
            self.errors_by_rule[kind.rule] += 1

    def as_json(self) -> dict[str, object]:
        return {
            "seed": self.seed,
            "start": START.isoformat().replace("+00:00", "Z"),
            "lines": self.lines,
            "bytes": self.bytes,
            "records": self.records,
            "errors": sum(self.errors_by_rule.values()),
            "errors_by_rule": self.errors_by_rule,
            "suppressed_by_ignore": self.suppressed_by_ignore,
            "ignore_matches": self.ignore_matches,
        }


_SVCS = ("api", "auth", "sfu", "recorder", "billing", "events")
_METHODS = ("GET", "GET", "GET", "GET", "POST", "PUT", "DELETE")
_OK_STATUS = (200,) * 17 + (201, 204, 304)
_4XX = (400, 401, 403, 404, 404, 404, 409, 429)
_5XX = (500, 502, 503, 503, 504)
_GWS = tuple(
    f"gw-{city}-{n:02d}"
    for city in ("berlin", "paris", "madrid", "warsaw", "oslo", "lisbon")
    for n in range(1, 9)
)
_CODECS = ("h264 1920x1080@25", "h265 2560x1440@20", "h264 1280x720@30", "mjpeg 640x480@10")


class Corpus:
    """Random record renderer over one seeded RNG and a monotonic millisecond clock."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self._ms = 0
        self._sec = -1
        self._sec_text = ""

    def tick(self) -> str:
        """Advance the clock 1-5 ms and return the RFC 3339 timestamp, always increasing."""
        self._ms += 1 + int(self.rng.random() * 5)
        sec, ms = divmod(self._ms, 1000)
        if sec != self._sec:  # strftime ~300x less often: once per second of log time
            self._sec = sec
            self._sec_text = (START + timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._sec_text}.{ms:03d}Z"

    def pick(self, items: tuple[str, ...] | tuple[int, ...]) -> str:
        return str(items[int(self.rng.random() * len(items))])

    def num(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi], cheaper than randrange in this hot loop."""
        return lo + int(self.rng.random() * (hi - lo + 1))

    def hexid(self, digits: int = 16) -> str:
        return f"{self.rng.getrandbits(4 * digits):0{digits}x}"

    def path(self) -> str:
        cam = self.num(1, 99999)
        return self.pick(
            (
                f"/v1/cameras/{cam}/live",
                f"/v1/cameras/{cam}/snapshot.jpg",
                f"/v1/recordings/{cam}/segments?from=1795797600",
                f"/v1/orgs/org-{self.num(1, 999)}/events",
                "/v1/auth/token",
            )
        )


# ---- cloud API JSON ------------------------------------------------------------------


def _json_request(c: Corpus, ts: str, level: str, status: str, msg: str) -> str:
    return (
        f'{{"ts":"{ts}","level":"{level}","svc":"{c.pick(_SVCS)}","method":"{c.pick(_METHODS)}",'
        f'"path":"{c.path()}","status":{status},"dur_ms":{c.num(1, 900)},'
        f'"org":"org-{c.num(1, 999)}","req_id":"{c.hexid(8)}","msg":"{msg}"}}\n'
    )


def json_ok(c: Corpus, ts: str) -> str:
    return _json_request(c, ts, c.pick(("info",) * 7 + ("debug",)), c.pick(_OK_STATUS), "request done")


def json_4xx(c: Corpus, ts: str) -> str:
    """A client error: mentions "error", logged at warn, not a server fault."""
    return _json_request(c, ts, "warn", c.pick(_4XX), "client error")


def json_5xx(c: Corpus, ts: str) -> str:
    return _json_request(c, ts, "warn", c.pick(_5XX), "request failed")


def json_retried(c: Corpus, ts: str) -> str:
    """Only `status` counts: `upstream_status` 503 on a 200 is not an error."""
    return (
        f'{{"ts":"{ts}","level":"info","svc":"{c.pick(_SVCS)}","method":"GET",'
        f'"path":"{c.path()}","status":200,"upstream_status":503,"retries":1,'
        f'"req_id":"{c.hexid()}","msg":"retried after upstream error"}}\n'
    )


def json_budget(c: Corpus, ts: str) -> str:
    return (
        f'{{"ts":"{ts}","level":"info","svc":"slo","org":"org-{c.num(1, 999)}",'
        f'"window":"30d","errors":0,"requests":{c.num(10_000, 9_999_999)},'
        f'"burn_rate":0.{c.num(0, 99):02d},"trace_id":"{c.hexid()}","msg":"error budget ok"}}\n'
    )


def json_error(c: Corpus, ts: str) -> str:
    level = c.pick(("error",) * 8 + ("fatal", "critical"))
    return (
        f'{{"ts":"{ts}","level":"{level}","svc":"{c.pick(_SVCS)}","bucket":"rec-eu-{c.num(1, 4)}",'
        f'"segment":"{c.hexid()}","attempt":{c.num(1, 5)},"err":"connection reset by peer",'
        f'"org":"org-{c.num(1, 999)}","msg":"segment upload failed"}}\n'
    )


def _journal(c: Corpus, ts: str, prio: str, message: str) -> str:
    return (
        f'{{"ts":"{ts}","PRIORITY":"{prio}","SYSLOG_IDENTIFIER":"novavms-gateway",'
        f'"_HOSTNAME":"{c.pick(_GWS)}","_PID":"{c.num(300, 9000)}","_BOOT_ID":"{c.hexid()}",'
        f'"MESSAGE":"{message}"}}\n'
    )


def journal_info(c: Corpus, ts: str) -> str:
    prio = c.pick(("4", "5", "6", "6", "6", "7"))
    return _journal(c, ts, prio, f"watchdog ping ok, disk usage {c.num(20, 80)}%")


def journal_err(c: Corpus, ts: str) -> str:
    prio = c.pick(("3", "3", "3", "2"))
    return _journal(c, ts, prio, f"failed to open /dev/video{c.num(0, 3)}: device busy")


# ---- gateway logfmt ------------------------------------------------------------------


def _logfmt(c: Corpus, ts: str, level: str, msg: str, fps: int, errors: int) -> str:
    return (
        f"ts={ts} level={level} gw={c.pick(_GWS)} cam={c.num(1, 64)} msg={msg} fps={fps} "
        f"bitrate_kbps={c.num(512, 8192)} rtt_ms={c.num(1, 250)} dropped={c.num(0, 3)} "
        f"errors={errors} session={c.hexid()}\n"
    )


def logfmt_ok(c: Corpus, ts: str) -> str:
    """The bulk of gateway output; `errors=0` matches the zero-errors ignore rule."""
    return _logfmt(c, ts, c.pick(("info",) * 5 + ("debug",)), '"stream ok"', c.num(10, 30), 0)


def logfmt_warn(c: Corpus, ts: str) -> str:
    return _logfmt(c, ts, "warn", '"frames dropped"', c.num(5, 24), c.num(1, 40))


def logfmt_error(c: Corpus, ts: str) -> str:
    msg = c.pick(('"stream failed: rtsp timeout"', '"decoder stalled"', '"auth rejected by camera"'))
    return _logfmt(c, ts, "error", msg, 0, c.num(1, 99))


def logfmt_maintenance(c: Corpus, ts: str) -> str:
    return _logfmt(c, ts, "error", '"camera offline (planned maintenance)"', 0, c.num(1, 9))


# ---- gateway plain text --------------------------------------------------------------


def text_info(c: Corpus, ts: str) -> str:
    s, cam, gw = c.num(1, 9999), c.num(1, 64), c.pick(_GWS)
    return c.pick(
        (
            f"{ts} INFO rtsp session {s} opened for cam {cam} on {gw} ({c.pick(_CODECS)}, tcp)\n",
            f"{ts} INFO rtsp session {s} closed for cam {cam} on {gw} after {c.num(1, 9999)}s\n",
            f"{ts} DEBUG keyframe interval {c.num(1, 4)}s for cam {cam} on {gw}, gop ok\n",
            f"{ts} INFO error counters reset for cam {cam} on {gw} by scheduler\n",
        )
    )


def text_retry(c: Corpus, ts: str) -> str:
    return (
        f"{ts} WARN rtsp session {c.num(1, 9999)}: retrying after error: connection reset by peer "
        f"(attempt {c.num(1, 4)}/5, cam {c.num(1, 64)}, {c.pick(_GWS)})\n"
    )


def text_error(c: Corpus, ts: str) -> str:
    s, cam, gw = c.num(1, 9999), c.num(1, 64), c.pick(_GWS)
    return c.pick(
        (
            f"{ts} ERROR rtsp session {s} failed: timeout after 10s (cam {cam}, {gw})\n",
            f"{ts} ERROR: upload of segment {c.hexid()} to rec-eu-1 failed (cam {cam})\n",
            f"{ts} FATAL: config reload failed on {gw}: /etc/novavms/gateway.toml line 3\n",
            f"{ts} CRITICAL disk /var/lib/novavms on {gw} is 99% full, recording paused\n",
        )
    )


def text_oom(c: Corpus, ts: str) -> str:
    pid = c.num(1000, 60000)
    return c.pick(
        (
            f"{ts} WARN kernel: ffmpeg invoked oom-killer: out of memory, killed process {pid} "
            f"(ffmpeg) total-vm:{c.num(100_000, 900_000)}kB\n",
            f"{ts} INFO container sfu-{c.num(1, 9)} exited: OOMKilled (exit code 137), "
            f"restart {c.num(1, 9)} on {c.pick(_GWS)}\n",
        )
    )


# ---- multi-line blocks: one event each, only the first line can match anything -------


def python_traceback(c: Corpus, ts: str) -> str:
    return (
        f"{ts} Traceback (most recent call last):\n"
        f'  File "/app/novavms/api/handlers.py", line {c.num(10, 400)}, in handle\n'
        "    frame = decode(packet)\n"
        f'  File "/app/novavms/codec.py", line {c.num(10, 400)}, in decode\n'
        '    raise ValueError("bad frame")\n'
        "ValueError: bad frame\n"
    )


def go_panic(c: Corpus, ts: str) -> str:
    return (
        f"{ts} panic: runtime error: invalid memory address or nil pointer dereference\n"
        f"[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x{c.num(0x400000, 0x4FFFFF):x}]\n"
        "\n"
        "goroutine 1 [running]:\n"
        "main.(*Server).handle(0xc000010000)\n"
        f"\t/app/server.go:{c.num(20, 300)} +0x1d\n"
        "created by main.main in goroutine 1\n"
        "\t/app/main.go:31 +0x5a\n"
        "exit status 2\n"
    )


def go_fatal(c: Corpus, ts: str) -> str:
    return (
        f"{ts} fatal error: concurrent map writes\n"
        "\n"
        f"goroutine {c.num(2, 900)} [running]:\n"
        "main.(*Registry).add(...)\n"
        f"\t/app/registry.go:{c.num(20, 300)} +0x8c\n"
        "exit status 2\n"
    )


def java_exception(c: Corpus, ts: str) -> str:
    return (
        f'{ts} Exception in thread "main" java.lang.IllegalStateException: no session\n'
        f"\tat com.novavms.Gw.run(Gw.java:{c.num(10, 400)})\n"
        "\tat java.base/java.lang.Thread.run(Thread.java:1583)\n"
        "Caused by: java.io.IOException: reset\n"
        f"\t... {c.num(2, 9)} more\n"
    )


# Weights are per record. Errors total ~0.39% of records, near the 7,934 in 2M lines
# of the reference run; the benign weights set the mean line length to ~160 bytes.
KINDS: tuple[Kind, ...] = (
    Kind("json-ok", 0.4000, 1, json_ok),
    Kind("json-4xx", 0.0500, 1, json_4xx),
    Kind("json-retried", 0.0050, 1, json_retried),
    Kind("json-budget", 0.0100, 1, json_budget),
    Kind("journal-info", 0.0200, 1, journal_info),
    Kind("logfmt-ok", 0.2300, 1, logfmt_ok, ignore="zero-errors"),
    Kind("logfmt-warn", 0.0300, 1, logfmt_warn),
    Kind("text-info", 0.2220, 1, text_info),
    Kind("text-retry", 0.0291, 1, text_retry),
    Kind("json-error", 0.0011, 1, json_error, rule="level"),
    Kind("logfmt-error", 0.0006, 1, logfmt_error, rule="level"),
    Kind("json-5xx", 0.0010, 1, json_5xx, rule="http-5xx"),
    Kind("journal-err", 0.0001, 1, journal_err, rule="priority"),
    Kind("python-traceback", 0.00012, 6, python_traceback, rule="panic"),
    Kind("go-panic", 0.00008, 9, go_panic, rule="panic"),
    Kind("go-fatal", 0.00004, 6, go_fatal, rule="panic"),
    Kind("java-exception", 0.00006, 5, java_exception, rule="java-exception"),
    Kind("text-error", 0.0007, 1, text_error, rule="text-level"),
    Kind("text-oom", 0.00008, 1, text_oom, rule="oom"),
    Kind(
        "logfmt-maintenance",
        0.0001,
        1,
        logfmt_maintenance,
        rule="level",
        ignore="planned-maintenance",
    ),
)
_FILLER = KINDS[0]  # a one-line record, used when a block would overrun --lines


def _cumulative(kinds: tuple[Kind, ...]) -> list[float]:
    total, out = 0.0, []
    for k in kinds:
        total += k.weight
        out.append(total)
    return [x / total for x in out]


def records(lines: int, seed: int, truth: Truth) -> Iterator[str]:
    """Yield rendered records (one or more lines each) totalling exactly `lines` lines."""
    corpus = Corpus(seed)
    cum = _cumulative(KINDS)
    last = len(KINDS) - 1
    rnd = corpus.rng.random
    while truth.lines < lines:
        kind = KINDS[min(bisect.bisect(cum, rnd()), last)]
        if truth.lines + kind.lines > lines:
            kind = _FILLER
        truth.count(kind)
        yield kind.render(corpus, corpus.tick())


def generate(out: Path, lines: int, seed: int) -> Truth:
    """Write the corpus to `out` and its ground truth next to it; return the truth."""
    out.parent.mkdir(parents=True, exist_ok=True)
    truth = Truth(seed=seed)
    batch: list[str] = []
    with out.open("wb") as f:
        for rec in records(lines, seed, truth):
            batch.append(rec)
            if len(batch) >= _BATCH_RECORDS:
                truth.bytes += f.write("".join(batch).encode("ascii"))
                batch.clear()
        truth.bytes += f.write("".join(batch).encode("ascii"))
    truth_path(out).write_text(json.dumps(truth.as_json(), indent=2) + "\n")
    return truth


def truth_path(corpus: Path) -> Path:
    """`bench/out/corpus.log` -> `bench/out/corpus.truth.json`."""
    return corpus.with_suffix(".truth.json")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("bench/out/corpus.log"))
    args = ap.parse_args(argv)
    if args.lines < 1:
        ap.error("--lines must be positive")
    truth = generate(args.out, args.lines, args.seed)
    summary = truth.as_json()
    print(
        f"{args.out}: {summary['lines']:,} lines, {summary['bytes']:,} bytes, "
        f"{summary['errors']:,} errors -> {truth_path(args.out)}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
