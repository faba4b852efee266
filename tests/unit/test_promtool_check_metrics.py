"""A real HTTP scrape with every catalogue metric populated passes `promtool check metrics`.

promtool's linter warns (exit 0 but output, or exit 1 on problems in newer
versions) about counters without ``_total``, non-base units, missing help,
reserved label names and more. We require no output at all.
"""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from meshwatch.instrumentation.catalogue import CATALOGUE, MetricDef, MetricType
from meshwatch.instrumentation.prometheus import PrometheusExporter, serve_metrics
from meshwatch.instrumentation.values import (
    CounterStore,
    Exemplar,
    GaugeStore,
    HistogramStore,
    MetricFamilySnapshot,
)

pytestmark = pytest.mark.promtool

# Label values that stress the escaping: quotes, backslashes, newlines, non-ASCII.
AWKWARD = ('did:mesh:"quoted"', "back\\slash", "multi\nline", "ünïcødé-名前")


class CatalogueSource:
    """One populated store per catalogue metric (opt-in labels on where declared)."""

    def __init__(self) -> None:
        self.stores: list[CounterStore | GaugeStore | HistogramStore] = []
        for metric in CATALOGUE:
            optional = bool(metric.optional_labels)
            if metric.type is MetricType.COUNTER:
                counter = CounterStore(metric, with_optional_labels=optional)
                for i, values in enumerate(_label_values(metric, counter.label_names)):
                    counter.inc(values, i + 1)
                self.stores.append(counter)
            elif metric.type is MetricType.GAUGE:
                gauge = GaugeStore(metric, with_optional_labels=optional)
                for i, values in enumerate(_label_values(metric, gauge.label_names)):
                    gauge.set(values, i * 0.5)
                self.stores.append(gauge)
            else:
                histogram = HistogramStore(metric, with_optional_labels=optional)
                for values in _label_values(metric, histogram.label_names):
                    for bound in metric.buckets:
                        histogram.observe(
                            values,
                            bound,
                            Exemplar({"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}, bound, 1.0),
                        )
                    histogram.observe(values, metric.buckets[-1] * 2)
                self.stores.append(histogram)

    def metric_families(self) -> Iterator[MetricFamilySnapshot]:
        for store in self.stores:
            yield store.snapshot()


def _label_values(metric: MetricDef, names: tuple[str, ...]) -> list[tuple[str, ...]]:
    if not names:
        return [()]
    return [tuple(f"{name}-{value}" for name in names) for value in AWKWARD]


def check_metrics(promtool: str, text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def http_scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def test_a_scrape_of_every_catalogue_metric_passes_promtool_without_warnings(
    promtool: str,
) -> None:
    with serve_metrics(0, registry=CollectorRegistry(), sources=[CatalogueSource()]) as server:
        text = http_scrape(server.url)

    for metric in CATALOGUE:
        assert f"# TYPE {metric.name} {metric.type.value}\n" in text, metric.name
        assert f"\n{metric.series_names[0]}" in text, f"{metric.name} has no samples"
    result = check_metrics(promtool, text)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_push_style_exporter_output_passes_promtool(promtool: str) -> None:
    registry = CollectorRegistry()
    exporter = PrometheusExporter(registry)
    for metric in CATALOGUE:
        if metric.type is MetricType.HISTOGRAM:
            continue  # the protocol has no histograms
        for i, value in enumerate(AWKWARD):
            labels = {name: f"{value}-{i}" for name in metric.labels}
            if metric.type is MetricType.COUNTER:
                exporter.inc_counter(metric.name, i + 1.0, labels)
            else:
                exporter.set_gauge(metric.name, i, labels)
    with serve_metrics(0, registry=registry, include_self_metrics=False) as server:
        text = http_scrape(server.url)

    result = check_metrics(promtool, text)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_promtool_does_flag_a_convention_breach(promtool: str) -> None:
    # Proves the check above can fail: a counter without _total and no help text.
    text = "# TYPE agent_breaches counter\nagent_breaches 1\n"
    result = check_metrics(promtool, text)
    assert result.stdout + result.stderr != ""
