"""The demo workload: deterministic scheduling, realistic latencies, and the live process."""

from __future__ import annotations

import gzip
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from prometheus_client.parser import text_string_to_metric_families

from meshwatch.demo import latency
from meshwatch.demo.agents import bootstrap
from meshwatch.demo.scenario import SCENARIOS, Scenario, ScenarioName, build_scenario
from meshwatch.demo.sim import Simulation
from meshwatch.demo.world import LEGACY, ORCHESTRATOR, PUBLISHER, TOOL_CODE, Instruments, World
from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.instrumentation.catalogue import (
    CATALOGUE,
    CONFLICTS,
    GOVERNANCE_DECISIONS,
    GOVERNANCE_LATENCY,
    RING_BREACHES,
    RING_ELEVATED,
    RING_ELEVATION_DURATION,
    RING_TRANSITIONS,
    SAGA_STEPS,
    SAGAS,
    SPANS_DROPPED,
    TASKS_COMPLETED,
    TASKS_FAILED,
    TASKS_STARTED,
)
from meshwatch.instrumentation.genai import GenAIMetrics
from meshwatch.instrumentation.governance import GovernanceMetrics
from meshwatch.instrumentation.ring_metrics import RingMetricsCollector
from meshwatch.instrumentation.saga_metrics import SagaMetricsCollector
from meshwatch.instrumentation.values import CardinalityGuard, HistogramValue, MetricSource
from meshwatch.instrumentation.work import AgentMetrics

T = TypeVar("T")

# --- the scheduler -----------------------------------------------------------------


def test_processes_run_in_virtual_time_order_with_ties_in_scheduling_order() -> None:
    sim = Simulation()
    seen: list[tuple[float, str]] = []

    def proc(name: str, delays: list[float]):
        for delay in delays:
            yield delay
            seen.append((sim.now, name))

    sim.spawn(proc("a", [1.0, 1.0]))
    sim.spawn(proc("b", [2.0]))
    sim.spawn(proc("c", [0.5]), delay=0.5)
    sim.run_until(1.5)
    assert seen == [(1.0, "a"), (1.0, "c")]
    sim.run_until(10)
    # b asked for t=2 at t=0, a only at t=1: b goes first.
    assert seen == [(1.0, "a"), (1.0, "c"), (2.0, "b"), (2.0, "a")]
    assert sim.next_time() is None


def test_an_inbox_wakes_its_waiter_with_the_message_in_send_order() -> None:
    sim = Simulation()
    inbox = sim.inbox()
    got: list[tuple[float, str]] = []

    def receiver():
        for _ in range(2):
            message = yield inbox
            got.append((sim.now, message))

    def sender():
        yield 1.0
        inbox.put("first")
        inbox.put("second")

    sim.spawn(receiver())
    sim.spawn(sender())
    sim.run_until(5)
    assert got == [(1.0, "first"), (1.0, "second")]


def test_each_process_has_its_own_context() -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")
    sim = Simulation()
    seen: list[str] = []

    def proc(name: str):
        var.set(name)
        yield 1.0
        seen.append(var.get())

    sim.spawn(proc("a"))
    sim.spawn(proc("b"))
    sim.run_until(2)
    assert seen == ["a", "b"]
    assert var.get() == "nobody"


def test_close_ends_every_live_process_inside_its_own_context() -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")
    sim = Simulation()
    inbox = sim.inbox()
    ended: list[str] = []

    def proc(name: str, wait_on_inbox: bool):
        var.set(name)
        try:
            yield inbox if wait_on_inbox else 100.0
        finally:
            ended.append(var.get())

    sim.spawn(proc("sleeper", False))
    sim.spawn(proc("waiter", True))
    sim.run_until(1)
    assert sim.live == 2
    sim.close()
    assert sorted(ended) == ["sleeper", "waiter"]
    assert sim.live == 0
    assert sim.next_time() is None


def test_a_negative_delay_is_a_bug_that_surfaces() -> None:
    sim = Simulation()

    def proc():
        yield -1.0

    sim.spawn(proc())
    with pytest.raises(ValueError, match="invalid delay"):
        sim.run_until(1)


# --- governance latency ----------------------------------------------------------------


def _quantile(model: latency.LatencyModel, q: float, n: int = 20_000) -> float:
    rng = random.Random(7)
    values = sorted(model.sample(rng) for _ in range(n))
    return values[int(q * n)]


