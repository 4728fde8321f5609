"""Latency, sustained throughput and memory of the running daemon (`watcher run`), next to mtail.

`python bench/daemon_bench.py [--soak 60] [--latency-samples 240]` runs the real daemon
as a subprocess on a temporary config (one `file` source on an empty temporary file,
the rules and ignore rules of config/watcher.toml, a free loopback port, a fresh
state_dir), with an incident opened and mitigated through the API, and measures:

1. latency: 1,000 info lines/s plus an error line every 0.2-0.3 s (jittered, so the
   errors fall at every phase of the file source's poll); GET /api/v1/status on one
   keep-alive connection every `--poll-ms`; per error line, the delay from just
   before its write() to the first status whose incident counts it (`errors`) and
   whose `streak_start` moved to its timestamp;
2. throughput: the 2M-line corpus (bench/corpus.py) appended in 8 MiB writes to the
   followed file; the time until `watcher_source_lines_total` reaches its line count,
   the daemon's CPU seconds (/proc/<pid>/stat), RSS every second and VmHWM, and its
   per-rule error counters against the corpus's ground truth;
3. the same for mtail following a file (`bench/classify-tuned.mtail`), after the
   watcher so that the two never share the machine's cores;
4. soak: a steady `--soak-rate` lines/s (corpus lines, cycled) for `--soak` seconds,
   RSS sampled every 5 s.

Everything it starts (daemon, mtail, writer threads) is stopped on exit, Ctrl-C or
SIGTERM. Prints Markdown and writes bench/out/daemon.json. Exit status 1 when a phase
failed or a count disagrees with the truth; missed performance targets are reported,
not fatal. MB means 10^6 bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import mmap
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import mtail
from bench.classify_bench import ensure_corpus, watcher_argv
from bench.measure import last_line, proc_cpu_seconds, proc_rss_bytes, warm_cache
from tests.support import free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "bench"
INCIDENT = "P1-bench-daemon"
WRITE_CHUNK = 8 << 20
TARGETS = {"latency_p99_ms": 100.0, "idle_latency_p99_ms": 50.0, "lines_per_s": 500_000.0, "vs_mtail": 4.0}
"""Issue 18's goals: p99 < 100 ms at 1,000 lines/s and < 50 ms idle; >= 4x mtail."""


class BenchError(Exception):
    """A phase could not be measured; the message says why."""


RETRY = (OSError, http.client.HTTPException, ValueError, BenchError)
"""What a poll of a starting daemon or mtail may raise before it answers properly."""


EXIT_CODES: list[tuple[str, int | None]] = []
"""(name, exit code) of every process this script stopped: a daemon should exit 0 on SIGTERM."""


# ---- processes ------------------------------------------------------------------------


@dataclass
class Proc:
    """A child started by this script, in its own session (a terminal's Ctrl-C reaches us only)."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check(self) -> None:
        if not self.alive():
            raise BenchError(f"{self.name} exited with {self.popen.returncode}: {self.tail()}")

    def tail(self) -> str:
        try:
            return last_line(self.log.read_text(errors="replace")) or "(no output)"
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; the exit code (negative: killed by a signal)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode


def start(stack: contextlib.ExitStack, name: str, argv: Sequence[str], log: Path) -> Proc:
    # The daemon reads WATCHER_SECTION__KEY overrides: the caller's must not redirect it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
    with log.open("wb") as out:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    proc = Proc(name, popen, log)
    stack.callback(lambda: EXIT_CODES.append((name, proc.stop())))
    return proc


class Writer(threading.Thread):
    """Runs `body(stop)` in a thread; join() re-raises what it raised."""

    def __init__(self, name: str, body: Callable[[threading.Event], None]) -> None:
        super().__init__(name=name, daemon=True)
        self.body = body
        self.halt = threading.Event()
        self.error: BaseException | None = None
        self.finished_at: float | None = None

    def run(self) -> None:
        try:
            self.body(self.halt)
        except BaseException as exc:
            self.error = exc
        self.finished_at = time.monotonic()

    def stop(self) -> None:
        self.halt.set()
        if self.is_alive():
            self.join(10)
        if self.error is not None:
            raise BenchError(f"writer thread failed: {self.error!r}") from self.error


# ---- HTTP ------------------------------------------------------------------------------


class Http:
    """One keep-alive connection to a loopback server (http.client reconnects after close)."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.token = token

    def request(self, method: str, path: str, body: Mapping[str, object] | None = None) -> bytes:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token is not None and method == "POST":
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            self.conn.request(method, path, data, headers)
            resp = self.conn.getresponse()
            payload = resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise
        if resp.status >= 300:
            raise BenchError(f"{method} {path}: HTTP {resp.status} {payload[:200]!r}")
        return payload

    def get_json(self, path: str) -> Any:
        return json.loads(self.request("GET", path))

    def close(self) -> None:
        self.conn.close()


