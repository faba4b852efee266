"""Every example of the tutorial's sections 3 to 7 runs against meshwatch and prints what it says.

The code inside each test is the tutorial's, with ``hypervisor.observability``
replaced by ``meshwatch.instrumentation``. The timed examples run twice: once
verbatim with the tutorial's short sleeps (section 7, 0.5 s), and once
sleep-free with explicit event timestamps, where the duration is exact.
Section 8 (OpenTelemetry) is in tests/integration/test_tutorial_otel.py: it needs a fresh
interpreter.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest

HEX12_8 = r"[0-9a-f]{12}/[0-9a-f]{8}"


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


# -- Section 3: Quick Start ------------------------------------------------------------


def test_section3_quick_start(capsys: pytest.CaptureFixture[str]) -> None:
    from meshwatch.instrumentation import (
        CausalTraceId,
        EventType,
        HypervisorEvent,
        HypervisorEventBus,
    )

    # 1. Create the event bus — the central nervous system
    bus = HypervisorEventBus()
    # 2. Create a causal trace for this workflow
    trace = CausalTraceId()
    print(f"Trace started: {trace.full_id}")
    # 3. Emit a structured event
    bus.emit(
        HypervisorEvent(
            event_type=EventType.SESSION_CREATED,
            session_id="session-001",
            agent_did="did:mesh:data-analyst",
            causal_trace_id=trace.full_id,
            payload={"model": "gpt-4o", "ring": 3},
        )
    )
    # 4. Query it back
    events = bus.query_by_session("session-001")
    print(f"Events for session-001: {len(events)}")  # 1
    print(events[0].to_dict())

    out = lines(capsys)
    assert re.fullmatch(rf"Trace started: {HEX12_8}", out[0])
    assert out[1] == "Events for session-001: 1"
    event = events[0]
    assert out[2] == (
        f"{{'event_id': '{event.event_id}', 'event_type': 'session.created', "
        f"'timestamp': '{event.timestamp.isoformat()}', 'session_id': 'session-001', "
        f"'agent_did': 'did:mesh:data-analyst', 'causal_trace_id': '{trace.full_id}', "
        "'payload': {'model': 'gpt-4o', 'ring': 3}}"
    )

    # Type-specific subscriber — only ring breaches
    def on_breach(event: HypervisorEvent) -> None:
        print(f"!! BREACH: agent={event.agent_did} payload={event.payload}")

    bus.subscribe(event_type=EventType.RING_BREACH_DETECTED, handler=on_breach)
    # Wildcard subscriber — receives ALL events
    bus.subscribe(event_type=None, handler=lambda e: print(f"[audit] {e.event_type.value}"))
    # This triggers both subscribers
    bus.emit(
        HypervisorEvent(
            event_type=EventType.RING_BREACH_DETECTED,
            agent_did="did:mesh:rogue-bot",
            session_id="session-001",
            payload={"attempted_tool": "shell_exec", "ring": 3},
        )
    )
    assert lines(capsys) == [
        "!! BREACH: agent=did:mesh:rogue-bot payload={'attempted_tool': 'shell_exec', 'ring': 3}",
        "[audit] ring.breach_detected",
    ]


# -- Section 4: CausalTraceId ----------------------------------------------------------------


def test_section4_creating_traces(capsys: pytest.CaptureFixture[str]) -> None:
    from meshwatch.instrumentation import CausalTraceId

    # Root trace — generated automatically
    root = CausalTraceId()
    print(root.full_id)  # "a1b2c3d4e5f6/01234567"
    print(root.depth)  # 0
    print(root.parent_span_id)  # None
    # Child span — same trace, new span, parent linked
    child = root.child()
    print(child.full_id)  # "a1b2c3d4e5f6/89abcdef/01234567"
    print(child.depth)  # 1
    print(child.parent_span_id)  # "01234567" (root's span_id)
    # Sibling span — parallel work at the same depth
    sibling = child.sibling()
    print(sibling.depth)  # 1 (same as child)
    print(sibling.parent_span_id)  # "01234567" (same parent)
    print(sibling.span_id)  # new unique ID
    # Deep nesting — each child() increments depth
    grandchild = child.child()
    print(grandchild.depth)  # 2

    out = lines(capsys)
    assert re.fullmatch(HEX12_8, out[0])
    assert out[1:3] == ["0", "None"]
    trace_id, root_span = out[0].split("/")
    assert re.fullmatch(rf"{trace_id}/[0-9a-f]{{8}}/{root_span}", out[3])
    assert out[4:8] == ["1", root_span, "1", root_span]
    assert re.fullmatch(r"[0-9a-f]{8}", out[8])
    assert out[8] not in (root_span, child.span_id)
    assert out[9] == "2"


def test_section4_parsing_traces(capsys: pytest.CaptureFixture[str]) -> None:
    from meshwatch.instrumentation import CausalTraceId

    parsed = CausalTraceId.from_string("a1b2c3d4e5f6/89abcdef/01234567")
    print(parsed.trace_id)  # "a1b2c3d4e5f6"
    print(parsed.span_id)  # "89abcdef"
    print(parsed.parent_span_id)  # "01234567"
    # Root traces (no parent) parse cleanly
    root_parsed = CausalTraceId.from_string("a1b2c3d4e5f6/01234567")
    print(root_parsed.parent_span_id)  # None
    # Invalid format raises ValueError
    with pytest.raises(ValueError):
        CausalTraceId.from_string("invalid")  # — ValueError

    assert lines(capsys) == ["a1b2c3d4e5f6", "89abcdef", "01234567", "None"]


def test_section4_delegation_ancestry_and_siblings(capsys: pytest.CaptureFixture[str]) -> None:
    from meshwatch.instrumentation import (
        CausalTraceId,
        EventType,
        HypervisorEvent,
        HypervisorEventBus,
    )

    bus = HypervisorEventBus()
    orchestrator_trace = CausalTraceId()
    researcher_trace = orchestrator_trace.child()
    writer_trace = orchestrator_trace.child()
    tool_agent_trace = researcher_trace.child()
    # Attach trace IDs to events for full causality
    bus.emit(
        HypervisorEvent(
            event_type=EventType.SESSION_CREATED,
            agent_did="did:mesh:tool-agent",
            causal_trace_id=tool_agent_trace.full_id,
        )
    )
    # Trace tree: orchestrator(0) — researcher(1) — tool-agent(2)
    # — writer(1)
    assert [t.depth for t in (orchestrator_trace, researcher_trace, tool_agent_trace)] == [0, 1, 2]
    assert writer_trace.depth == 1
    emitted = bus.query_by_agent("did:mesh:tool-agent")[0]
    assert CausalTraceId.from_string(emitted.causal_trace_id) == tool_agent_trace

    root = CausalTraceId()
    child = root.child()
    grandchild = child.child()
    print(root.is_ancestor_of(grandchild))  # True
    print(child.is_ancestor_of(root))  # False
    print(root.is_ancestor_of(root))  # False (same depth)
    assert lines(capsys) == ["True", "False", "False"]

    worker_1 = orchestrator_trace.child()
    worker_2 = worker_1.sibling()  # Same parent, same depth, new span_id
    assert worker_1.parent_span_id == worker_2.parent_span_id  # True
    assert worker_1.trace_id == worker_2.trace_id  # True


# -- Section 5: HypervisorEventBus -------------------------------------------------------------


def test_section5_event_dataclass(capsys: pytest.CaptureFixture[str]) -> None:
    from meshwatch.instrumentation import EventType, HypervisorEvent

    event = HypervisorEvent(
        event_type=EventType.SLASH_EXECUTED,
        session_id="session-042",
        agent_did="did:mesh:rogue-agent",
        causal_trace_id="abc123/def456",
        payload={"severity": "critical", "stake_slashed": 150},
    )
    print(event.event_id)  # Auto-generated 16-char UUID hex
    print(event.timestamp)  # datetime.now(UTC)
    # Serialize to JSON-compatible dict
    d = event.to_dict()
    print(d["event_type"])  # "liability.slash_executed"
    print(d["timestamp"])  # "2025-01-15T10:30:00+00:00" (ISO format)

    out = lines(capsys)
    assert re.fullmatch(r"[0-9a-f]{16}", out[0])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\+00:00", out[1])
    assert out[2] == "liability.slash_executed"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", out[3])
    assert datetime.fromisoformat(out[3]) == event.timestamp


def test_section5_emitting_and_querying(capsys: pytest.CaptureFixture[str]) -> None:
    from meshwatch.instrumentation import EventType, HypervisorEvent, HypervisorEventBus

    bus = HypervisorEventBus()
    bus.emit(
        HypervisorEvent(
            event_type=EventType.RING_ASSIGNED,
            session_id="s1",
            agent_did="did:mesh:agent-alpha",
            payload={"ring": 3},
        )
    )
    bus.emit(
        HypervisorEvent(
            event_type=EventType.RING_ELEVATED,
            session_id="s1",
            agent_did="did:mesh:agent-alpha",
            payload={"from_ring": 3, "to_ring": 1, "reason": "admin vouch"},
        )
    )
    print(f"Total events: {bus.event_count}")  # 2
    print(bus.type_counts())  # {"ring.assigned": 1, "ring.elevated": 1}
    assert lines(capsys) == ["Total events: 2", "{'ring.assigned': 1, 'ring.elevated': 1}"]

    # By type, session, or agent
    sessions = bus.query_by_type(EventType.SESSION_CREATED)
    s1_events = bus.query_by_session("s1")
    agent_events = bus.query_by_agent("did:mesh:agent-alpha")
    # By time range
    recent = bus.query_by_time_range(start=datetime.now(UTC) - timedelta(hours=1))
    # Combined (AND) with limit
    results = bus.query(
        event_type=EventType.RING_ASSIGNED,
        session_id="s1",
        agent_did="did:mesh:analyst",
        limit=10,
    )
    # Statistics
    print(bus.event_count)  # Total events
    print(bus.type_counts())  # {"ring.assigned": 1, ...}
    all_events = bus.all_events  # Full log (copy)

    assert lines(capsys) == ["2", "{'ring.assigned': 1, 'ring.elevated': 1}"]
    assert sessions == []
    assert [e.event_type for e in s1_events] == [EventType.RING_ASSIGNED, EventType.RING_ELEVATED]
    assert agent_events == s1_events == recent == all_events
    assert results == []  # the example's agent (analyst) never had a ring assigned here
    all_events.clear()
    assert bus.event_count == 2


# -- Section 6: RingMetricsCollector -------------------------------------------------------------


def _section6_setup():  # type: ignore[no-untyped-def]
    from meshwatch.instrumentation import (
        EventType,
        HypervisorEvent,
        HypervisorEventBus,
        RingMetricsCollector,
    )

    bus = HypervisorEventBus()
    collector = RingMetricsCollector(bus)  # Auto-subscribes to all ring events
    bus.emit(
        HypervisorEvent(
            event_type=EventType.RING_ASSIGNED,
            session_id="s1",
            agent_did="did:mesh:analyst",
            payload={"ring": 3},
        )
    )
    bus.emit(
        HypervisorEvent(
            event_type=EventType.RING_ELEVATED,
            session_id="s1",
            agent_did="did:mesh:analyst",
            payload={"from_ring": 3, "to_ring": 1},
        )
    )
    bus.emit(
        HypervisorEvent(
            event_type=EventType.RING_BREACH_DETECTED,
            session_id="s1",
            agent_did="did:mesh:analyst",
            payload={"attempted_tool": "shell_exec"},
        )
    )
    return bus, collector


def test_section6_collecting_snapshots(capsys: pytest.CaptureFixture[str]) -> None:
    _bus, collector = _section6_setup()
    snapshot = collector.collect()
    # Transition counters — keyed by (event_type, agent_did, session_id)
    print(
        snapshot["agent_hypervisor_ring_transitions_total"][
            ("ring.assigned", "did:mesh:analyst", "s1")
        ]
    )  # 1
    # Breach counters — keyed by (agent_did, session_id)
    print(snapshot["agent_hypervisor_ring_breaches_total"][("did:mesh:analyst", "s1")])  # 1
    # Current ring gauge — keyed by agent_did
    print(snapshot["agent_hypervisor_ring_current"]["did:mesh:analyst"])  # 1
    print(snapshot["events_processed"])  # 3
    assert lines(capsys) == ["1", "1", "1", "3"]


def test_section6_elevation_duration_sleep_free(capsys: pytest.CaptureFixture[str]) -> None:
    """The tutorial sleeps 2 s between the events; explicit timestamps make it exact."""
    from meshwatch.instrumentation import EventType, HypervisorEvent

    bus, collector = _section6_setup()
    elevated_at = bus.query_by_type(EventType.RING_ELEVATED)[0].timestamp
    bus.emit(
        HypervisorEvent(
            event_type=EventType.RING_ELEVATED,
            agent_did="did:mesh:analyst",
            session_id="s1",
            payload={"to_ring": 1},
        )
    )
    bus.emit(
        HypervisorEvent(
            event_type=EventType.RING_DEMOTED,
            agent_did="did:mesh:analyst",
            session_id="s1",
            payload={"to_ring": 3},
            timestamp=elevated_at + timedelta(seconds=2),
        )
    )
    duration = collector.collect()["agent_hypervisor_ring_elevation_duration_seconds"]
    print(f"Elevation lasted {duration['did:mesh:analyst']:.1f}s")  # — 2.0s
    assert lines(capsys) == ["Elevation lasted 2.0s"]
    assert duration["did:mesh:analyst"] == pytest.approx(2.0)


def test_section6_exporting_to_prometheus(capsys: pytest.CaptureFixture[str]) -> None:
    _bus, collector = _section6_setup()

    class MyPrometheusExporter:
        """Bridge to prometheus_client or agent-sre exporter."""

        def set_gauge(self, name, value, labels=None, help_text=""):  # type: ignore[no-untyped-def]
            print(f"GAUGE {name}={value} labels={labels}")

        def inc_counter(self, name, value=1.0, labels=None, help_text=""):  # type: ignore[no-untyped-def]
            print(f"COUNTER {name} +={value} labels={labels}")

    exporter = MyPrometheusExporter()
    collector.export_to_prometheus(exporter)

    out = lines(capsys)
    assert out[:3] == [
        "COUNTER agent_hypervisor_ring_transitions_total +=1.0 labels={'event_type': 'ring.assigned', 'agent_did': 'did:mesh:analyst', 'session_id': 's1'}",
        "COUNTER agent_hypervisor_ring_transitions_total +=1.0 labels={'event_type': 'ring.elevated', 'agent_did': 'did:mesh:analyst', 'session_id': 's1'}",
        "COUNTER agent_hypervisor_ring_breaches_total +=1.0 labels={'agent_did': 'did:mesh:analyst', 'session_id': 's1'}",
    ]
    assert (
        out[3] == "GAUGE agent_hypervisor_ring_current=1.0 labels={'agent_did': 'did:mesh:analyst'}"
    )
    assert re.fullmatch(
        r"GAUGE agent_hypervisor_ring_elevation_duration_seconds=[0-9.e-]+ labels=\{'agent_did': 'did:mesh:analyst'\}",
        out[4],
    )
    assert out[5:] == [
        "GAUGE agent_hypervisor_ring_elevated=1.0 labels={'agent_did': 'did:mesh:analyst'}"
    ]


# -- Section 7: SagaSpanExporter -------------------------------------------------------------------

DEPLOY_ATTRS = (
    "Attrs: {'agent.saga.id': 'deploy-v2', 'agent.saga.step_id': 'validate-config', "
    "'agent.saga.step_action': 'validate', 'agent.saga.state': 'ok', "
    "'agent.saga.result': 'all checks passed', 'agent.did': 'did:mesh:orchestrator', "
    "'session.id': 's1'}"
)


def _section7_rest(capsys: pytest.CaptureFixture[str], bus, exporter) -> list[str]:  # type: ignore[no-untyped-def]
    """The failure, compensation and saga-level examples; returns the saga-level line."""
    from meshwatch.instrumentation import EventType, HypervisorEvent

    # A step fails
    bus.emit(
        HypervisorEvent(
            event_type=EventType.SAGA_STEP_STARTED,
            payload={"saga_id": "deploy-v2", "step_id": "run-migrations", "step_action": "migrate"},
        )
    )
    bus.emit(
        HypervisorEvent(
            event_type=EventType.SAGA_STEP_FAILED,
            payload={
                "saga_id": "deploy-v2",
                "step_id": "run-migrations",
                "step_action": "migrate",
                "error": "connection_timeout",
                "reason": "database unreachable after 30s",
            },
        )
    )
    # Compensation kicks in
    bus.emit(
        HypervisorEvent(
            event_type=EventType.SAGA_COMPENSATING,
            payload={
                "saga_id": "deploy-v2",
                "step_id": "rollback-config",
                "step_action": "rollback",
            },
        )
    )
    error_span = [s for s in exporter.completed_spans if s.status == "error"][-1]
    print(error_span.attributes["agent.saga.error"])  # "connection_timeout"
    comp_span = [s for s in exporter.completed_spans if s.status == "compensating"][-1]
    print(comp_span.name)  # "saga.compensate.rollback"
    assert lines(capsys) == ["connection_timeout", "saga.compensate.rollback"]

    bus.emit(
        HypervisorEvent(
            event_type=EventType.SAGA_COMPLETED,
            payload={"saga_id": "deploy-v2"},
        )
    )
    saga_span = [s for s in exporter.completed_spans if "completed" in s.name][-1]
    print(f"Duration: {saga_span.duration_seconds:.2f}s, Status: {saga_span.status}")  # "ok"
    return lines(capsys)


def test_section7_saga_spans_verbatim_with_sleep(capsys: pytest.CaptureFixture[str]) -> None:
    """The tutorial's code as written, including its 0.5 s of simulated work."""
    from meshwatch.instrumentation import (
        EventType,
        HypervisorEvent,
        HypervisorEventBus,
        SagaSpanExporter,
    )

    bus = HypervisorEventBus()
    exporter = SagaSpanExporter(bus)  # Auto-subscribes to all SAGA_* events

    bus.emit(
        HypervisorEvent(
            event_type=EventType.SAGA_CREATED,
            session_id="s1",
            agent_did="did:mesh:orchestrator",
            payload={"saga_id": "deploy-v2"},
        )
    )
    bus.emit(
        HypervisorEvent(
            event_type=EventType.SAGA_STEP_STARTED,
            session_id="s1",
            agent_did="did:mesh:orchestrator",
            payload={
                "saga_id": "deploy-v2",
                "step_id": "validate-config",
                "step_action": "validate",
            },
        )
    )
    time.sleep(0.5)  # Simulate work
    bus.emit(
        HypervisorEvent(
            event_type=EventType.SAGA_STEP_COMMITTED,
            session_id="s1",
            agent_did="did:mesh:orchestrator",
            payload={
                "saga_id": "deploy-v2",
                "step_id": "validate-config",
                "step_action": "validate",
                "result": "all checks passed",
            },
        )
    )
    span = exporter.completed_spans[0]
    print(f"Name: {span.name}")  # "saga.step.validate"
    print(f"Status: {span.status}")  # "ok"
    print(f"Duration: {span.duration_seconds:.2f}s")  # — 0.50s
    print(f"Attrs: {span.attributes}")

    out = lines(capsys)
    assert out[:2] == ["Name: saga.step.validate", "Status: ok"]
    # A loaded machine may oversleep; the span is timed from the two events.
    assert re.fullmatch(r"Duration: 0\.[5-9]\ds", out[2])
    assert 0.5 <= span.duration_seconds < 1.0
    assert out[3] == DEPLOY_ATTRS

    (saga_line,) = _section7_rest(capsys, bus, exporter)
    match = re.fullmatch(r"Duration: (\d+\.\d\d)s, Status: ok", saga_line)
    assert match is not None
    assert 0.5 <= float(match.group(1)) < 1.0


