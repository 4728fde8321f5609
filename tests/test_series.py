"""Families written straight to the text format (watcher.series)."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from watcher.series import Family


def parsed(family: Family) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: list[str] = []
    family.render(out)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families("".join(out))
        for s in fam.samples
    }


class TestFamily:
    def test_renders_what_the_parser_reads_back(self) -> None:
        """Label values with quotes, backslashes and newlines are escaped; values round-trip."""
        f = Family("x_total", "Doc with \\ and\nnewline.", ["source", "rule"], "counter")
        f.inc(("gw/a", 'say "hi"'), 3)
        f.inc(("c:\\d", "line\nbreak"))
        f.set(("big", "r"), 1_795_000_000.125)
        assert parsed(f) == {
            ("x_total", (("rule", 'say "hi"'), ("source", "gw/a"))): 3.0,
            ("x_total", (("rule", "line\nbreak"), ("source", "c:\\d"))): 1.0,
            ("x_total", (("rule", "r"), ("source", "big"))): 1_795_000_000.125,
        }

    def test_text_is_prometheus_clients_byte_for_byte(self) -> None:
        """Labels in name order, values as prometheus_client spells them (1.795e+09, 3.0): a
        reader that matched lines of the previous exposition still finds them."""
        f = Family("w_total", "Doc.", ["source", "reason"], "counter")
        f.inc(("gw/a", "bad_utf8"), 3)
        f.set(("gw/b", "truncated"), 1_795_000_000.125)
        g = Family("g", "Doc.", ["z", "a"], "gauge")
        g.set(("1", "2"), 0.5)
        g.set(("3", "4"), math.inf)
        texts = []
        for family in (f, g):
            registry = CollectorRegistry()
            registry.register(family)
            out: list[str] = []
            family.render(out)
            texts.append("".join(out))
            assert texts[-1].encode() == generate_latest(registry)
        assert 'w_total{reason="bad_utf8",source="gw/a"} 3.0\n' in texts[0]
        assert 'w_total{reason="truncated",source="gw/b"} 1.795000000125e+09\n' in texts[0]

    def test_every_kind_of_value_is_spelled_as_prometheus_client_does(self) -> None:
        """Around the cheap path's edge (a million), tiny, negative, huge, infinite and NaN."""
        f = Family("v", "d", ["k"], "gauge")
        values = [0.0, -0.0, 1e-7, -3.5, 999_999.99, 1e6, 1_795_000_000.5, 1e16, 1e22, -1e22]
        values += [math.inf, -math.inf, math.nan]
        for i, v in enumerate(values):
            f.set(str(i), v)
        registry = CollectorRegistry()
        registry.register(f)
        out: list[str] = []
        f.render(out)
        assert "".join(out).encode() == generate_latest(registry)

    def test_special_values_and_removal(self) -> None:
        """Infinities and NaN are written as Prometheus spells them; a removed series is gone."""
        f = Family("g", "d", ["k"], "gauge")
        f.set("inf", math.inf)
        f.set("ninf", -math.inf)
        f.set("nan", math.nan)
        f.set("gone", 1.0)
        f.remove("gone")
        f.remove("never")
        out: list[str] = []
        f.render(out)
        assert "".join(out).splitlines()[2:] == ['g{k="inf"} +Inf', 'g{k="ninf"} -Inf', 'g{k="nan"} NaN']

    def test_collect_matches_render(self) -> None:
        """A registry reads the same series through collect() as the text holds."""
        registry = CollectorRegistry()
        f = Family("y_total", "d", ["source"], "counter")
        registry.register(f)
        f.inc("a", 2)
        f.ensure("b")
        assert registry.get_sample_value("y_total", {"source": "a"}) == 2
        assert registry.get_sample_value("y_total", {"source": "b"}) == 0
        assert parsed(f) == {("y_total", (("source", "a"),)): 2.0, ("y_total", (("source", "b"),)): 0.0}

    def test_wrong_labels_and_names_are_refused(self) -> None:
        """A key with the wrong number of values, or a counter not named *_total, raises."""
        with pytest.raises(ValueError, match="_total"):
            Family("z", "d", [], "counter")
        f = Family("g", "d", ["a", "b"], "gauge")
        with pytest.raises(ValueError, match="has labels a, b"):
            f.set("only-one", 1.0)


class TestHistogram:
    def test_text_is_prometheus_clients_without_created(self) -> None:
        """Buckets cumulative with `le` as prometheus_client spells them, then _count and _sum;
        the same text as its own Histogram's, less the `_created` series."""
        from prometheus_client import Histogram as ClientHistogram

        from watcher.series import Histogram

        ours = Histogram("t_seconds", "Doc.", [300.0, 1800.0, 86400.0])
        theirs_registry = CollectorRegistry()
        theirs = ClientHistogram(
            "t_seconds", "Doc.", buckets=[300.0, 1800.0, 86400.0], registry=theirs_registry
        )
        for value in (240.0, 1500.0, 1500.0, 90_000.0, 300.0):
            ours.observe(value)
            theirs.observe(value)
        out: list[str] = []
        ours.render(out)
        expected = [
            ln for ln in generate_latest(theirs_registry).decode().splitlines() if "_created" not in ln
        ]
        assert "".join(out).splitlines() == expected
        registry = CollectorRegistry()
        registry.register(ours)
        assert registry.get_sample_value("t_seconds_bucket", {"le": "1800.0"}) == 4
        assert registry.get_sample_value("t_seconds_count") == 5