_PROM = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)", re.M)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def prom_values(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of metric `name` in a Prometheus text exposition, with its labels."""
    return [
        (dict(_LABEL.findall(m.group(2) or "")), float(m.group(3)))
        for m in _PROM.finditer(text)
        if m.group(1) == name
    ]


# ---- the daemon under test -------------------------------------------------------------


def toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON's escapes are a subset of TOML's
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {v!r} as TOML")


def daemon_config(rules_from: Path, state_dir: Path, port: int, log: Path) -> str:
    """A config with one file source and the rules, ignore rules and resolution of `rules_from`."""
    doc = tomllib.loads(rules_from.read_text())
    out = [
        f"state_dir = {toml_value(str(state_dir))}",
        "[http]",
        f'listen = "127.0.0.1:{port}"',
    ]
    if "resolution" in doc:
        out += ["[resolution]", *(f"{k} = {toml_value(v)}" for k, v in doc["resolution"].items())]
    out += ["[[sources]]", f'name = "{SOURCE}"', 'kind = "file"', f"path = {toml_value(str(log))}"]
    for table in ("rules", "ignore"):
        for rule in doc.get(table, []):
            out += [f"[[{table}]]", *(f"{k} = {toml_value(v)}" for k, v in rule.items())]
    return "\n".join(out) + "\n"


@dataclass
class Daemon:
    proc: Proc
    api: Http
    log: Path
    """The followed file."""

    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = self.api.get_json("/api/v1/status")
        return doc

    def lines_read(self) -> int:
        for src in self.status()["sources"]:
            if src["name"] == SOURCE:
                return int(src["lines"])
        raise BenchError(f"source {SOURCE} missing from /api/v1/status")


def start_daemon(stack: contextlib.ExitStack, ctx: Context, phase: str) -> Daemon:
    """A fresh daemon on an empty file, with an incident opened and mitigated, its source up."""
    work = ctx.workdir / phase
    work.mkdir()
    log = work / "app.log"
    log.touch()
    port = free_port()
    cfg = work / "watcher.toml"
    cfg.write_text(daemon_config(ctx.rules_config, work / "state", port, log))
    proc = start(
        stack, f"watcher run ({phase})", [*ctx.watcher, "run", "--config", str(cfg)], work / "daemon.log"
    )
    probe = Http(port)
    stack.callback(probe.close)

    def healthy() -> bool:
        probe.request("GET", "/healthz")
        return True

    wait_for(f"the daemon's /healthz on port {port}", healthy, 30, alive=proc.check, ignore=RETRY)
    probe.token = (work / "state" / "api-token").read_text().strip()
    daemon = Daemon(proc, probe, log)
    probe.request("POST", "/api/v1/incidents", {"id": INCIDENT, "title": "daemon bench", "scope": [SOURCE]})
    probe.request("POST", f"/api/v1/incidents/{INCIDENT}/mitigations", {"action": "daemon bench"})

    def source_up() -> bool:
        return any(s["name"] == SOURCE and s["up"] for s in daemon.status()["sources"])

    wait_for(f"source {SOURCE} up", source_up, 10, alive=proc.check, ignore=RETRY)
    return daemon


# ---- phase 1: latency ------------------------------------------------------------------


@dataclass(slots=True)
class Probe:
    """One error line: its timestamp, when write() was called, and when status showed it."""

    at: float
    written: float
    counted: float | None = None
    """monotonic time of the first status answer whose `errors` includes this line"""
    moved: float | None = None
    """... whose `streak_start` reached this line's timestamp"""
    before: float | None = None
    """when the last status request that did not yet show it (both ways) was sent"""


def rfc3339_ms(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text).timestamp()