def test_section7_saga_spans_sleep_free(capsys: pytest.CaptureFixture[str]) -> None:
    """The same example with explicit timestamps: the printed durations are exact."""
    from meshwatch.instrumentation import (
        EventType,
        HypervisorEvent,
        HypervisorEventBus,
        SagaSpanExporter,
    )

    bus = HypervisorEventBus()
    exporter = SagaSpanExporter(bus)
    t0 = datetime.now(UTC) - timedelta(seconds=10)
    bus.emit(
        HypervisorEvent(
            event_type=EventType.SAGA_CREATED,
            session_id="s1",
            agent_did="did:mesh:orchestrator",
            payload={"saga_id": "deploy-v2"},
            timestamp=t0,
        )
    )
    bus.emit(
        HypervisorEvent(
            event_type=EventType.SAGA_STEP_STARTED,
            session_id="s1",
            agent_did="did:mesh:orchestrator",
            payload={
                "saga_id": "deploy-v2",
                "step_id": "validate-config",
                "step_action": "validate",
            },
            timestamp=t0,
        )
    )
    bus.emit(
        HypervisorEvent(
            event_type=EventType.SAGA_STEP_COMMITTED,
            session_id="s1",
            agent_did="did:mesh:orchestrator",
            payload={
                "saga_id": "deploy-v2",
                "step_id": "validate-config",
                "step_action": "validate",
                "result": "all checks passed",
            },
            timestamp=t0 + timedelta(seconds=0.5),
        )
    )
    span = exporter.completed_spans[0]
    print(f"Name: {span.name}")
    print(f"Status: {span.status}")
    print(f"Duration: {span.duration_seconds:.2f}s")
    print(f"Attrs: {span.attributes}")
    assert lines(capsys) == [
        "Name: saga.step.validate",
        "Status: ok",
        "Duration: 0.50s",
        DEPLOY_ATTRS,
    ]
    assert span.start_time == t0.timestamp()
    # The saga-level span runs from SAGA_CREATED (t0) to the real-time SAGA_COMPLETED.
    (saga_line,) = _section7_rest(capsys, bus, exporter)
    match = re.fullmatch(r"Duration: (\d+\.\d\d)s, Status: ok", saga_line)
    assert match is not None
    assert 10.0 <= float(match.group(1)) < 60.0


