"""Governance metrics: the tutorial's .NET calls in Python, in seconds, with bounded labels."""

from __future__ import annotations

import logging
import math

import pytest

from meshwatch.instrumentation import (
    CardinalityGuard,
    CausalTraceId,
    EventType,
    GovernanceMetrics,
    use_trace,
)
from meshwatch.instrumentation.catalogue import (
    GOVERNANCE_ACTIVE_AGENTS,
    GOVERNANCE_ALLOWED,
    GOVERNANCE_AUDIT_EVENTS,
    GOVERNANCE_BLOCKED,
    GOVERNANCE_DECISIONS,
    GOVERNANCE_LATENCY,
    GOVERNANCE_RATE_LIMIT_HITS,
    GOVERNANCE_TRUST_SCORE,
)
from meshwatch.instrumentation.context import (
    current_trace,
    current_trace_id_hex,
    register_trace_id_provider,
    unregister_trace_id_provider,
)
from meshwatch.instrumentation.drops import event_drops
from meshwatch.instrumentation.stores import OVERFLOW


def samples(metrics: GovernanceMetrics) -> dict:
    return {f.metric: f.samples for f in metrics.metric_families()}


def record_tutorial_decisions(metrics: GovernanceMetrics) -> None:
    """Section 9's three RecordDecision calls, in Python."""
    metrics.record_decision(
        allowed=True, agent_id="did:mesh:data-analyst", tool_name="file_read", evaluation_ms=0.05
    )
    metrics.record_decision(
        allowed=False, agent_id="did:mesh:untrusted", tool_name="shell_exec", evaluation_ms=0.12
    )
    metrics.record_decision(
        allowed=False,
        agent_id="did:mesh:noisy-agent",
        tool_name="api_call",
        evaluation_ms=0.01,
        rate_limited=True,
    )


def test_tutorial_decisions_bounded_labels() -> None:
    metrics = GovernanceMetrics()
    record_tutorial_decisions(metrics)
    s = samples(metrics)
    assert s[GOVERNANCE_DECISIONS] == {
        ("allowed", "file_read"): 1.0,
        ("blocked", "shell_exec"): 1.0,
        ("rate_limited", "api_call"): 1.0,
    }
    assert s[GOVERNANCE_ALLOWED] == {("file_read",): 1.0}
    # rate-limited counts as blocked AND as a rate-limit hit
    assert s[GOVERNANCE_BLOCKED] == {("shell_exec",): 1.0, ("api_call",): 1.0}
    assert s[GOVERNANCE_RATE_LIMIT_HITS] == {("api_call",): 1.0}
    latency = s[GOVERNANCE_LATENCY]
    assert set(latency) == {("allowed",), ("blocked",), ("rate_limited",)}
    # milliseconds in, seconds stored: 0.05 ms = 0.00005 s, in the first (0.5 ms) bucket
    assert latency[("allowed",)].sum == pytest.approx(0.00005)
    assert latency[("allowed",)].cumulative_counts[0] == 1
    assert latency[("blocked",)].sum == pytest.approx(0.00012)
    for family in metrics.metric_families():
        assert "agent_id" not in family.label_names


def test_latency_buckets_in_seconds() -> None:
    metrics = GovernanceMetrics()
    metrics.record_decision(True, "a", "t", 30.0)  # 30 ms
    metrics.record_decision(True, "a", "t", 2_000)  # 2 s, int accepted
    metrics.record_decision(True, "a", "t", 10_000.0)  # 10 s: only +Inf
    value = samples(metrics)[GOVERNANCE_LATENCY][("allowed",)]
    bounds = GOVERNANCE_LATENCY.buckets
    assert value.cumulative_counts[bounds.index(0.025)] == 0
    assert value.cumulative_counts[bounds.index(0.05)] == 1
    assert value.cumulative_counts[bounds.index(2.5)] == 2
    assert value.cumulative_counts[-1] == 3
    assert value.sum == pytest.approx(12.03)


