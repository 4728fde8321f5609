"""How long a CLI command that talks to the daemon takes, next to the interpreter's own start.

Starts the real `watcher run` (one file source, state in a temporary directory, the
API on a free loopback port), opens an incident, then times each command as a
subprocess, best and median of `--repeat` runs, in the same run as the baselines:
`python -c pass` (the interpreter and site-packages) and `python -c "import typer,
rich.console"` (the two libraries every command needs). `--watcher BIN` times another
installation's entry point against the same daemon (e.g. an older checkout, for a
before/after); `--installed` also builds this checkout as `make install-system` installs it
(a venv of its own, not editable, no test extras: no editable-install finder or coverage
hook in site-packages) and times that entry point and its `python -c pass`. Ends with the
slowest imports of `watcher status` by `python -X importtime`.

    .venv/bin/python bench/cli_startup.py [--repeat 15] [--watcher /other/.venv/bin/watcher] [--installed]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import free_port, wait_for

TARGET_MS = 150.0
INCIDENT = "P1-bench-startup"


def _time(argv: Sequence[str], repeat: int, env: dict[str, str]) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) seconds of each of `repeat` runs; a failing run is an error.

    CPU time is the steadier figure on a shared machine: it does not count waiting for a core."""
    walls, cpus = [], []
    subprocess.run(argv, capture_output=True, env=env, check=False)  # warm: caches, bytecode written
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, env=env, check=False)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return walls, cpus


@contextmanager
def _daemon(watcher: Path, tmp: Path) -> Iterator[Path]:
    log = tmp / "app.log"
    log.write_text('{"level":"info","msg":"up"}\n')
    cfg = tmp / "watcher.toml"
    cfg.write_text(
        f'state_dir = "{tmp / "state"}"\n[http]\nlisten = "127.0.0.1:{free_port()}"\n'
        f'[[sources]]\nname = "app"\nkind = "file"\npath = "{log}"\n'
        '[[rules]]\nname = "level"\nfield = "level"\nvalues = ["error"]\n'
    )
    proc = subprocess.Popen([str(watcher), "run", "--config", str(cfg)], stderr=subprocess.DEVNULL)
    try:
        wait_for(
            "the daemon's API token",
            lambda: (tmp / "state" / "api-token").exists(),
            30,
            alive=lambda: _alive(proc),
        )
        yield cfg
    finally:
        proc.terminate()
        proc.wait(15)


def _alive(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        raise SystemExit(f"the daemon exited with status {proc.returncode}")


def _install(venv: Path, env: dict[str, str]) -> Path:
    """This checkout in a venv of its own, as released (what install-system does)."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    checkout = Path(__file__).resolve().parents[1]
    pip = [str(venv / "bin/pip"), "install", "--quiet", "--disable-pip-version-check", str(checkout)]
    subprocess.run(pip, check=True, env=env, capture_output=True)
    return venv / "bin/watcher"


def _commands(watcher: str, cfg: Path) -> dict[str, list[str]]:
    c = ["--config", str(cfg)]
    return {
        "watcher --version": [watcher, "--version"],
        "watcher status": [watcher, "status", *c],
        "watcher status --json": [watcher, "status", "--json", *c],
        "watcher timeline ID": [watcher, "timeline", INCIDENT, *c],
        "watcher incident mitigate ID": [watcher, "incident", "mitigate", INCIDENT, "--action", "bench", *c],
    }


def _slowest_imports(python: str, cfg: Path, env: dict[str, str], n: int = 8) -> list[tuple[int, str]]:
    """Cumulative microseconds of the `n` slowest top-level imports of `watcher status`."""
    code = (
        "import sys; from watcher.cli import app; sys.argv=['watcher','status','--config',sys.argv[1]]; app()"
    )
    done = subprocess.run(
        [python, "-X", "importtime", "-c", code, str(cfg)], capture_output=True, text=True, env=env
    )
    rows = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit() and not parts[2].startswith("   "):
            rows.append((int(parts[1]), parts[2].strip()))
    return sorted(rows, reverse=True)[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--watcher", type=Path, action="append", default=[], help="another entry point to time")
    ap.add_argument("--installed", action="store_true", help="also time a non-editable install")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    own = Path(sys.executable).with_name("watcher")
    # As a user runs it: no WATCHER_* override, and bytecode cached (a user's install has it).
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("WATCHER_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    python = sys.executable
    results: dict[str, dict[str, float]] = {}

    def record(label: str, runs: tuple[list[float], list[float]]) -> None:
        walls, cpus = runs
        results[label] = {
            "best_ms": min(walls) * 1000,
            "median_ms": statistics.median(walls) * 1000,
            "cpu_median_ms": statistics.median(cpus) * 1000,
        }

    with tempfile.TemporaryDirectory() as tmp, _daemon(own, Path(tmp)) as cfg:
        others = list(args.watcher)
        if args.installed:
            others.append(_install(Path(tmp) / "installed", env))
            record(
                f"python -c pass [{others[-1].parent}]",
                _time([str(others[-1].with_name("python")), "-c", "pass"], args.repeat, env),
            )
        subprocess.run(
            [str(own), "incident", "open", INCIDENT, "--title", "bench", "--config", str(cfg)],
            check=True,
            capture_output=True,
            env=env,
        )
        record("python -c pass", _time([python, "-c", "pass"], args.repeat, env))
        floor = [python, "-c", "import typer, rich.console"]
        record("python -c 'import typer, rich.console'", _time(floor, args.repeat, env))
        for bin_ in [own, *others]:
            tag = "" if bin_ == own else f" [{bin_}]"
            for label, argv in _commands(str(bin_), cfg).items():
                record(label + tag, _time(argv, args.repeat, env))
        imports = _slowest_imports(python, cfg, env)
    load = os.getloadavg()[0]
    if args.json:
        print(json.dumps({"results": results, "slowest_imports_us": imports, "load": load}))
        return
    print(f"load average {load:.2f}; {args.repeat} runs each; target < {TARGET_MS:.0f} ms\n")
    print("| command | wall best ms | wall median ms | CPU median ms |\n| --- | ---: | ---: | ---: |")
    for label, r in results.items():
        print(f"| `{label}` | {r['best_ms']:.0f} | {r['median_ms']:.0f} | {r['cpu_median_ms']:.0f} |")
    print("\nslowest imports of `watcher status` (python -X importtime, cumulative):")
    for us, name in imports:
        print(f"  {us / 1000:7.1f} ms  {name}")


if __name__ == "__main__":
    main()
