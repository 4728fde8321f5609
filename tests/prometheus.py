"""A real Prometheus (Debian's) for the tests: started on a loopback port, queried, stopped.

Every server gets its own config, TSDB directory and port under the test's tmp
directory; nothing is read from /etc/prometheus. Waits poll a condition with a
deadline (tests/support.py).
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import require_binary
from tests.support import free_port, wait_for

Sample = dict[str, Any]
"""One element of an instant query's result: {"metric": {...}, "value": [t, "v"]}."""


class QueryError(Exception):
    """Prometheus refused the query (it does not parse, or failed)."""


@dataclass
class Prometheus:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, expr: str) -> list[Sample]:
        """An instant query now; QueryError when Prometheus refuses it."""
        return list(self._get("/api/v1/query", {"query": expr})["result"])

    def value(self, expr: str, **labels: str) -> float | None:
        """The value of the one sample of `expr` whose labels include `labels`; None if none."""
        for sample in self.query(expr):
            if all(sample["metric"].get(k) == v for k, v in labels.items()):
                return float(sample["value"][1])
        return None

    def alerts(self) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/alerts", {})["alerts"])

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                doc = json.load(resp)
        except urllib.error.HTTPError as exc:  # 400/422: the query is wrong
            body = json.load(exc)
            raise QueryError(f"{body.get('errorType')}: {body.get('error')}") from None
        if doc.get("status") != "success":
            raise QueryError(str(doc))
        data: dict[str, Any] = doc["data"]
        return data

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                return bool(resp.status == 200)
        except urllib.error.HTTPError:
            return False


@contextmanager
def prometheus(workdir: Path, config: str, *, lookback: str = "5m") -> Iterator[Prometheus]:
    """A Prometheus with `config` (YAML) in `workdir`, ready to query; stopped on exit."""
    binary = require_binary("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "prometheus.yml").write_text(config)
    port = free_port()
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--query.lookback-delta={lookback}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Prometheus(port, proc)
    try:
        wait_for("prometheus to be ready", server.ready, 30, alive=lambda: _alive(proc, workdir))
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _alive(proc: subprocess.Popen[bytes], workdir: Path) -> None:
    if proc.poll() is not None:
        raise RuntimeError(f"prometheus exited: {(workdir / 'prometheus.log').read_text()[-2000:]}")