def test_per_agent_labels_are_opt_in() -> None:
    metrics = GovernanceMetrics(per_agent_labels=True)
    record_tutorial_decisions(metrics)
    s = samples(metrics)
    assert s[GOVERNANCE_DECISIONS][("blocked", "shell_exec", "did:mesh:untrusted")] == 1.0
    assert s[GOVERNANCE_RATE_LIMIT_HITS] == {("api_call", "did:mesh:noisy-agent"): 1.0}
    assert ("allowed", "did:mesh:data-analyst") in s[GOVERNANCE_LATENCY]
    families = {f.metric: f for f in metrics.metric_families()}
    assert families[GOVERNANCE_DECISIONS].label_names == ("decision", "tool_name", "agent_id")
    assert metrics.decision_count("allowed", "file_read", "did:mesh:data-analyst") == 1.0


def test_series_cap_applies_even_with_per_agent_labels() -> None:
    metrics = GovernanceMetrics(per_agent_labels=True, guard=CardinalityGuard(max_series=3))
    for i in range(10):
        metrics.record_decision(True, f"did:{i}", "t", 1.0)
    decisions = samples(metrics)[GOVERNANCE_DECISIONS]
    assert len(decisions) == 4
    assert decisions[(OVERFLOW, OVERFLOW, OVERFLOW)] == 7.0


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((True, "a", None, 1.0), "invalid_tool_name"),
        ((True, "a", 42, 1.0), "invalid_tool_name"),
        ((True, "a", "t", -1.0), "invalid_latency"),
        ((True, "a", "t", -1), "invalid_latency"),
        ((True, "a", "t", math.nan), "invalid_latency"),
        ((True, "a", "t", math.inf), "invalid_latency"),
        ((True, "a", "t", "1.0"), "invalid_latency"),
        ((True, "a", "t", None), "invalid_latency"),
        ((True, "a", "t", True), "invalid_latency"),
    ],
)
def test_bad_inputs_are_dropped_not_raised(args: tuple, reason: str) -> None:
    metrics = GovernanceMetrics()
    before = event_drops("governance", reason)
    metrics.record_decision(*args)
    assert event_drops("governance", reason) == before + 1
    assert samples(metrics)[GOVERNANCE_DECISIONS] == {}


def test_bad_agent_is_dropped_only_when_agents_are_labels() -> None:
    before = event_drops("governance", "invalid_agent_id")
    GovernanceMetrics(per_agent_labels=True).record_decision(True, None, "t", 1.0)  # type: ignore[arg-type]
    assert event_drops("governance", "invalid_agent_id") == before + 1
    metrics = GovernanceMetrics()
    metrics.record_decision(True, None, "t", 1.0)  # type: ignore[arg-type]
    assert metrics.decision_count("allowed", "t") == 1.0


def test_latency_exemplar_carries_the_causal_trace() -> None:
    metrics = GovernanceMetrics()
    metrics.record_decision(True, "a", "t", 0.2)
    value = samples(metrics)[GOVERNANCE_LATENCY][("allowed",)]
    assert value.exemplars == ()  # no trace, no exemplar
    trace = CausalTraceId().child()
    with use_trace(trace) as active:
        assert current_trace() is active is trace
        assert current_trace_id_hex() == trace.trace_id_hex32
        metrics.record_decision(True, "a", "t", 0.2)
    assert current_trace() is None
    value = samples(metrics)[GOVERNANCE_LATENCY][("allowed",)]
    exemplar = value.exemplars[0]
    assert exemplar.labels == {"trace_id": "0" * 20 + trace.trace_id}
    assert exemplar.value == pytest.approx(0.0002)


def test_trace_id_providers_win_and_misbehaving_ones_are_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    otel_id = "4bf92f3577b34da6a3ce929d0e0e4736"

    def broken() -> str | None:
        raise RuntimeError("provider bug")

    def garbage() -> str | None:
        return "not-a-trace-id"

    def otel() -> str | None:
        return otel_id

    def idle() -> str | None:
        return None

    for provider in (broken, garbage, idle):
        register_trace_id_provider(provider)
    try:
        with caplog.at_level(logging.DEBUG, logger="meshwatch.instrumentation.context"):
            assert current_trace_id_hex() is None
            with use_trace("a1b2c3d4e5f6/01234567"):
                assert current_trace_id_hex() == "00000000000000000000a1b2c3d4e5f6"
                register_trace_id_provider(otel)
                register_trace_id_provider(otel)  # idempotent
                assert current_trace_id_hex() == otel_id
        assert "provider bug" in caplog.text
    finally:
        for provider in (broken, garbage, idle, otel):
            unregister_trace_id_provider(provider)
    assert current_trace_id_hex() is None
    with pytest.raises(TypeError):
        register_trace_id_provider("nope")  # type: ignore[arg-type]
    with pytest.raises(TypeError), use_trace(42):  # type: ignore[arg-type]
        pass


