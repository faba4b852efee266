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

from meshwatch.instrumentation import (
    EventType,
    GovernanceMetrics,
    HypervisorEvent,
    HypervisorEventBus,
    instrument,
)
from meshwatch.instrumentation.catalogue import (
    CATALOGUE,
    EVENTS_DROPPED,
    RING_ELEVATION_DURATION,
    SAGA_STEP_DURATION,
    TASK_DURATION,
    MetricDef,
    MetricType,
)
from meshwatch.instrumentation.otel import SPAN_EXPORT_METRICS
from meshwatch.instrumentation.prometheus import PrometheusExporter, serve_metrics
from meshwatch.instrumentation.stores import (
    CounterStore,
    Exemplar,
    GaugeStore,
    HistogramStore,
    MetricFamilySnapshot,
)
from meshwatch.instrumentation.work_metrics import AgentMetrics

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


def test_a_scrape_of_the_real_collectors_passes_promtool(promtool: str) -> None:
    bus, governance, work = HypervisorEventBus(), GovernanceMetrics(), AgentMetrics("did:mesh:a")
    wired = instrument(bus, governance=governance, extra_sources=[work, SPAN_EXPORT_METRICS])
    for agent in ('did:mesh:"a"', "did:mesh:b\\n", "did:mesh:ü\nx"):
        bus.emit(HypervisorEvent(EventType.RING_ASSIGNED, "s1", agent, payload={"ring": 3}))
        bus.emit(HypervisorEvent(EventType.RING_ELEVATED, "s1", agent, payload={"to_ring": 1}))
        bus.emit(HypervisorEvent(EventType.RING_BREACH_DETECTED, "s1", agent))
        bus.emit(HypervisorEvent(EventType.RING_ASSIGNED, "s1", agent, payload={"ring": "x"}))
    for step, outcome in (("a", EventType.SAGA_STEP_COMMITTED), ("b", EventType.SAGA_STEP_FAILED)):
        ids = {"saga_id": "deploy", "step_id": step, "step_action": step}
        bus.emit(HypervisorEvent(EventType.SAGA_STEP_STARTED, "s1", "did:mesh:a", payload=ids))
        bus.emit(HypervisorEvent(outcome, "s1", "did:mesh:a", payload=ids))
    bus.emit(HypervisorEvent(EventType.SAGA_COMPENSATING, payload={"saga_id": "deploy"}))
    bus.emit(HypervisorEvent(EventType.SAGA_ESCALATED, payload={"saga_id": "deploy"}))
    governance.record_decision(False, "did:mesh:a", "shell_exec", 0.3, rate_limited=True)
    governance.register_trust_score_gauge(lambda: {"did:mesh:a": 850.0})
    governance.register_active_agents_gauge(lambda: 3)
    with work.task("research"):
        work.record_decision("route", confidence=0.7, options_considered=3)

    with serve_metrics(0, registry=CollectorRegistry(), sources=wired) as server:
        text = http_scrape(server.url)

    for metric in (RING_ELEVATION_DURATION, EVENTS_DROPPED, SAGA_STEP_DURATION, TASK_DURATION):
        assert f"\n{metric.series_names[0]}{{" in text, metric.name
    result = check_metrics(promtool, text)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