def latency_writer(path: Path, probes: list[Probe], samples: int, rate: float, seed: int) -> Writer:
    rng = random.Random(seed)

    def body(halt: threading.Event) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            t0 = time.monotonic()
            info = 0
            next_error = t0 + rng.uniform(0.2, 0.3)
            while not halt.is_set() and len(probes) < samples:
                now = time.monotonic()
                due = int((now - t0) * rate) - info
                if due > 0:
                    ts = rfc3339_ms(time.time())
                    os.write(fd, "".join(_info_line(ts, info + i) for i in range(due)).encode())
                    info += due
                if now >= next_error:
                    at = int(time.time() * 1000) / 1000  # the line says ms: compare what it says
                    line = (
                        f"ts={rfc3339_ms(at)} level=error gw=gw-bench-01 cam=7 "
                        f'msg="rtsp timeout (bench probe {len(probes)})" retry=3\n'
                    ).encode()
                    probes.append(Probe(at, time.monotonic()))  # before write(): an upper bound
                    os.write(fd, line)
                    next_error += rng.uniform(0.2, 0.3)
                wake = min(next_error, now + 0.01)
                time.sleep(max(0.0, wake - time.monotonic()))
        finally:
            os.close(fd)

    return Writer("latency writer", body)


def _info_line(ts: str, n: int) -> str:
    return (
        f'ts={ts} level=info gw=gw-bench-01 cam={n % 64} msg="frame delivered" '
        f"fps=25 bitrate_kbps={2000 + n % 997} latency_ms={20 + n % 50} errors=0\n"
    )


def run_latency(ctx: Context) -> dict[str, object]:
    with contextlib.ExitStack() as stack:
        daemon = start_daemon(stack, ctx, "latency")
        status = Http(daemon.api.conn.port)  # its own keep-alive connection
        stack.callback(status.close)
        probes: list[Probe] = []
        writer = latency_writer(daemon.log, probes, ctx.latency_samples, ctx.info_rate, ctx.seed)
        stack.callback(writer.stop)
        poll = ctx.poll_ms / 1000
        rtts: list[float] = []
        periods: list[float] = []
        cpu0, t_start = proc_cpu_seconds(daemon.proc.pid), time.monotonic()
        writer.start()
        done = 0  # probes before this one were seen both ways
        last_req: float | None = None
        while done < ctx.latency_samples:
            t_req = time.monotonic()
            if last_req is not None:
                periods.append(t_req - last_req)
            doc = status.get_json("/api/v1/status")
            t_resp = time.monotonic()
            rtts.append(t_resp - t_req)
            inc = next(i for i in doc["incidents"] if i["id"] == INCIDENT)
            errors, streak = int(inc["errors"]), parse_time(inc["streak_start"])
            for k in range(done, len(probes)):
                p = probes[k]
                if p.counted is None and errors > k:
                    p.counted = t_resp
                if p.moved is None and streak is not None and streak >= p.at - 0.0005:
                    p.moved = t_resp
                if p.counted is None or p.moved is None:
                    p.before = t_req
            while done < len(probes) and probes[done].counted is not None and probes[done].moved is not None:
                done += 1
            if done < len(probes) and t_resp - probes[done].written > 10:
                raise BenchError(f"error line {done} not visible in /api/v1/status after 10 s")
            if writer.error is not None:
                writer.stop()  # raises it
            daemon.proc.check()
            last_req = t_req
            time.sleep(max(0.0, t_req + poll - time.monotonic()))
        cpu = proc_cpu_seconds(daemon.proc.pid) - cpu0
        elapsed = time.monotonic() - t_start
        writer.stop()

    # Both conditions only ever become true and stay true: the later of the two firsts.
    both = [ms(max(p.moved, p.counted) - p.written) for p in probes if p.moved and p.counted]
    counted = [ms(p.counted - p.written) for p in probes if p.counted is not None]
    lower = [ms(max(0.0, (p.before or p.written) - p.written)) for p in probes]
    return {
        "samples": len(both),
        "info_lines_per_s": ctx.info_rate,
        "error_every_s": [0.2, 0.3],
        "poll_ms": ctx.poll_ms,
        "latency_ms": dist(both),
        "counted_ms": dist(counted),
        "lower_bound_ms": dist(lower),
        "poll_period_ms": dist([ms(p) for p in periods]),
        "status_rtt_ms": dist([ms(r) for r in rtts]),
        "daemon_cpu_share": cpu / elapsed,
        "target_p99_ms": TARGETS["latency_p99_ms" if ctx.info_rate else "idle_latency_p99_ms"],
    }