def test_trust_scores_accept_both_callback_shapes() -> None:
    metrics = GovernanceMetrics()
    metrics.register_trust_score_gauge(lambda: {"did:mesh:trusted": 850.0})
    # the .NET shape: measurements of (score, {"agent_id": ...})
    metrics.register_trust_score_gauge(
        lambda: [(320.0, {"agent_id": "did:mesh:suspicious"}), (900, {"agent_id": "did:mesh:x"})]
    )
    assert samples(metrics)[GOVERNANCE_TRUST_SCORE] == {
        ("did:mesh:trusted",): 850.0,
        ("did:mesh:suspicious",): 320.0,
        ("did:mesh:x",): 900.0,
    }


def test_trust_score_callbacks_that_fail_never_break_collection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = GovernanceMetrics()

    def raises() -> dict:
        raise RuntimeError("registry offline")

    def bad_entries() -> list:
        return [("x", {"agent_id": "did:a"}), (1.0, {}), "junk", (math.nan, {"agent_id": "n"})]

    def breaks_midway():  # type: ignore[no-untyped-def]
        yield (1.0, {"agent_id": "did:early"})
        raise RuntimeError("iterator died")

    for callback in (raises, bad_entries, breaks_midway, lambda: 42, lambda: {"did:ok": 5}):
        metrics.register_trust_score_gauge(callback)
    errors_before = event_drops("governance", "callback_error")
    invalid_before = event_drops("governance", "invalid_trust_score")
    with caplog.at_level(logging.WARNING, logger="meshwatch.instrumentation.governance"):
        scores = samples(metrics)[GOVERNANCE_TRUST_SCORE]
    assert scores == {("did:early",): 1.0, ("did:ok",): 5.0}
    assert event_drops("governance", "callback_error") == errors_before + 2
    assert event_drops("governance", "invalid_trust_score") == invalid_before + 5
    assert "registry offline" in caplog.text
    with pytest.raises(TypeError):
        metrics.register_trust_score_gauge(None)  # type: ignore[arg-type]


def test_trust_scores_are_bounded_by_the_guard() -> None:
    metrics = GovernanceMetrics(guard=CardinalityGuard(max_series=2))
    metrics.register_trust_score_gauge(lambda: {f"did:{i}": float(i) for i in range(5)})
    assert len(metrics.trust_scores()) == 3  # two agents and the overflow series


def test_active_agents_gauge() -> None:
    metrics = GovernanceMetrics()
    assert GOVERNANCE_ACTIVE_AGENTS not in samples(metrics)  # nothing registered, nothing exposed
    registry = ["a", "b", "c"]
    metrics.register_active_agents_gauge(lambda: len(registry))
    assert samples(metrics)[GOVERNANCE_ACTIVE_AGENTS] == {(): 3.0}
    registry.append("d")
    assert samples(metrics)[GOVERNANCE_ACTIVE_AGENTS] == {(): 4.0}

    broken = GovernanceMetrics()
    broken.register_active_agents_gauge(lambda: "many")
    assert samples(broken)[GOVERNANCE_ACTIVE_AGENTS] == {}
    with pytest.raises(TypeError):
        broken.register_active_agents_gauge(3)  # type: ignore[arg-type]


def test_audit_events() -> None:
    metrics = GovernanceMetrics()
    metrics.record_audit_event()
    metrics.record_audit_event(EventType.AUDIT_COMMITTED, count=2)
    metrics.record_audit_event("policy_change")
    before = event_drops("governance", "invalid_count")
    metrics.record_audit_event("x", count=-1)
    metrics.record_audit_event("", count=1)
    assert event_drops("governance", "invalid_count") == before + 1
    assert samples(metrics)[GOVERNANCE_AUDIT_EVENTS] == {
        ("policy_decision",): 1.0,
        ("audit.committed",): 2.0,
        ("policy_change",): 1.0,
    }
