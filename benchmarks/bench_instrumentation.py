"""Instrumentation cost: the emit hot path, a scrape, and memory per retained event.

(a) Creating and emitting one ring event on a bus with RingMetricsCollector
    and SagaSpanExporter attached, against one bare prometheus_client labelled
    ``inc()`` (``counter.labels(...).inc()``), the cheapest thing an agent could
    do instead. The bus is pre-filled to its retention bound, so every emit
    also evicts: the steady state of a long-running agent. Target: <= 1.5x.
    The three are timed in turn, repeat by repeat, so a drift in the
    machine's speed moves the figure and its baseline alike.
(b) A scrape (``generate_latest``) of 10,000 agents' ring metrics through
    :class:`~meshwatch.instrumentation.prometheus.ScrapeExporter`, against
    the same series held in plain prometheus_client metrics (``_created``
    series off, so both expose the same lines). Target: <= 1.5x.
(c) Bytes per retained event with 100,000 events in the bus, by tracemalloc:
    events, payloads, ids, timestamps. Target: <= 400 bytes. The bus builds
    its session, agent and type indexes on the first query, not on emit, so
    a second figure gives the bytes once a query has built them.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from benchmarks.common import (
    Result,
    interleaved_seconds_per_call,
    retained_bytes,
    seconds_once,
)
from meshwatch.instrumentation import (
    CardinalityGuard,
    CausalTraceId,
    EventType,
    HypervisorEvent,
    HypervisorEventBus,
    RingMetricsCollector,
    SagaSpanExporter,
)
from meshwatch.instrumentation.catalogue import (
    RING_BREACHES,
    RING_CURRENT,
    RING_ELEVATED,
    RING_ELEVATION_DURATION,
    RING_TRANSITIONS,
    MetricType,
)
from meshwatch.instrumentation.prometheus import ScrapeExporter

RETAINED = 100_000
SCRAPE_AGENTS = 10_000
EMIT_AGENTS = 100
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _agent(i: int) -> str:
    return f"did:mesh:agent-{i:05d}"


def bench_emit() -> list[Result]:
    """(a) One ring event, created and emitted, against one labelled prometheus_client inc().

    Two events: a breach (one counter) and an elevation (payload validation,
    per-agent state, a counter and two gauges), the most expensive ring event.
    """
    bus = HypervisorEventBus(max_events=RETAINED)
    RingMetricsCollector(bus)
    SagaSpanExporter(bus)
    agents = [_agent(i) for i in range(EMIT_AGENTS)]
    trace = CausalTraceId().full_id
    for i in range(RETAINED):  # at the retention bound: every further emit evicts
        bus.emit(HypervisorEvent(EventType.RING_ASSIGNED, "s1", agents[i % EMIT_AGENTS], None, {"ring": 3}))  # fmt: skip
    cycle = itertools.cycle(agents)
    emit, event = bus.emit, HypervisorEvent
    breach, breach_payload = EventType.RING_BREACH_DETECTED, {"attempted_tool": "shell_exec"}
    elevated, elevated_payload = EventType.RING_ELEVATED, {"from_ring": 3, "to_ring": 1}

    def one_breach() -> None:
        emit(event(breach, "s1", next(cycle), trace, breach_payload))

    def one_elevation() -> None:
        emit(event(elevated, "s1", next(cycle), trace, elevated_payload))

    counter = Counter(
        RING_BREACHES.name, RING_BREACHES.help, RING_BREACHES.labels, registry=CollectorRegistry()
    )
    labels = counter.labels

    def one_inc() -> None:
        labels(next(cycle), "s1").inc()

    seconds = interleaved_seconds_per_call(
        {"baseline": one_inc, "ring.breach_detected": one_breach, "ring.elevated": one_elevation}
    )
    return [
        Result(
            f"(a) create+emit one {event_name} event, collectors attached",
            seconds[event_name] * 1e6,
            "us",
            target=1.5,
            baseline=seconds["baseline"] * 1e6,
            baseline_name="prometheus_client labels().inc()",
        )
        for event_name in ("ring.breach_detected", "ring.elevated")
    ]


def _ring_collector() -> RingMetricsCollector:
    """10,000 agents, each assigned ring 3, elevated to ring 1, and caught in one breach."""
    bus = HypervisorEventBus(max_events=RETAINED)
    ring = RingMetricsCollector(bus, guard=CardinalityGuard(max_series=4 * SCRAPE_AGENTS))
    for i in range(SCRAPE_AGENTS):
        agent, session, at = _agent(i), f"s-{i}", T0 + timedelta(seconds=i)
        bus.emit(HypervisorEvent(EventType.RING_ASSIGNED, session, agent, None, {"ring": 3}, timestamp=at))  # fmt: skip
        bus.emit(HypervisorEvent(EventType.RING_ELEVATED, session, agent, None, {"to_ring": 1}, timestamp=at))  # fmt: skip
        bus.emit(HypervisorEvent(EventType.RING_BREACH_DETECTED, session, agent, timestamp=at))
    return ring


def _plain_registry(ring: RingMetricsCollector) -> CollectorRegistry:
    """The same series and values as ``ring`` exposes, in plain prometheus_client metrics."""
    registry = CollectorRegistry()
    for family in ring.metric_families():
        metric = family.metric
        if metric.type is MetricType.COUNTER:
            counter = Counter(metric.name, metric.help, family.label_names, registry=registry)
            for key, value in family.samples.items():
                counter.labels(*key).inc(float(value))  # type: ignore[arg-type]
        else:
            gauge = Gauge(metric.name, metric.help, family.label_names, registry=registry)
            for key, value in family.samples.items():
                gauge.labels(*key).set(float(value))  # type: ignore[arg-type]
    return registry


def bench_scrape() -> Result:
    """(b) generate_latest of 10,000 agents through the adapter vs plain prometheus_client."""
    ring = _ring_collector()
    adapter = CollectorRegistry()
    adapter.register(ScrapeExporter([ring], include_self_metrics=False))
    prometheus_client.disable_created_metrics()
    try:
        plain = _plain_registry(ring)
        ours, theirs = generate_latest(adapter), generate_latest(plain)
        series = sum(1 for line in ours.splitlines() if not line.startswith(b"#"))
        if series != sum(1 for line in theirs.splitlines() if not line.startswith(b"#")):
            raise AssertionError("the adapter and the baseline expose different series")
        expected = {RING_TRANSITIONS, RING_BREACHES, RING_CURRENT, RING_ELEVATED}
        expected.add(RING_ELEVATION_DURATION)
        if any(f"# TYPE {m.name} ".encode() not in ours for m in expected):
            raise AssertionError("the adapter scrape lacks a ring metric")
        adapter_s = seconds_once(lambda: generate_latest(adapter))
        plain_s = seconds_once(lambda: generate_latest(plain))
    finally:
        prometheus_client.enable_created_metrics()
    return Result(
        f"(b) scrape {SCRAPE_AGENTS:,} agents ({series:,} series) via ScrapeExporter",
        adapter_s * 1e3,
        "ms",
        target=1.5,
        baseline=plain_s * 1e3,
        baseline_name="plain prometheus_client",
    )


def bench_memory() -> list[Result]:
    """(c) tracemalloc bytes per event with 100,000 events retained in the bus, then indexed."""
    agents = [_agent(i) for i in range(1_000)]

    def fill() -> HypervisorEventBus:
        bus = HypervisorEventBus(max_events=RETAINED)
        trace = CausalTraceId()
        for i in range(RETAINED):
            if i % 10 == 0:  # a new session and causal span every 10 events
                session, trace = f"session-{i // 10:06d}", trace.sibling()
            bus.emit(
                HypervisorEvent(
                    EventType.RING_ELEVATED,
                    session,
                    agents[i % len(agents)],
                    trace,
                    {"from_ring": 3, "to_ring": 1},
                )
            )
        return bus

    def fill_and_query() -> HypervisorEventBus:
        bus = fill()
        bus.query_by_session("session-000000")  # builds every index
        return bus

    results = []
    for what, build, note in (
        ("", fill, "payload, ids, timestamp, trace id"),
        (", indexed by a query", fill_and_query, "plus the session/agent/type indexes"),
    ):
        bus, allocated = retained_bytes(build)
        if bus.event_count != RETAINED:
            raise AssertionError(f"expected {RETAINED} retained events, got {bus.event_count}")
        results.append(
            Result(
                f"(c) bytes per retained event at {RETAINED:,} events{what}",
                allocated / RETAINED,
                "bytes",
                target=400.0,
                note=note,
            )
        )
    return results


def run() -> list[Result]:
    return [*bench_emit(), bench_scrape(), *bench_memory()]
