"""`watcher demo`: a whole incident in about a minute, on generated logs, before configuring anything.

Nothing here simulates the watcher. A temporary directory gets a config with two
file sources and their logs; the real `watcher run` starts on it as a process; a
thread writes the logs (healthy, then failing, then healthy after the "rollback",
then one regression); and every step is the real command a user types, run as a
process and shown with its output: `incident open`, `snapshot --then` (the rollback is
a `touch` standing in for `docker compose up -d`), the live `status` view while the
streak fills, `timeline`, `incident close`. It needs no Docker and no SSH. It exits 0
when the daemon said RESOLVED and then REGRESSED, as the scenario means it to.
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from watcher.cli.base import Command, command, err, escape, new_app, out
from watcher.errors import DaemonError, InputError

if TYPE_CHECKING:
    from watcher.schema import IncidentDoc

cli = new_app()
INCIDENT = "DEMO-checkout-502"
FAILING_FOR = 3.0
"""Seconds of errors before the rollback."""
EVERY = 0.2
"""Seconds between two generated lines of a log."""


@cli.command("demo", cls=Command)
@command
def demo(
    window: Annotated[
        str, typer.Option("--window", metavar="DURATION", help="Clean window the demo incident needs.")
    ] = "45s",
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the temporary directory (logs, state, config).")
    ] = False,
) -> None:
    """See the watcher work in about a minute: generated logs, an incident resolved, then regressed.

    Runs the real daemon and the real commands on logs it writes in a temporary directory;
    needs no Docker and no SSH. Exit 0 when the verdicts are the expected ones.
    """
    from watcher.times import positive_duration

    try:
        span = positive_duration(window)
    except ValueError as exc:
        raise InputError(f"--window: {exc}") from None
    root = Path(tempfile.mkdtemp(prefix="watcher-demo-"))
    try:
        ok = Demo(root, span).run()
    finally:
        if keep:
            err.print(f"kept {escape(str(root))} (config, logs, state, daemon.log)")
        else:
            shutil.rmtree(root, ignore_errors=True)
    raise typer.Exit(0 if ok else 1)


class Logs:
    """Writes the two logs in the background: `fail()`, healthy again once `rolled_back` exists
    (after one request still in flight), and `regress()` writes one more error."""

    def __init__(self, root: Path) -> None:
        self.api, self.edge = root / "api.log", root / "edge.log"
        self.rolled_back = root / "rolled-back"
        self._failing = threading.Event()
        self._regress = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write, name="demo logs", daemon=True)

    def fail(self) -> None:
        self._failing.set()

    def regress(self) -> None:
        self._regress.set()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        self._line(self.api, "info", 200, "GET /api/v1/checkout")
        self.edge.write_text("")
        self._thread.start()
        try:
            yield
        finally:
            self._stop.set()
            self._thread.join(5)

    def _write(self) -> None:
        straggler = True
        while not self._stop.wait(EVERY):
            failing = self._failing.is_set() and not self.rolled_back.exists()
            if self._failing.is_set() and not failing and straggler:
                straggler = False  # a request that was already in flight during the rollback
                failing = True
            if self._regress.is_set():
                self._regress.clear()
                failing = True
            if failing:
                self._line(self.api, "error", 502, "upstream timeout: checkout-v2 backend")
            else:
                self._line(self.api, "info", 200, "GET /api/v1/checkout")
            stamp = _now()
            with self.edge.open("a") as fh:
                fh.write(f'ts={stamp} level=info msg="stream ok" camera=4\n')

    @staticmethod
    def _line(path: Path, level: str, status: int, msg: str) -> None:
        with path.open("a") as fh:
            fh.write(json.dumps({"ts": _now(), "level": level, "status": status, "msg": msg}) + "\n")


def _now() -> str:
    from watcher.times import format_time

    return format_time(time.time()) or ""


class Demo:
    def __init__(self, root: Path, window: float) -> None:
        from watcher.cli.client import Client
        from watcher.config.endpoint import Endpoint
        from watcher.times import format_duration

        self.root, self.window, self.shown_window = root, window, format_duration(window)
        self.logs = Logs(root)
        self.cfg = root / "watcher.toml"
        self.port = _free_port()
        self.client = Client(Endpoint(self.cfg, f"127.0.0.1:{self.port}", root / "state", "from the demo"))
        self.env = {k: v for k, v in os.environ.items() if not k.upper().startswith("WATCHER_")}

    def run(self) -> bool:
        self._write_config()
        out.print(
            f"[bold]watcher demo[/bold]: a whole incident on generated logs in {escape(str(self.root))}"
        )
        with self.logs.running(), self._daemon():
            self._step(1, "The daemon: one line per source, what it reads and its state")
            self._until("the start-up report", lambda: "sources up" in self._daemon_log())
            for line in self._daemon_log().splitlines():
                if " source " in line or "sources up" in line:
                    out.print(f"  {escape(line)}", style="dim")
            self._step(2, "Errors start: open the incident")
            self.logs.fail()
            self._cli(
                "incident",
                "open",
                INCIDENT,
                "--title",
                "Checkout API returns 502",
                "--window",
                self.shown_window,
            )
            errors = round(FAILING_FOR / EVERY)
            self._until(f"{errors} errors", lambda: self._incident()["errors"] >= errors, FAILING_FOR + 30)
            self._cli("status")
            self._step(3, "Snapshot the logs, then roll back (here: a touch standing in for docker compose)")
            self._cli(
                "snapshot",
                "--incident",
                INCIDENT,
                "--since",
                "10m",
                "--reason",
                "before rollback",
                "--then",
                "--",
                "touch",
                str(self.logs.rolled_back),
            )
            self._step(4, f"The streak: resolved after {self.shown_window} without an error, in event time")
            out.print("[bold]$ watcher status --watch[/bold]  (the same view, live)")
            self._watch("resolved")
            self._step(5, "One more error: a regression")
            self.logs.regress()
            self._watch("regressed")
            self._step(6, "The timeline, for the postmortem")
            self._cli("incident", "close", INCIDENT, "--reason", "demo over")
            self._cli("timeline", INCIDENT)
            return self._verdict()

    # ---- the pieces -------------------------------------------------------------------

    def _write_config(self) -> None:
        self.cfg.write_text(
            f'state_dir = "{self.root / "state"}"\n'
            f'[http]\nlisten = "127.0.0.1:{self.port}"\n'
            f'[resolution]\nwindow = "{self.shown_window}"\nblind_after = "5s"\n'
            f'[[sources]]\nname = "api"\nkind = "file"\npath = "{self.logs.api}"\n'
            f'[[sources]]\nname = "edge"\nkind = "file"\npath = "{self.logs.edge}"\n'
            '[[rules]]\nname = "level"\nfield = "level"\nvalues = ["error", "fatal"]\n'
            '[[rules]]\nname = "http-5xx"\nfield = "status"\nmin = 500\nmax = 599\n'
        )

    @contextlib.contextmanager
    def _daemon(self) -> Iterator[None]:
        with (self.root / "daemon.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "watcher", "run", "--config", str(self.cfg)],
                stdout=log,
                stderr=log,
                env=self.env,
            )
        try:
            self._until("the daemon", self._answers, 30, alive=proc)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _answers(self) -> bool:
        try:
            self.client.status()
        except DaemonError:
            return False
        return True

    def _daemon_log(self) -> str:
        return (self.root / "daemon.log").read_text(errors="replace")

    def _incident(self) -> "IncidentDoc":
        return next(i for i in self.client.status()["incidents"] if i["id"] == INCIDENT)

    def _cli(self, *args: str) -> None:
        shown = " ".join(a if " " not in a else repr(a) for a in args)
        out.print(f"[bold]$ watcher {escape(shown)}[/bold]")
        argv = list(args)
        before = argv.index("--") if "--" in argv else len(argv)  # options come before --then's command
        argv[before:before] = ["--config", str(self.cfg)]
        done = subprocess.run(
            [sys.executable, "-m", "watcher", *argv],
            capture_output=True,
            text=True,
            env=self.env,
        )
        for stream in (done.stdout, done.stderr):
            for line in stream.rstrip().splitlines():
                out.print(f"  {escape(line)}", markup=True, highlight=False)
        if done.returncode != 0:
            raise DaemonError(f"`watcher {shown}` failed with exit status {done.returncode}")

    def _watch(self, state: str) -> None:
        """The live status view (a progress line when not on a terminal) until the incident is `state`."""
        from watcher.cli.status_view import status_view

        deadline = time.monotonic() + self.window + 60
        last_line = 0.0
        with contextlib.ExitStack() as stack:
            live = None
            if out.is_terminal:
                from watcher.cli.watch import live_view

                live = stack.enter_context(live_view())
            while True:
                doc = self.client.status()
                incident = self._incident()
                if live is not None:
                    live.update(status_view(doc), refresh=True)
                elif time.monotonic() - last_line > 5 or incident["state"] == state:
                    last_line = time.monotonic()
                    # The streak runs on past the window once resolved; the verdict is about the window.
                    clean = min(incident["clean_streak"], incident["window"])
                    out.print(f"  {incident['state']}: clean {clean:.0f}s of {self.shown_window}")
                if incident["state"] == state:
                    return
                if time.monotonic() > deadline:
                    raise DaemonError(f"the demo incident did not become {state} in time")
                time.sleep(0.5)

    def _verdict(self) -> bool:
        kinds = [e["kind"] for e in self.client.timeline(INCIDENT)["events"]]
        expected = ["opened", "snapshot", "mitigated", "streak_reset", "resolved", "regressed", "closed"]
        seen = [k for k in kinds if k in expected]
        ok = all(k in seen for k in expected) and seen.index("resolved") < seen.index("regressed")
        verdict = "as expected" if ok else f"NOT as expected (saw {', '.join(kinds)})"
        out.print(f"\n[bold]demo verdicts[/bold]: RESOLVED, then REGRESSED: {verdict}")
        out.print(
            "Next: describe your sources in config/watcher.toml, `watcher check-config`, then `make run` "
            "(or the systemd unit); the README's incident workflow is what you just saw."
        )
        return ok

    def _step(self, n: int, text: str) -> None:
        out.print(f"\n[bold cyan]{n}/6[/bold cyan] {escape(text)}")

    def _until(
        self,
        what: str,
        pred: Callable[[], bool],
        timeout: float = 30,
        alive: subprocess.Popen[bytes] | None = None,
    ) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if alive is not None and alive.poll() is not None:
                raise DaemonError(
                    f"the demo daemon exited; its log: {self.root / 'daemon.log'}\n{self._daemon_log()}"
                )
            if time.monotonic() > deadline:
                raise DaemonError(f"timed out waiting for {what}")
            time.sleep(0.1)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