def test_healthy_governance_is_sub_millisecond_with_a_tail_far_below_the_alert() -> None:
    assert _quantile(latency.HEALTHY, 0.5) < 1.0
    assert 2.0 < _quantile(latency.HEALTHY, 0.99) < 20.0


def test_degraded_governance_puts_p99_far_above_50ms() -> None:
    assert _quantile(latency.DEGRADED, 0.5) > 50.0
    assert _quantile(latency.DEGRADED, 0.99) > 500.0


def test_samples_stay_within_physical_bounds() -> None:
    model = latency.LatencyModel("wild", (latency.LogNormal(1.0, 10.0, 5.0),))
    rng = random.Random(1)
    values = [model.sample(rng) for _ in range(5_000)]
    assert min(values) >= latency.MIN_MS
    assert max(values) <= latency.MAX_MS


def test_invalid_components_are_rejected() -> None:
    with pytest.raises(ValueError):
        latency.LogNormal(0.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        latency.LatencyModel("empty", ())


# --- the simulated fleet, in virtual time ------------------------------------------------


@dataclass
class Fleet:
    """A simulated fleet on a fresh bus, with the standard collectors attached."""

    world: World
    ring: RingMetricsCollector
    sagas: SagaMetricsCollector

    def close(self) -> None:
        self.world.close()
        self.ring.close()
        self.sagas.close()


@contextmanager
def _fleet(scenario: Scenario) -> Iterator[Fleet]:
    bus = HypervisorEventBus(max_events=1_000_000)
    fleet = Fleet(
        World(
            scenario,
            Instruments(
                bus,
                GovernanceMetrics(),
                AgentMetrics(ORCHESTRATOR.did),
                AgentMetrics(LEGACY.did, guard=CardinalityGuard(max_series=5)),
                genai=GenAIMetrics(),
            ),
        ),
        RingMetricsCollector(bus),
        SagaMetricsCollector(bus),
    )
    fleet.world.sim.spawn(bootstrap(fleet.world))
    try:
        yield fleet
    finally:
        fleet.close()


def _event_sequence(scenario: Scenario, until: float) -> list[tuple[object, ...]]:
    with _fleet(scenario) as fleet:
        fleet.world.sim.run_until(until)
        return [
            (e.event_type, e.agent_did, e.session_id, sorted(e.payload.items(), key=repr))
            for e in fleet.world.inst.bus.all_events
        ]


def _families(source: MetricSource) -> dict[str, dict[tuple[str, ...], object]]:
    return {family.metric.name: dict(family.samples) for family in source.metric_families()}


def _fraction_at_most(histograms: Iterable[object], bound: float) -> tuple[float, int]:
    """Fraction of observations <= ``bound`` (a bucket bound) over histograms, and their count."""
    below = total = 0
    for histogram in histograms:
        assert isinstance(histogram, HistogramValue)
        below += histogram.cumulative_counts[histogram.bounds.index(bound)]
        total += histogram.count
    return (below / total if total else 0.0), total


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_same_seed_replays_the_same_event_sequence(name: ScenarioName) -> None:
    first = _event_sequence(build_scenario(name, seed=7), until=90)
    again = _event_sequence(build_scenario(name, seed=7), until=90)
    other = _event_sequence(build_scenario(name, seed=8), until=90)
    assert len(first) > 300
    assert first == again
    assert first != other


def test_steady_state_stays_under_the_alert_thresholds() -> None:
    seconds = 600
    with _fleet(build_scenario("steady", seed=11)) as fleet:
        fleet.world.sim.run_until(seconds)
        breaches = fleet.ring.collect()[RING_BREACHES.name]
        assert breaches, "steady state has occasional breaches"
        assert max(breaches.values()) / seconds < 0.05

        latency = _families(fleet.world.inst.governance)[GOVERNANCE_LATENCY.name]
        fast, decisions = _fraction_at_most(latency.values(), 0.05)
        assert decisions > 200
        assert fast > 0.995, "governance p99 must stay far below 50 ms"

        work = _families(fleet.world.inst.work)
        for key, started in work[TASKS_STARTED.name].items():
            failed = work[TASKS_FAILED.name].get(key, 0.0)
            if started >= 30:  # type: ignore[operator]
                assert failed / started < 0.10, key  # type: ignore[operator]

        sagas = _families(fleet.sagas)[SAGAS.name]
        outcomes = Counter[str]()
        for (_, outcome), count in sagas.items():
            outcomes[outcome] += int(count)  # type: ignore[call-overload]
        assert outcomes["completed"] > 50
        assert outcomes["failed"] + outcomes["escalated"] < 0.2 * sum(outcomes.values())


def test_every_rare_outcome_happens_within_the_first_half_minute() -> None:
    with _fleet(build_scenario("steady", seed=5)) as fleet:
        fleet.world.sim.run_until(25)
        sagas = _families(fleet.sagas)
        assert {k[1] for k in sagas[SAGAS.name]} >= {"escalated", "failed"}
        assert {k[1] for k in sagas[SAGA_STEPS.name]} == {"committed", "failed", "compensated"}
        governance = _families(fleet.world.inst.governance)
        assert {k[0] for k in governance[GOVERNANCE_DECISIONS.name]} == {
            "allowed",
            "blocked",
            "rate_limited",
        }
        work = _families(fleet.world.inst.work)
        assert work[TASKS_FAILED.name]
        assert {k[1] for k in work[CONFLICTS.name]} >= {"started", "failed"}
        ring = fleet.ring.collect()
        assert ring[RING_BREACHES.name]
        transitions = {k[0] for k in ring[RING_TRANSITIONS.name]}
        assert transitions >= {"ring.assigned", "ring.elevated", "ring.elevation_expired"}


def test_the_incident_drives_the_three_alert_conditions_then_recovers() -> None:
    scenario = build_scenario("incident", seed=3, incident_duration=60)
    with _fleet(scenario) as fleet:
        world = fleet.world
        world.sim.run_until(59)
        during = fleet.ring.collect()
        rogue = sum(
            v for (agent, _), v in during[RING_BREACHES.name].items() if agent == TOOL_CODE.did
        )
        assert rogue / 59 > 2.0, "above HighRingBreachRate's critical tier"
        assert during[RING_ELEVATED.name][PUBLISHER.did] == 1
        # Backdated: the gauge reads from the event's timestamp, over 300 s from the start.
        assert during[RING_ELEVATION_DURATION.name][PUBLISHER.did] > 300
        latency = _families(world.inst.governance)[GOVERNANCE_LATENCY.name]
        fast, _ = _fraction_at_most(latency.values(), 0.05)
        assert fast < 0.5, "p99 far above 50 ms"
        trust = world.trust_scores()
        assert trust[TOOL_CODE.did] < 300

        world.sim.run_until(85)  # the incident ended at 60 s
        ended = fleet.ring.collect()
        assert ended[RING_ELEVATED.name][PUBLISHER.did] == 0
        rogue = sum(
            v for (agent, _), v in ended[RING_BREACHES.name].items() if agent == TOOL_CODE.did
        )
        latency = _families(world.inst.governance)[GOVERNANCE_LATENCY.name]
        world.sim.run_until(180)  # the routine release window is back, as a fresh elevation
        after = fleet.ring.collect()
        rogue_after = sum(
            v for (agent, _), v in after[RING_BREACHES.name].items() if agent == TOOL_CODE.did
        )
        assert (rogue_after - rogue) / 95 < 0.05
        assert after[RING_ELEVATION_DURATION.name][PUBLISHER.did] < 300
        latency_after = _families(world.inst.governance)[GOVERNANCE_LATENCY.name]
        fast_before, n_before = _fraction_at_most(latency.values(), 0.05)
        fast_total, n_total = _fraction_at_most(latency_after.values(), 0.05)
        fast_since = (fast_total * n_total - fast_before * n_before) / (n_total - n_before)
        assert fast_since > 0.99


def test_scenario_knobs_are_validated() -> None:
    with pytest.raises(ValueError, match="not for the steady scenario: breach_rate"):
        build_scenario("steady", breach_rate=3.0)
    with pytest.raises(ValueError, match="unknown scenario"):
        build_scenario("chaos")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        build_scenario("incident", incident_duration=0)


# --- the live demo process ---------------------------------------------------------------

LOOPBACK = "127.0.0.1"
CATALOGUE_BOUND = 30.0  # seconds: every catalogue metric must have series by then


def _wait_until(predicate: Callable[[], T], *, timeout: float, what: str) -> T:
    """Poll ``predicate`` until it returns something truthy (errors count as "not yet")."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
        except Exception as exc:  # the demo is allowed to be still starting
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}"
            )
        time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def _scrape(port: int) -> list[Sample]:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return [
        Sample(s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def _value(samples: list[Sample], name: str, **labels: str) -> float | None:
    for s in samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    service: str
    attributes: dict[str, object]


class OtlpReceiver:
    """A tiny OTLP/HTTP trace receiver: decodes every POST with opentelemetry-proto."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver._add(request)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the test reports what matters."""

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def _add(self, request: ExportTraceServiceRequest) -> None:
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        Span(
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            span.name,
                            span.kind,
                            resource.get("service.name", ""),
                            {a.key: _any_value(a.value) for a in span.attributes},
                        )
                    )
        with self._lock:
            self.spans.extend(spans)

    def snapshot(self) -> list[Span]:
        with self._lock:
            return list(self.spans)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _any_value(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


@dataclass
class DemoProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@contextmanager
def _demo(tmp: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[DemoProcess]:
    port = _free_port()
    log = tmp / f"demo-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "meshwatch", "demo", "--metrics-port", str(port), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    demo = DemoProcess(process, port, log)
    try:
        _wait_until(
            lambda: process.poll() is not None or _port_open(port), timeout=30, what="/metrics"
        )
        assert process.poll() is None, log.read_text()
        yield demo
    finally:
        demo.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    yield server
    server.close()


@pytest.fixture(scope="module")
def incident_demo(
    receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoProcess]:
    """One incident demo for the live checks, exporting spans to ``receiver``."""
    tmp = tmp_path_factory.mktemp("demo")
    # The remediation receiver (a dry run) serves the remediation metrics.
    (tmp / "token").write_text("demo-token\n", encoding="utf-8")
    config = tmp / "meshwatch.yaml"
    config.write_text(
        f"remediation:\n  token_file: {tmp / 'token'}\n  policies:\n"
        "    - {alert: HighRingBreachRate, action: kill_agent, agents: ['did:mesh:*']}\n",
        encoding="utf-8",
    )
    with _demo(
        tmp,
        "--scenario",
        "incident",
        "--seed",
        "3",
        "--otlp-endpoint",
        receiver.endpoint,
        "--remediation-config",
        str(config),
        "--remediation-port",
        "0",
    ) as demo:
        yield demo


def test_every_catalogue_metric_is_served_within_30_seconds(incident_demo: DemoProcess) -> None:
    wanted = {series for metric in CATALOGUE for series in metric.series_names}

    def missing() -> set[str]:
        return wanted - {s.name for s in _scrape(incident_demo.port)}

    _wait_until(lambda: not missing(), timeout=CATALOGUE_BOUND, what="every catalogue series")


def test_the_incident_conditions_show_in_the_scrape(incident_demo: DemoProcess) -> None:
    port = incident_demo.port
    publisher = {"agent_did": PUBLISHER.did}

    def elevated_long() -> bool:
        samples = _scrape(port)
        return (
            _value(samples, RING_ELEVATED.name, **publisher) == 1
            and (_value(samples, RING_ELEVATION_DURATION.name, **publisher) or 0) > 300
        )

    _wait_until(elevated_long, timeout=20, what="the publisher elevated for more than 300 s")

    def rogue_breaches() -> float:
        return _value(_scrape(port), RING_BREACHES.name, agent_did=TOOL_CODE.did) or 0.0

    start = rogue_breaches()
    # 20 more breaches within 10 s is at least 2/s, the critical tier.
    _wait_until(lambda: rogue_breaches() >= start + 20, timeout=10, what="breaches at > 2/s")

    buckets = {
        s.labels["le"]: s.value
        for s in _scrape(port)
        if s.name == f"{GOVERNANCE_LATENCY.name}_bucket" and s.labels["decision"] == "blocked"
    }
    assert buckets["0.05"] < 0.5 * buckets["+Inf"], "most evaluations slower than 50 ms"


def test_one_conversation_is_one_trace_with_genai_attributes(
    incident_demo: DemoProcess, receiver: OtlpReceiver
) -> None:
    required = {
        "invoke_workflow conversation",
        "invoke_agent orchestrator",
        "send delegate",
        "process delegate",
        "invoke_agent researcher",
        "invoke_agent tool-search",
        "invoke_agent writer",
    }

    def complete_conversation() -> tuple[Span, list[Span]] | None:
        """A conversation whose spans have all arrived (each provider exports on its own)."""
        spans = receiver.snapshot()
        for root in spans:
            if root.name != "invoke_workflow conversation" or root.parent_span_id:
                continue
            if root.attributes.get("gen_ai.conversation.id") is None:
                continue  # the fleet's bootstrap, not a conversation
            trace = [s for s in spans if s.trace_id == root.trace_id]
            ids = {s.span_id for s in trace}
            names = {s.name for s in trace}
            if (
                required <= names
                and any(n.startswith("execute_tool ") for n in names)
                and all(s.parent_span_id in ids for s in trace if s is not root)
            ):
                return root, trace
        return None

    root, trace = _wait_until(complete_conversation, timeout=60, what="a complete conversation")
    cid = root.attributes["gen_ai.conversation.id"]
    spans = receiver.snapshot()
    tagged = [s for s in spans if s.attributes.get("gen_ai.conversation.id") == cid]
    assert {s.trace_id for s in tagged} == {root.trace_id}, "one conversation, one trace"
    assert [s for s in trace if not s.parent_span_id] == [root], "one root"
    assert {s.service for s in trace} >= {"orchestrator", "researcher", "writer", "tool-search"}
    for span in trace:
        operation = span.attributes.get("gen_ai.operation.name")
        if span.name.startswith("invoke_agent "):
            assert operation == "invoke_agent"
            assert span.attributes["gen_ai.agent.name"] == span.name.removeprefix("invoke_agent ")
            assert str(span.attributes["meshwatch.agent.id"]).startswith("did:mesh:")
        if span.name.startswith("execute_tool "):
            assert operation == "execute_tool"
            assert span.attributes["gen_ai.tool.name"] == span.name.removeprefix("execute_tool ")
            assert span.attributes["gen_ai.tool.call.id"]
    other_traces = {s.trace_id for s in spans if s.name == "invoke_agent orchestrator"} - {
        root.trace_id
    }
    assert other_traces, "other conversations are other traces"


def test_sigterm_stops_the_demo_cleanly(incident_demo: DemoProcess) -> None:
    incident_demo.process.send_signal(signal.SIGTERM)
    assert incident_demo.process.wait(timeout=20) == 0, incident_demo.log.read_text()
    assert not _port_open(incident_demo.port)
    assert "meshwatch demo: stopped" in incident_demo.log.read_text()


def test_the_incident_ends_while_serving_and_duration_ends_the_demo(tmp_path: Path) -> None:
    """A dead collector too: spans are dropped and counted, and nothing slows down."""
    dead = f"http://{LOOPBACK}:{_free_port()}"
    with _demo(
        tmp_path,
        "--scenario",
        "incident",
        "--incident-duration",
        "4",
        "--duration",
        "14",
        "--otlp-endpoint",
        dead,
        env={"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "1"},
    ) as demo:
        publisher = {"agent_did": PUBLISHER.did}
        _wait_until(
            lambda: _value(_scrape(demo.port), RING_ELEVATED.name, **publisher) == 1,
            timeout=10,
            what="the incident elevation",
        )
        _wait_until(
            lambda: _value(_scrape(demo.port), RING_ELEVATED.name, **publisher) == 0,
            timeout=15,
            what="the publisher demoted when the incident ends",
        )
        after_incident = _value(_scrape(demo.port), RING_BREACHES.name, agent_did=TOOL_CODE.did)
        _wait_until(
            lambda: _value(_scrape(demo.port), SPANS_DROPPED.name, reason="export_failed"),
            timeout=10,
            what="spans dropped for the dead collector, counted",
        )

        def completed() -> float:
            return sum(s.value for s in _scrape(demo.port) if s.name == TASKS_COMPLETED.name)

        completed_then = completed()
        _wait_until(
            lambda: completed() > completed_then, timeout=10, what="agents still completing tasks"
        )
        # The rogue agent's 5/s stopped; at most a rare stray breach of steady state remains.
        rogue_now = _value(_scrape(demo.port), RING_BREACHES.name, agent_did=TOOL_CODE.did)
        assert after_incident is not None and rogue_now is not None
        assert rogue_now - after_incident < 5
        assert demo.process.wait(timeout=30) == 0, demo.log.read_text()
        assert not _port_open(demo.port)


def test_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "meshwatch", "demo", "--metrics-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"meshwatch demo: cannot serve /metrics on 127.0.0.1:{port}: Address already in use"
    )


DEMO_COMMAND = (sys.executable, "-m", "meshwatch", "demo")


def test_an_unusable_audit_dir_is_a_one_line_error_about_the_directory(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "audit"
    not_a_dir.write_text("a file where the audit directory should be")
    result = subprocess.run(
        [*DEMO_COMMAND, "--metrics-port", "0", "--audit-dir", str(not_a_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"meshwatch demo: {not_a_dir}: File exists"
    ), "the error names the directory, not the /metrics port"
