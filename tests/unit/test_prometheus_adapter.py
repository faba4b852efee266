"""The Prometheus adapter: scrape-time collection, exposition fidelity, the exporter, the server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from meshwatch.instrumentation import (
    EventType,
    GovernanceMetrics,
    HypervisorEvent,
    HypervisorEventBus,
    catalogue,
    stores,
)
from meshwatch.instrumentation.catalogue import (
    BUS_RETAINED_EVENTS,
    DEPENDENCY_WAIT_DURATION,
    EVENTS_DROPPED,
    GOVERNANCE_ACTIVE_AGENTS,
    GOVERNANCE_LATENCY,
    RING_BREACHES,
    RING_CURRENT,
    RING_ELEVATION_DURATION,
    SCRAPE_ERRORS,
    SERIES_OVERFLOW,
    SPANS_EXPORTED,
)
from meshwatch.instrumentation.drops import DROPS, event_drops, record_event_drop
from meshwatch.instrumentation.prometheus import (
    PrometheusExporter,
    ScrapeExporter,
)
from meshwatch.instrumentation.stores import (
    CardinalityGuard,
    CounterStore,
    Exemplar,
    GaugeStore,
    HistogramStore,
    MetricFamilySnapshot,
)
from meshwatch.instrumentation.wiring import instrument


class StoreSource:
    """A MetricSource over plain value stores, standing in for a collector."""

    def __init__(self, *stores: CounterStore | GaugeStore | HistogramStore) -> None:
        self.stores = stores

    def metric_families(self) -> Iterator[MetricFamilySnapshot]:
        for store in self.stores:
            yield store.snapshot()


class BrokenSource:
    def metric_families(self) -> Iterator[MetricFamilySnapshot]:
        raise RuntimeError("callback exploded")


def scrape(*sources: object, include_self_metrics: bool = False) -> str:
    registry = CollectorRegistry()
    registry.register(ScrapeExporter(sources, include_self_metrics=include_self_metrics))  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def samples(text: str, *, openmetrics: bool = False) -> dict[tuple[str, tuple], float]:
    parse = parse_openmetrics if openmetrics else parse_text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in parse(text)
        for s in family.samples
    }


def test_counters_are_read_at_scrape_time_never_double_counted() -> None:
    breaches = CounterStore(RING_BREACHES)
    source = StoreSource(breaches)
    breaches.inc(("did:mesh:a", "s1"), 3)
    key = (RING_BREACHES.name, (("agent_did", "did:mesh:a"), ("session_id", "s1")))

    assert samples(scrape(source))[key] == 3
    assert samples(scrape(source))[key] == 3  # a second scrape adds nothing
    breaches.inc(("did:mesh:a", "s1"), 2)
    assert samples(scrape(source))[key] == 5


def test_families_carry_catalogue_type_and_help_and_no_created_series() -> None:
    breaches, current = CounterStore(RING_BREACHES), GaugeStore(RING_CURRENT)
    breaches.inc(("did:mesh:a", "s1"))
    current.set(("did:mesh:a",), 2)
    text = scrape(StoreSource(breaches, current))

    families = {f.name: f for f in parse_text(text)}
    assert families[RING_BREACHES.family].type == "counter"
    assert families[RING_BREACHES.family].documentation == RING_BREACHES.help
    assert families[RING_CURRENT.name].type == "gauge"
    assert f"# TYPE {RING_BREACHES.name} counter" in text
    assert "_created" not in text


@pytest.mark.parametrize(
    "value",
    ['say "hi"', "back\\slash", "two\nlines", "agent-ünïcødé-名前", 'all\\"of\nit\\n'],
    ids=["quotes", "backslash", "newline", "non-ascii", "mixed"],
)
def test_label_values_survive_both_exposition_formats(value: str) -> None:
    current = GaugeStore(RING_CURRENT)
    current.set((value,), 1)
    registry = CollectorRegistry()
    registry.register(ScrapeExporter([StoreSource(current)], include_self_metrics=False))

    for text, openmetrics in (
        (generate_latest(registry).decode(), False),
        (generate_openmetrics(registry).decode(), True),
    ):
        parsed = samples(text, openmetrics=openmetrics)
        assert parsed[(RING_CURRENT.name, (("agent_did", value),))] == 1


def test_histograms_expose_cumulative_buckets_sum_and_count() -> None:
    latency = HistogramStore(GOVERNANCE_LATENCY)
    for seconds in (0.0002, 0.003, 0.003, 7.0):
        latency.observe(("allowed",), seconds)
    parsed = samples(scrape(StoreSource(latency)))

    def bucket(le: str) -> float:
        return parsed[(f"{GOVERNANCE_LATENCY.name}_bucket", (("decision", "allowed"), ("le", le)))]

    assert bucket("0.0005") == 1
    assert bucket("0.005") == 3
    assert bucket("2.5") == 3
    assert bucket("+Inf") == 4
    assert parsed[(f"{GOVERNANCE_LATENCY.name}_count", (("decision", "allowed"),))] == 4
    assert parsed[(f"{GOVERNANCE_LATENCY.name}_sum", (("decision", "allowed"),))] == pytest.approx(
        7.0062
    )


def test_histogram_exemplars_appear_in_openmetrics() -> None:
    latency = HistogramStore(GOVERNANCE_LATENCY)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    latency.observe(("blocked",), 0.003, Exemplar({"trace_id": trace_id}, 0.003, 1_700_000_000.5))
    latency.observe(("blocked",), 0.2)
    registry = CollectorRegistry()
    registry.register(ScrapeExporter([StoreSource(latency)], include_self_metrics=False))

    exemplars = {
        s.labels["le"]: s.exemplar
        for family in parse_openmetrics(generate_openmetrics(registry).decode())
        for s in family.samples
        if s.name.endswith("_bucket")
    }
    assert exemplars["0.005"].labels == {"trace_id": trace_id}
    assert exemplars["0.005"].value == 0.003
    assert float(exemplars["0.005"].timestamp) == 1_700_000_000.5
    assert exemplars["0.25"] is None
    # The classic text format has no exemplar syntax; the scrape still succeeds.
    assert trace_id not in generate_latest(registry).decode()


def test_unit_is_declared_in_openmetrics() -> None:
    duration = GaugeStore(RING_ELEVATION_DURATION)
    duration.set(("did:mesh:a",), 2.0)
    registry = CollectorRegistry()
    registry.register(ScrapeExporter([StoreSource(duration)], include_self_metrics=False))
    text = generate_openmetrics(registry).decode()
    assert f"# UNIT {RING_ELEVATION_DURATION.name} seconds" in text


def test_unlabelled_counters_and_histograms_start_at_zero_but_gauges_stay_absent() -> None:
    text = scrape(
        StoreSource(
            CounterStore(SPANS_EXPORTED),
            HistogramStore(DEPENDENCY_WAIT_DURATION),
            GaugeStore(GOVERNANCE_ACTIVE_AGENTS),
        )
    )
    parsed = samples(text)
    assert parsed[(SPANS_EXPORTED.name, ())] == 0
    assert parsed[(f"{DEPENDENCY_WAIT_DURATION.name}_count", ())] == 0
    assert parsed[(f"{DEPENDENCY_WAIT_DURATION.name}_bucket", (("le", "+Inf"),))] == 0
    assert not any(name == GOVERNANCE_ACTIVE_AGENTS.name for name, _ in parsed)
    assert f"# TYPE {GOVERNANCE_ACTIVE_AGENTS.name} gauge" in text


def test_sources_reporting_one_metric_merge_into_one_family() -> None:
    first_bus, second_bus = CounterStore(RING_BREACHES), CounterStore(RING_BREACHES)
    first_bus.inc(("did:mesh:a", "s1"), 2)
    second_bus.inc(("did:mesh:a", "s1"), 3)
    second_bus.inc(("did:mesh:b", "s1"), 1)
    first_gauge, second_gauge = GaugeStore(BUS_RETAINED_EVENTS), GaugeStore(BUS_RETAINED_EVENTS)
    first_gauge.set((), 10)
    second_gauge.set((), 20)
    first_hist, second_hist = HistogramStore(GOVERNANCE_LATENCY), HistogramStore(GOVERNANCE_LATENCY)
    first_hist.observe(("allowed",), 0.001)
    second_hist.observe(("allowed",), 0.1)

    text = scrape(
        StoreSource(first_bus, first_gauge, first_hist),
        StoreSource(second_bus, second_gauge, second_hist),
    )
    parsed = samples(text)
    assert text.count(f"# TYPE {RING_BREACHES.name} counter") == 1
    assert parsed[(RING_BREACHES.name, (("agent_did", "did:mesh:a"), ("session_id", "s1")))] == 5
    assert parsed[(RING_BREACHES.name, (("agent_did", "did:mesh:b"), ("session_id", "s1")))] == 1
    assert parsed[(BUS_RETAINED_EVENTS.name, ())] == 10  # gauges: the first source wins
    assert parsed[(f"{GOVERNANCE_LATENCY.name}_count", (("decision", "allowed"),))] == 2


def test_a_source_added_twice_is_read_once_and_can_be_removed() -> None:
    breaches = CounterStore(RING_BREACHES)
    breaches.inc(("did:mesh:a", "s1"))
    source = StoreSource(breaches)
    collector = ScrapeExporter([source, source], include_self_metrics=False)
    collector.add_source(source)
    registry = CollectorRegistry()
    registry.register(collector)
    key = (RING_BREACHES.name, (("agent_did", "did:mesh:a"), ("session_id", "s1")))
    assert samples(generate_latest(registry).decode())[key] == 1

    collector.remove_source(source)
    assert collector.sources == ()
    assert RING_BREACHES.name not in generate_latest(registry).decode()
    with pytest.raises(ValueError, match="not a source"):
        collector.remove_source(source)
    with pytest.raises(TypeError, match="metric_families"):
        collector.add_source(object())  # type: ignore[arg-type]


def test_drops_given_as_a_source_beside_the_self_metrics_are_counted_once() -> None:
    record_event_drop("adapter_test", "bad_payload")
    key = (EVENTS_DROPPED.name, (("component", "adapter_test"), ("reason", "bad_payload")))
    expected = event_drops("adapter_test", "bad_payload")
    assert samples(scrape(DROPS, include_self_metrics=True))[key] == expected
    assert samples(scrape(DROPS, include_self_metrics=False))[key] == expected


def test_a_raising_source_is_skipped_counted_and_never_blanks_the_scrape() -> None:
    current = GaugeStore(RING_CURRENT)
    current.set(("did:mesh:a",), 1)
    error_key = (SCRAPE_ERRORS.name, (("source", "BrokenSource"),))
    before = samples(scrape(include_self_metrics=True)).get(error_key, 0)

    text = scrape(BrokenSource(), StoreSource(current), include_self_metrics=True)
    parsed = samples(text)
    assert parsed[(RING_CURRENT.name, (("agent_did", "did:mesh:a"),))] == 1
    assert parsed[error_key] == before + 1


def test_series_overflow_is_always_exposed_with_self_metrics() -> None:
    capped = CounterStore(RING_BREACHES, guard=CardinalityGuard(max_series=1))
    key = (SERIES_OVERFLOW.name, (("metric", RING_BREACHES.name),))
    before = samples(scrape(include_self_metrics=True)).get(key, 0)
    capped.inc(("did:mesh:a", "s1"))
    capped.inc(("did:mesh:b", "s1"))
    capped.inc(("did:mesh:c", "s1"))

    text = scrape(StoreSource(capped), include_self_metrics=True)
    parsed = samples(text)
    assert parsed[key] == before + 2
    overflow = (("agent_did", stores.OVERFLOW), ("session_id", stores.OVERFLOW))
    assert parsed[(RING_BREACHES.name, overflow)] == 2
    assert f"# TYPE {SERIES_OVERFLOW.name} counter" in scrape(include_self_metrics=True)
    assert SERIES_OVERFLOW.name not in scrape(include_self_metrics=False)


# --- PrometheusExporter -------------------------------------------------------


def test_exporter_adds_counters_and_sets_gauges_under_catalogue_names() -> None:
    registry = CollectorRegistry()
    exporter = PrometheusExporter(registry)
    labels = {"agent_did": "did:mesh:a", "session_id": "s1"}
    exporter.inc_counter(RING_BREACHES.name, 2.0, labels, help_text="ignored")
    exporter.inc_counter(RING_BREACHES.name, 1.0, labels)
    exporter.set_gauge(RING_CURRENT.name, 3, {"agent_did": "did:mesh:a"})
    exporter.set_gauge(RING_CURRENT.name, 1, {"agent_did": "did:mesh:a"})
    exporter.set_gauge(GOVERNANCE_ACTIVE_AGENTS.name, 4)

    assert registry.get_sample_value(RING_BREACHES.name, labels) == 3.0
    assert registry.get_sample_value(RING_CURRENT.name, {"agent_did": "did:mesh:a"}) == 1.0
    assert registry.get_sample_value(GOVERNANCE_ACTIVE_AGENTS.name) == 4.0
    text = generate_latest(registry).decode()
    assert f"# HELP {RING_BREACHES.name} {RING_BREACHES.help}" in text


def test_exporter_accepts_opt_in_labels() -> None:
    registry = CollectorRegistry()
    exporter = PrometheusExporter(registry)
    labels = {"tool_name": "shell_exec", "agent_id": "did:mesh:x"}
    exporter.inc_counter(catalogue.GOVERNANCE_BLOCKED.name, 1.0, labels)
    assert registry.get_sample_value(catalogue.GOVERNANCE_BLOCKED.name, labels) == 1.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda e: e.inc_counter("not_a_meshwatch_metric_total"), "not in the meshwatch catalogue"),
        (lambda e: e.inc_counter(RING_CURRENT.name, 1.0, {"agent_did": "a"}), "is a gauge"),
        (lambda e: e.set_gauge(RING_BREACHES.name, 1.0, {}), "is a counter"),
        (lambda e: e.inc_counter(RING_BREACHES.name, 1.0, {"agent_did": "a"}), "takes labels"),
        (lambda e: e.inc_counter(f"{GOVERNANCE_LATENCY.name}_bucket"), "is a histogram"),
    ],
    ids=["unknown-name", "gauge-as-counter", "counter-as-gauge", "missing-label", "series-name"],
)
def test_exporter_rejects_what_the_catalogue_does_not_declare(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(PrometheusExporter(CollectorRegistry()))


def test_exporter_rejects_a_label_set_that_changes_after_first_use() -> None:
    exporter = PrometheusExporter(CollectorRegistry())
    exporter.inc_counter(catalogue.GOVERNANCE_BLOCKED.name, 1.0, {"tool_name": "t"})
    with pytest.raises(ValueError, match="takes labels"):
        exporter.inc_counter(
            catalogue.GOVERNANCE_BLOCKED.name, 1.0, {"tool_name": "t", "agent_id": "a"}
        )


# --- instrument -----------------------------------------------------------------


class ListSink:
    def __init__(self) -> None:
        self.names: list[str] = []

    def record_span(self, name, start_time, end_time, attributes, status) -> None:  # type: ignore[no-untyped-def]
        self.names.append(name)


def test_instrument_wires_the_standard_collectors_into_one_scrape() -> None:
    bus, sink, governance = HypervisorEventBus(), ListSink(), GovernanceMetrics()
    wired = instrument(bus, governance=governance, span_sink=sink)
    assert list(wired) == [bus, wired.ring, wired.sagas, governance]

    emit = bus.emit
    emit(HypervisorEvent(EventType.RING_ASSIGNED, "s1", "did:mesh:a", payload={"ring": 3}))
    emit(HypervisorEvent(EventType.RING_BREACH_DETECTED, "s1", "did:mesh:a"))
    step = {"saga_id": "deploy", "step_id": "v", "step_action": "validate"}
    emit(HypervisorEvent(EventType.SAGA_STEP_STARTED, "s1", "did:mesh:a", payload=step))
    emit(HypervisorEvent(EventType.SAGA_STEP_COMMITTED, "s1", "did:mesh:a", payload=step))
    governance.record_decision(True, "did:mesh:a", "file_read", 0.2)

    parsed = samples(scrape(*wired))
    agent_session = (("agent_did", "did:mesh:a"), ("session_id", "s1"))
    assert parsed[(RING_BREACHES.name, agent_session)] == 1
    assert parsed[(RING_CURRENT.name, (("agent_did", "did:mesh:a"),))] == 3
    committed = (("agent_did", "did:mesh:a"), ("outcome", "committed"))
    assert parsed[(catalogue.SAGA_STEPS.name, committed)] == 1
    assert parsed[(catalogue.BUS_EVENTS.name, (("event_type", "ring.assigned"),))] == 1
    allowed = (("decision", "allowed"), ("tool_name", "file_read"))
    assert parsed[(catalogue.GOVERNANCE_DECISIONS.name, allowed)] == 1
    assert sink.names == ["saga.step.validate"]

    wired.close()
    emit(HypervisorEvent(EventType.RING_BREACH_DETECTED, "s1", "did:mesh:a"))
    assert wired.ring.collect()[RING_BREACHES.name][("did:mesh:a", "s1")] == 1


def test_every_catalogue_metric_is_valid_openmetrics() -> None:
    # The OpenMetrics parser is strict (names, units, exemplar placement, ordering).
    from tests.rules.test_promtool_check_metrics import CatalogueSource

    registry = CollectorRegistry()
    registry.register(ScrapeExporter([CatalogueSource()]))
    families = list(parse_openmetrics(generate_openmetrics(registry).decode()))
    assert {f.name for f in families} >= {m.family for m in catalogue.CATALOGUE}
    assert any(s.exemplar for f in families for s in f.samples)
