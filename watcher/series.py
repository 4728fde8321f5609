"""Labelled gauges and counters kept as plain floats and written straight to the text format.

prometheus_client builds a `Sample` tuple per series and formats each label set
again on every scrape: about 15 µs a series, so a watcher with 1,000 sources (16,561
series) took 270 ms to render `/metrics`. A `Family` formats each series' name and
labels once, when the series is created, and a scrape only appends the values: 11 ms
(bench/metrics_bench.py). The text is prometheus_client's own, byte for byte (labels in
name order, values spelled by its `floatToGoString`), so nothing a reader matched
changes. It is also a registry `Collector`, so `collect()`-based readers
(`registry.get_sample_value`, the tests) see the same series.

A `Key` is the label values in the family's label order: a str for a family with one
label, a tuple otherwise. Not thread-safe: the daemon updates and renders its metrics on
its event loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

Key = str | tuple[str, ...]

_spelled: Callable[[float], str] = floatToGoString
"""A value as prometheus_client writes it (the function is untyped there)."""


class Family(Collector):
    """One metric family: its series by label values."""

    def __init__(self, name: str, doc: str, labels: Sequence[str], kind: Literal["gauge", "counter"]) -> None:
        if kind == "counter" and not name.endswith("_total"):
            raise ValueError(f"a counter's name ends in _total: {name}")
        self.name = name
        self.doc = doc
        self.kind = kind
        self.labels = tuple(labels)
        self.values: dict[Key, float] = {}
        self._prefix: dict[Key, str] = {}
        help_text = doc.replace("\\", "\\\\").replace("\n", "\\n")
        self._head = f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"

    def set(self, key: Key, value: float) -> None:
        if key not in self.values:
            self._prefix[key] = self._series(key)
        # A float always (an int 3 would be written "3", prometheus_client writes "3.0"); a
        # float plus anything inc() adds stays one.
        self.values[key] = float(value)

    def inc(self, key: Key, by: float = 1.0) -> None:
        value = self.values.get(key)
        if value is None:
            self.set(key, by)
        else:
            self.values[key] = value + by

    def ensure(self, key: Key) -> None:
        """The series of `key` exists (at 0 when new)."""
        if key not in self.values:
            self.set(key, 0.0)

    def get(self, key: Key) -> float | None:
        return self.values.get(key)

    def remove(self, key: Key) -> None:
        """No series for `key` (none is fine)."""
        self.values.pop(key, None)
        self._prefix.pop(key, None)

    def render(self, out: list[str]) -> None:
        """The family in the Prometheus text format (0.0.4), appended to `out`."""
        out.append(self._head)
        prefix = self._prefix
        # Below a million (and not NaN or -Inf) Python's repr is prometheus_client's spelling,
        # five times cheaper than calling it for each of 16,000 values.
        out.extend(
            [
                f"{prefix[k]}{v!r}\n" if -math.inf < v < 1e6 else f"{prefix[k]}{_spelled(v)}\n"
                for k, v in self.values.items()
            ]
        )

    def describe(self) -> Iterable[Metric]:
        return [self._metric()]

    def collect(self) -> Iterable[Metric]:
        metric = self._metric()
        for key, value in list(self.values.items()):
            metric.add_metric(list(_tuple(key)), value)
        return [metric]

    def _metric(self) -> GaugeMetricFamily | CounterMetricFamily:
        if self.kind == "counter":
            return CounterMetricFamily(self.name, self.doc, labels=self.labels)
        return GaugeMetricFamily(self.name, self.doc, labels=self.labels)

    def _series(self, key: Key) -> str:
        values = _tuple(key)
        if len(values) != len(self.labels):
            raise ValueError(f"{self.name} has labels {', '.join(self.labels)}, got {values!r}")
        if not values:
            return f"{self.name} "
        pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(zip(self.labels, values, strict=True)))
        return f"{self.name}{{{pairs}}} "


class Histogram(Collector):
    """A histogram without labels (its `le` buckets, `_sum` and `_count`), written like a
    `Family`. prometheus_client's would also export a `_created` series."""

    def __init__(self, name: str, doc: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.doc = doc
        self.bounds = (*sorted(buckets), math.inf)
        self.counts = [0] * len(self.bounds)
        """Per bucket, the observations up to its bound and above the one before."""
        self.sum = 0.0
        help_text = doc.replace("\\", "\\\\").replace("\n", "\\n")
        self._head = f"# HELP {name} {help_text}\n# TYPE {name} histogram\n"

    def observe(self, value: float) -> None:
        self.counts[next(i for i, bound in enumerate(self.bounds) if value <= bound)] += 1
        self.sum += value

    def render(self, out: list[str]) -> None:
        out.append(self._head)
        out.extend(f'{self.name}_bucket{{le="{le}"}} {float(n)!r}\n' for le, n in self._cumulative())
        out.append(f"{self.name}_count {float(sum(self.counts))!r}\n")
        out.append(f"{self.name}_sum {_spelled(self.sum)}\n")

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self.name, self.doc)]

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self.name, self.doc)
        family.add_metric([], [(le, float(n)) for le, n in self._cumulative()], self.sum)
        return [family]

    def _cumulative(self) -> list[tuple[str, int]]:
        total, out = 0, []
        for bound, n in zip(self.bounds, self.counts, strict=True):
            total += n
            out.append((_spelled(bound), total))
        return out


def _tuple(key: Key) -> tuple[str, ...]:
    return (key,) if isinstance(key, str) else key


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