def ms(seconds: float) -> float:
    return seconds * 1000


def dist(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    qs = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else [values[0]] * 99
    return {
        "p50": qs[49],
        "p90": qs[89],
        "p99": qs[98],
        "max": max(values),
        "mean": statistics.fmean(values),
        "min": min(values),
        "n": len(values),
    }


# ---- phases 2 and 3: throughput --------------------------------------------------------


@dataclass
class Throughput:
    tool: str
    command: str
    lines: int
    bytes: int
    wall_s: float
    written_s: float
    """how long the appends themselves took"""
    cpu_s: float
    peak_rss_mb: float
    rss_mb: list[float]
    """RSS sampled every second"""
    errors: int
    errors_by_rule: dict[str, int]
    mismatches: list[str] = field(default_factory=list)

    @property
    def lines_per_s(self) -> float:
        return self.lines / self.wall_s

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.wall_s


def append_writer(corpus: Path, dst: Path) -> Writer:
    def body(halt: threading.Event) -> None:
        with corpus.open("rb", buffering=0) as src:
            fd = os.open(dst, os.O_WRONLY | os.O_APPEND)
            try:
                while not halt.is_set() and (chunk := src.read(WRITE_CHUNK)):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
            finally:
                os.close(fd)

    return Writer("corpus writer", body)


def follow(
    ctx: Context,
    tool: str,
    command: str,
    proc: Proc,
    dst: Path,
    read_counts: Callable[[], tuple[int, dict[str, int]]],
) -> Throughput:
    """Append the corpus to `dst` and poll `read_counts` until `proc` has read every line."""
    want = ctx.truth["lines"]
    assert isinstance(want, int)
    with contextlib.ExitStack() as stack:
        writer = append_writer(ctx.corpus, dst)
        stack.callback(writer.stop)
        rss: list[float] = []
        cpu0 = proc_cpu_seconds(proc.pid)
        t0 = time.monotonic()
        writer.start()
        next_rss, progress, progress_t = t0, -1, t0
        while True:
            proc.check()
            lines, by_rule = read_counts()
            now = time.monotonic()
            if now >= next_rss:
                rss.append(proc_rss_bytes(proc.pid)[0] / 1e6)
                next_rss += 1.0
            if lines >= want:
                break
            if lines != progress:
                progress, progress_t = lines, now
            elif now - progress_t > 30:
                raise BenchError(f"{tool} stalled at {lines:,} of {want:,} lines")
            time.sleep(0.05)
        wall = now - t0
        cpu = proc_cpu_seconds(proc.pid) - cpu0
        peak = proc_rss_bytes(proc.pid)[1] / 1e6
        writer.stop()
        written = (writer.finished_at or now) - t0
    row = Throughput(
        tool, command, lines, ctx.size, wall, written, cpu, peak, rss, sum(by_rule.values()), by_rule
    )
    if lines != want:
        row.mismatches.append(f"lines {lines} != truth {want}")
    expected = ctx.truth["errors_by_rule"]
    assert isinstance(expected, dict)
    for rule in sorted(set(expected) | set(by_rule)):
        if by_rule.get(rule, 0) != expected.get(rule, 0):
            row.mismatches.append(f"{rule}: {by_rule.get(rule, 0)} != truth {expected.get(rule, 0)}")
    return row


def run_watcher_throughput(ctx: Context) -> Throughput:
    with contextlib.ExitStack() as stack:
        daemon = start_daemon(stack, ctx, "throughput")
        metrics = Http(daemon.api.conn.port)
        stack.callback(metrics.close)

        def counts() -> tuple[int, dict[str, int]]:
            text = metrics.request("GET", "/metrics").decode()
            lines = sum(v for labels, v in prom_values(text, "watcher_source_lines_total"))
            by_rule = {
                labels["rule"]: int(v)
                for labels, v in prom_values(text, "watcher_source_errors_total")
                if labels.get("source") == SOURCE
            }
            return int(lines), by_rule

        command = f"{' '.join(ctx.watcher)} run --config <tmp>/watcher.toml"
        with py_spy(ctx, daemon.proc.pid, "throughput"):
            row = follow(ctx, "watcher run", command, daemon.proc, daemon.log, counts)
    return row


@contextlib.contextmanager
def py_spy(ctx: Context, pid: int, phase: str) -> Iterator[None]:
    """py-spy on the daemon for the phase `ctx.spy_phase` names (the profile of a missed goal)."""
    if ctx.py_spy is None or ctx.spy_phase != phase:
        yield
        return
    exe = shutil.which("py-spy") or str(ROOT / ".venv" / "bin" / "py-spy")
    fmt = {".json": "speedscope", ".txt": "raw"}.get(ctx.py_spy.suffix, "flamegraph")
    argv = [exe, "record", "--nonblocking", "--rate", "200", "-p", str(pid), "-f", fmt, "-o", str(ctx.py_spy)]
    with contextlib.ExitStack() as stack:
        spy = start(stack, "py-spy", argv, ctx.workdir / "py-spy.log")
        time.sleep(1.0)  # attached before the first line arrives
        yield
        spy.popen.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
        with contextlib.suppress(subprocess.TimeoutExpired):
            spy.popen.wait(30)


def run_mtail_throughput(ctx: Context) -> Throughput:
    program = mtail.PROGRAMS["mtail, tuned regexes"][0]
    work = ctx.workdir / "mtail"
    work.mkdir()
    log = work / "app.log"
    log.touch()  # mtail starts at the end of a file that exists when it starts: an empty one
    port = free_port()
    argv = mtail.follow_argv(program, log, port)
    with contextlib.ExitStack() as stack:
        proc = start(stack, "mtail", argv, work / "mtail.log")
        api = Http(port)
        stack.callback(api.close)
        wait_for(
            f"mtail tailing {log}",
            lambda: (
                f"Tailing {log}" in proc.log.read_text(errors="replace")
                and isinstance(api.get_json("/json"), list)
            ),
            30,
            alive=proc.check,
            ignore=RETRY,
        )

        def counts() -> tuple[int, dict[str, int]]:
            by_rule, lines, _ = mtail.follow_counts(api.get_json("/json"))
            return lines, by_rule

        command = " ".join(argv).replace(str(work), "<tmp>")
        return follow(ctx, "mtail (follow, tuned program)", command, proc, log, counts)


# ---- phase 4: soak ---------------------------------------------------------------------


def line_offsets(data: mmap.mmap) -> array[int]:
    offsets = array("q", [0])
    pos = data.find(b"\n")
    while pos >= 0:
        offsets.append(pos + 1)
        pos = data.find(b"\n", pos + 1)
    return offsets


def soak_writer(corpus: Path, dst: Path, rate: float, written: list[int], info: bool = False) -> Writer:
    """Corpus lines, cycled (or, with `info`, info lines stamped now: a clean stream), at `rate`
    lines/s in 10 ms batches; `written[0]` counts them."""
    if info:
        return Writer("soak writer", _info_soak(dst, rate, written))

    def body(halt: threading.Event) -> None:
        with corpus.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            offsets = line_offsets(data)
            n = len(offsets) - 1
            fd = os.open(dst, os.O_WRONLY | os.O_APPEND)
            try:
                t0 = time.monotonic()
                while not halt.is_set():
                    due = int((time.monotonic() - t0) * rate) - written[0]
                    while due > 0:
                        i = written[0] % n
                        take = min(due, n - i)
                        os.write(fd, data[offsets[i] : offsets[i + take]])
                        written[0] += take
                        due -= take
                    time.sleep(0.01)
            finally:
                os.close(fd)

    return Writer("soak writer", body)


def _info_soak(dst: Path, rate: float, written: list[int]) -> Callable[[threading.Event], None]:
    def body(halt: threading.Event) -> None:
        fd = os.open(dst, os.O_WRONLY | os.O_APPEND)
        try:
            t0 = time.monotonic()
            while not halt.is_set():
                due = int((time.monotonic() - t0) * rate) - written[0]
                if due > 0:
                    ts = rfc3339_ms(time.time())
                    os.write(fd, "".join(_info_line(ts, written[0] + i) for i in range(due)).encode())
                    written[0] += due
                time.sleep(0.01)
        finally:
            os.close(fd)

    return body


def run_soak(ctx: Context) -> dict[str, object]:
    with contextlib.ExitStack() as stack:
        daemon = start_daemon(stack, ctx, "soak")
        written = [0]
        writer = soak_writer(ctx.corpus, daemon.log, ctx.soak_rate, written, ctx.soak_info)
        stack.callback(writer.stop)
        samples: list[dict[str, float]] = []
        spied = stack.enter_context(contextlib.ExitStack())
        spied.enter_context(py_spy(ctx, daemon.proc.pid, "soak"))
        cpu0, t0 = proc_cpu_seconds(daemon.proc.pid), time.monotonic()
        writer.start()
        next_sample = t0
        while (now := time.monotonic()) < t0 + ctx.soak:
            daemon.proc.check()
            if writer.error is not None:
                writer.stop()
            if now >= next_sample:
                rss, hwm = proc_rss_bytes(daemon.proc.pid)
                samples.append(
                    {
                        "t": round(now - t0, 1),
                        "rss_mb": rss / 1e6,
                        "hwm_mb": hwm / 1e6,
                        "written": written[0],
                        "read": daemon.lines_read(),
                    }
                )
                next_sample += 5.0
            time.sleep(min(0.5, max(0.0, next_sample - time.monotonic())))
        writer.stop()
        elapsed = time.monotonic() - t0
        cpu = proc_cpu_seconds(daemon.proc.pid) - cpu0
        spied.close()
        t_end = time.monotonic()
        wait_for(
            "the daemon to read the soak's last line",
            lambda: daemon.lines_read() >= written[0],
            60,
            ignore=RETRY,
        )
        caught_up = time.monotonic() - t_end
        rss, hwm = proc_rss_bytes(daemon.proc.pid)
        size = daemon.log.stat().st_size
    rss_values = [s["rss_mb"] for s in samples]
    return {
        "seconds": ctx.soak,
        "rate_lines_per_s": ctx.soak_rate,
        "lines": "info lines stamped now" if ctx.soak_info else "the corpus, cycled",
        "lines_written": written[0],
        "bytes_written": size,
        "rss_min_mb": min(rss_values),
        "rss_max_mb": max(rss_values),
        "rss_end_mb": rss / 1e6,
        "peak_rss_mb": hwm / 1e6,
        "daemon_cpu_share": cpu / elapsed,
        "max_backlog_lines": max(s["written"] - s["read"] for s in samples),
        "caught_up_after_s": caught_up,
        "samples": samples,
    }


# ---- report ----------------------------------------------------------------------------


@dataclass
class Context:
    corpus: Path
    truth: dict[str, object]
    size: int
    rules_config: Path
    watcher: list[str]
    workdir: Path
    latency_samples: int
    poll_ms: float
    info_rate: float
    seed: int
    soak: float
    soak_rate: float
    soak_info: bool
    py_spy: Path | None
    spy_phase: str
    """Which run py-spy profiles: the throughput run, or the soak when there is none."""


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def markdown(results: dict[str, Any]) -> str:
    out: list[str] = []
    lat = results.get("latency")
    if isinstance(lat, dict):
        d, poll = lat["latency_ms"], lat["poll_period_ms"]
        out += [
            f"### Latency: error line written -> shown by GET /api/v1/status ({lat['samples']} error lines; "
            f"{lat['info_lines_per_s']:,.0f} info lines/s; an error every 0.2-0.3 s; status polled "
            f"every {lat['poll_ms']:g} ms on one keep-alive connection)",
            "",
            "| delay from write() to | p50 ms | p90 ms | p99 ms | max ms | target |",
            "| --- | ---: | ---: | ---: | ---: | --- |",
            _dist_row("`errors` counts it and `streak_start` moved", d)
            + f" p99 < {lat['target_p99_ms']:.0f} ms: {verdict(d['p99'] < lat['target_p99_ms'])} |",
            _dist_row("`errors` counts it", lat["counted_ms"]) + " |",
            _dist_row("last status that did not show it (lower bound)", lat["lower_bound_ms"]) + " |",
            _dist_row("status poll period (the poll's own contribution <= this)", poll) + " |",
            _dist_row("status request round trip", lat["status_rtt_ms"]) + " |",
            "",
            f"Daemon CPU while following 1,000 lines/s and answering the polls: "
            f"{lat['daemon_cpu_share']:.0%} of one core.",
            "",
        ]
    rows = [r for r in (results.get("watcher"), results.get("mtail")) if isinstance(r, dict)]
    if rows:
        out += [
            f"### Sustained throughput: the {results['corpus_lines']:,}-line corpus "
            f"({results['corpus_bytes'] / 1e6:.0f} MB) appended to a followed, initially empty file",
            "",
            "| tool | wall s | lines/s | MB/s | CPU s | peak RSS MB | errors | matches truth |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for r in rows:
            ok = "yes" if not r["mismatches"] else "**NO: " + "; ".join(r["mismatches"]) + "**"
            out.append(
                f"| {r['tool']} | {r['wall_s']:.2f} | {r['lines_per_s']:,.0f} | {r['mb_per_s']:.1f} | "
                f"{r['cpu_s']:.1f} | {r['peak_rss_mb']:.1f} | {r['errors']:,} | {ok} |"
            )
        out.append("")
        for r in rows:
            out.append(f"- {r['tool']}: RSS every second (MB): " + runs(r["rss_mb"]))
            out.append(f"  - appends done after {r['written_s']:.2f} s; command: `{r['command']}`")
        w = results.get("watcher")
        if isinstance(w, dict):
            out.append(
                f"- watcher lines/s target >= {TARGETS['lines_per_s']:,.0f}: "
                f"{verdict(w['lines_per_s'] >= TARGETS['lines_per_s'])}"
            )
        ratio = results.get("watcher_vs_mtail")
        if isinstance(ratio, float):
            out.append(
                f"- watcher / mtail throughput: {ratio:.2f}x (target >= {TARGETS['vs_mtail']:g}x: "
                f"{verdict(ratio >= TARGETS['vs_mtail'])})"
            )
        out.append("")
    soak = results.get("soak")
    if isinstance(soak, dict):
        out += [
            f"### Soak: {soak['rate_lines_per_s']:,.0f} lines/s for {soak['seconds']:g} s "
            f"({soak['lines_written']:,} lines, {soak['bytes_written'] / 1e6:,.0f} MB)",
            "",
            "| RSS min MB | RSS max MB | peak RSS (VmHWM) MB | daemon CPU | max backlog lines "
            "| caught up after |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| {soak['rss_min_mb']:.1f} | {soak['rss_max_mb']:.1f} | {soak['peak_rss_mb']:.1f} | "
            f"{soak['daemon_cpu_share']:.0%} of a core | {soak['max_backlog_lines']:,} | "
            f"{soak['caught_up_after_s']:.2f} s |",
            "",
            "RSS every 5 s (MB): " + runs([s["rss_mb"] for s in soak["samples"]]),
            "",
        ]
    code = results.get("code", {})
    if code:
        dirty = code["uncommitted_in_watcher"]
        out.append(
            f"Daemon code: {code['head']}"
            + (f" plus uncommitted changes to {', '.join(dirty)}" if dirty else " (clean)")
        )
    codes = results.get("exit_codes_on_sigterm", [])
    if codes:
        out.append("Exit codes on SIGTERM: " + ", ".join(f"{n} {c}" for n, c in codes if n != "py-spy"))
    for phase, reason in results.get("failed", {}).items():
        out.append(f"- **{phase} failed**: {reason}")
    return "\n".join(out).rstrip() + "\n"


def runs(values: Sequence[float]) -> str:
    """`60, 69 x120`: whole MB, repeats collapsed, so a flat series reads as flat."""
    out: list[list[int]] = []
    for v in values:
        mb = round(v)
        if out and out[-1][0] == mb:
            out[-1][1] += 1
        else:
            out.append([mb, 1])
    return ", ".join(f"{mb}" if n == 1 else f"{mb} x{n}" for mb, n in out)


def _dist_row(label: str, d: Mapping[str, float]) -> str:
    return f"| {label} | {d['p50']:.1f} | {d['p90']:.1f} | {d['p99']:.1f} | {d['max']:.1f} |"


def versions() -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        try:
            p = subprocess.run(argv, capture_output=True, text=True, check=False)
        except OSError:
            return "not installed"
        return (p.stdout or p.stderr).partition("\n")[0]

    return {
        "mtail": first_line(["mtail", "--version"]),
        "python": platform.python_version(),
        "cpus": str(os.cpu_count()),
        "kernel": platform.release(),
    }


def code_state() -> dict[str, object]:
    """Which daemon was measured: HEAD and the files under watcher/ that differ from it."""

    def git(*argv: str) -> str:
        try:
            p = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False)
        except OSError:
            return ""
        return p.stdout.strip()

    dirty = [line[3:] for line in git("status", "--porcelain", "--", "watcher").splitlines()]
    return {"head": git("rev-parse", "--short", "HEAD"), "uncommitted_in_watcher": dirty}


# ---- main ------------------------------------------------------------------------------


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if shutil.which("mtail") is None and not args.no_mtail:
        print("mtail is not installed (apt-get install mtail), or pass --no-mtail", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)  # cleanup runs as for Ctrl-C
    truth = ensure_corpus(args.corpus, args.lines, args.seed)
    size = warm_cache(args.corpus)
    results: dict[str, Any] = {
        "corpus": str(args.corpus),
        "corpus_lines": truth["lines"],
        "corpus_bytes": size,
        "truth_errors_by_rule": truth["errors_by_rule"],
        "targets": TARGETS,
        "versions": versions(),
        "code": code_state(),
        "failed": {},
    }
    with _workdir(args.keep) as workdir:
        ctx = Context(
            corpus=args.corpus,
            truth=truth,
            size=size,
            rules_config=args.config,
            watcher=watcher_argv(args.watcher)[0],
            workdir=workdir,
            latency_samples=args.latency_samples,
            poll_ms=args.poll_ms,
            info_rate=args.info_rate,
            seed=args.seed,
            soak=args.soak,
            soak_rate=args.soak_rate,
            soak_info=args.soak_info,
            py_spy=args.py_spy,
            spy_phase="soak" if args.no_throughput else "throughput",
        )
        phases: list[tuple[str, Callable[[], object]]] = []
        if args.latency_samples > 0:
            phases.append(("latency", lambda: run_latency(ctx)))
        if not args.no_throughput:
            phases.append(("watcher", lambda: _row(run_watcher_throughput(ctx))))
        if not args.no_mtail and not args.no_throughput:
            phases.append(("mtail", lambda: _row(run_mtail_throughput(ctx))))
        if args.soak > 0:
            phases.append(("soak", lambda: run_soak(ctx)))
        for name, phase in phases:
            print(f"{name} ...", file=sys.stderr, flush=True)
            try:
                results[name] = phase()
            except (BenchError, OSError, http.client.HTTPException, ValueError, KeyError) as exc:
                results["failed"][name] = str(exc) or repr(exc)
                print(f"{name} failed: {results['failed'][name]}", file=sys.stderr)
    results["exit_codes_on_sigterm"] = EXIT_CODES
    w, m = results.get("watcher"), results.get("mtail")
    if isinstance(w, dict) and isinstance(m, dict):
        results["watcher_vs_mtail"] = w["lines_per_s"] / m["lines_per_s"]
    print(markdown(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    bad = [r["tool"] for r in (w, m) if isinstance(r, dict) and r["mismatches"]]
    return 1 if results["failed"] or bad else 0


def _row(row: Throughput) -> dict[str, object]:
    return asdict(row) | {"lines_per_s": row.lines_per_s, "mb_per_s": row.mb_per_s}


@contextlib.contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="watcher-daemon-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--lines", type=int, default=2_000_000, help="corpus size (bench/corpus.py)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--corpus", type=Path, default=ROOT / "bench" / "out" / "corpus.log")
    ap.add_argument("--config", type=Path, default=ROOT / "config" / "watcher.toml", help="rules from here")
    ap.add_argument("--watcher", type=Path, default=ROOT / ".venv" / "bin" / "watcher")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "daemon.json")
    ap.add_argument("--latency-samples", type=int, default=240, help="error lines to time (0: skip)")
    ap.add_argument("--poll-ms", type=float, default=5.0, help="GET /api/v1/status interval")
    ap.add_argument("--info-rate", type=float, default=1000.0, help="info lines/s during the latency run")
    ap.add_argument("--soak", type=float, default=60.0, help="seconds of steady stream (0: skip)")
    ap.add_argument("--soak-rate", type=float, default=50_000.0, help="lines/s during the soak")
    ap.add_argument(
        "--soak-info", action="store_true", help="soak with info lines stamped now, not the corpus"
    )
    ap.add_argument("--no-mtail", action="store_true", help="skip mtail")
    ap.add_argument("--no-throughput", action="store_true", help="skip the throughput phases (and mtail)")
    ap.add_argument(
        "--py-spy",
        type=Path,
        help="py-spy the daemon's throughput run (the soak with --no-throughput) into this SVG"
        " (.json: speedscope, .txt: collapsed stacks)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, daemon logs)")
    return ap.parse_args(argv)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # everything started was stopped on the way out
        print("interrupted", file=sys.stderr)
        sys.exit(130)