def test_section7_escalated_saga_is_an_error_span() -> None:
    from meshwatch.instrumentation import (
        EventType,
        HypervisorEvent,
        HypervisorEventBus,
        SagaSpanExporter,
    )

    bus = HypervisorEventBus()
    exporter = SagaSpanExporter(bus)
    bus.emit(HypervisorEvent(EventType.SAGA_CREATED, payload={"saga_id": "deploy-v3"}))
    bus.emit(HypervisorEvent(EventType.SAGA_ESCALATED, payload={"saga_id": "deploy-v3"}))
    # EventType.SAGA_ESCALATED — span.status == "error", name == "saga.escalated.{id}"
    (span,) = exporter.completed_spans
    assert span.status == "error"
    assert span.name == "saga.escalated.deploy-v3"


def test_section7_span_sink(capsys: pytest.CaptureFixture[str]) -> None:
    from meshwatch.instrumentation import (
        EventType,
        HypervisorEvent,
        HypervisorEventBus,
        SagaSpanExporter,
        SpanSink,
    )

    bus = HypervisorEventBus()
    exporter = SagaSpanExporter(bus)

    class JaegerSink:
        """Forward saga spans to a Jaeger backend."""

        def record_span(self, name, start_time, end_time, attributes, status):  # type: ignore[no-untyped-def]
            duration_ms = (end_time - start_time) * 1000
            print(f"-> Jaeger: {name} [{status}] {duration_ms:.0f}ms")

    sink = JaegerSink()
    assert isinstance(sink, SpanSink)
    exporter.attach_sink(sink)  # Spans now go to both buffer AND sink
    # ... emit saga events ...
    t0 = datetime.now(UTC)
    step = {"saga_id": "deploy-v2", "step_id": "deploy", "step_action": "deploy"}
    bus.emit(HypervisorEvent(EventType.SAGA_STEP_STARTED, payload=step, timestamp=t0))
    bus.emit(
        HypervisorEvent(
            EventType.SAGA_STEP_COMMITTED, payload=step, timestamp=t0 + timedelta(seconds=5.2)
        )
    )
    exporter.detach_sink()  # Stop real-time forwarding
    bus.emit(HypervisorEvent(EventType.SAGA_COMPLETED, payload={"saga_id": "deploy-v2"}))

    assert lines(capsys) == ["-> Jaeger: saga.step.deploy [ok] 5200ms"]
    # Spans are always buffered in completed_spans regardless of the sink.
    assert [s.name for s in exporter.completed_spans] == [
        "saga.step.deploy",
        "saga.completed.deploy-v2",
    ]
