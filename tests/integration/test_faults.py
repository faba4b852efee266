"""The chain under faults: a crashed Prometheus, an absent Alertmanager, a dead agent endpoint,
and a trace collector that is down or slow.

These tests break things, so they share a stack of their own (steady demo,
plus an agent endpoint the test process serves and can kill). Its demo
exports spans to a port where nothing listens, the way an agent configured for
a collector that is down would. The emit-path test runs the demo's fleet in
this process, as fast as it goes, against a healthy, a slow and a dead
collector, and compares.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from meshwatch.demo.runner import Demo, DemoConfig
from meshwatch.demo.scenario import build_scenario
from meshwatch.instrumentation.catalogue import SPANS_DROPPED
from meshwatch.instrumentation.drops import span_drops
from meshwatch.stack.prometheus_config import JOB_AGENTS, JOB_DEMO, JOB_PROMETHEUS
from tests.integration.helpers.agent_endpoint import AgentEndpoint
from tests.integration.helpers.net import LOOPBACK, free_port
from tests.integration.helpers.otlp_receiver import OtlpReceiver
from tests.integration.helpers.poll import wait_until
from tests.integration.helpers.stack import INTERVAL, LiveStack, running_stack
from tests.integration.helpers.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.integration

TARGET_DOWN = "TargetDown"
# `for` is 5 s and intervals 1 s; leave room for a slow machine.
ALERT_TIMEOUT = 45.0


@pytest.fixture(scope="module")
def agent() -> Iterator[AgentEndpoint]:
    endpoint = AgentEndpoint()
    endpoint.start()
    try:
        yield endpoint
    finally:
        endpoint.stop()


@pytest.fixture(scope="module")
def fault_stack(
    native_binaries: None,
    webhook: WebhookReceiver,
    agent: AgentEndpoint,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveStack]:
    dead_collector = f"http://{LOOPBACK}:{free_port()}"
    with running_stack(
        tmp_path_factory.mktemp("fault-stack"),
        webhook,
        scenario="steady",
        otlp_endpoint=dead_collector,
        agent_targets=[agent.target],
        group_wait=INTERVAL,  # no inhibition to protect here: notify at once
    ) as stack:
        yield stack


@pytest.fixture
def healthy_agent(fault_stack: LiveStack, agent: AgentEndpoint) -> AgentEndpoint:
    """The agent endpoint serving and scraped, with no TargetDown firing for it (test isolation)."""
    agent.start()
    wait_until(
        lambda: fault_stack.prometheus.value(f'up{{job="{JOB_AGENTS}"}}') == 1,
        timeout=ALERT_TIMEOUT,
        what="the agent target up",
    )
    wait_until(
        lambda: not fault_stack.prometheus.firing(TARGET_DOWN, job=JOB_AGENTS),
        timeout=ALERT_TIMEOUT,
        what="no TargetDown firing for the agent",
    )
    return agent


def target_down_notifications(stack: LiveStack, agent: AgentEndpoint, since: float, status: str):
    return [
        alert
        for alert in stack.webhook.alerts(
            path=stack.receiver_path("critical"),
            alertname=TARGET_DOWN,
            status=status,
            labels={"job": JOB_AGENTS, "instance": agent.target},
        )
        if alert.received_at >= since
    ]


def test_prometheus_killed_keeps_earlier_samples_and_resumes_scraping(
    fault_stack: LiveStack,
) -> None:
    prometheus, native = fault_stack.prometheus, fault_stack.native
    series = f'up{{job="{JOB_PROMETHEUS}"}}'
    # Some history first: at least five scrapes of Prometheus itself.
    wait_until(
        lambda: (prometheus.value(f"count_over_time({series}[1h])") or 0) >= 5,
        timeout=30,
        what="five samples of Prometheus' own up series",
    )
    killed_at = time.time()
    before = prometheus.value(f"count_over_time({series}[1h])", at=killed_at)
    assert before is not None and before >= 5
    killed_pid = native.running("prometheus").pid  # type: ignore[union-attr]

    native.signal("prometheus", signal.SIGKILL)
    wait_until(lambda: native.running("prometheus") is None, timeout=10, what="Prometheus gone")
    native.start()  # starts what is not running: Prometheus only
    assert native.running("prometheus").pid != killed_pid  # type: ignore[union-attr]
    assert native.running("demo").pid == fault_stack.pids()["demo"]  # type: ignore[union-attr]
    restarted_at = time.time()

    # Samples scraped before the kill are read back from the WAL on disk.
    after = wait_until(
        lambda: prometheus.value(f"count_over_time({series}[1h])", at=killed_at),
        timeout=30,
        what="Prometheus answering after restart",
    )
    assert after == before
    # And scraping resumes, for every job.
    for job in (JOB_PROMETHEUS, JOB_DEMO):
        wait_until(
            lambda job=job: (prometheus.value(f'timestamp(up{{job="{job}"}})') or 0) > restarted_at,
            timeout=30,
            what=f"a fresh scrape of {job} after the restart",
        )


def test_agents_metrics_endpoint_dies_and_target_down_names_it(
    fault_stack: LiveStack, healthy_agent: AgentEndpoint
) -> None:
    died_at = time.time()
    healthy_agent.stop()
    firing = wait_until(
        lambda: fault_stack.prometheus.firing(
            TARGET_DOWN, job=JOB_AGENTS, instance=healthy_agent.target
        ),
        timeout=ALERT_TIMEOUT,
        what="TargetDown firing for the agent",
    )
    assert firing[0]["labels"]["severity"] == "critical"
    (notified, *_) = wait_until(
        lambda: target_down_notifications(fault_stack, healthy_agent, died_at, "firing"),
        timeout=ALERT_TIMEOUT,
        what="TargetDown delivered to the critical receiver",
    )
    # The notification says which target died, in labels and in words.
    assert notified.labels["instance"] == healthy_agent.target
    assert notified.labels["job"] == JOB_AGENTS
    assert healthy_agent.target in notified.annotations["description"]
    assert JOB_AGENTS in notified.annotations["description"]
    assert notified.annotations["runbook_url"] == fault_stack.settings.alerts.runbook_url(
        TARGET_DOWN
    )

    healthy_agent.start()
    wait_until(
        lambda: target_down_notifications(fault_stack, healthy_agent, died_at, "resolved"),
        timeout=ALERT_TIMEOUT,
        what="TargetDown resolved once the endpoint is back",
    )


def test_alert_that_starts_firing_while_alertmanager_is_down_arrives_when_it_returns(
    fault_stack: LiveStack, healthy_agent: AgentEndpoint
) -> None:
    native, prometheus = fault_stack.native, fault_stack.prometheus
    native.stop(["alertmanager"])
    assert not fault_stack.alertmanager.ready()
    died_at = time.time()
    healthy_agent.stop()

    wait_until(
        lambda: prometheus.firing(TARGET_DOWN, job=JOB_AGENTS, instance=healthy_agent.target),
        timeout=ALERT_TIMEOUT,
        what="TargetDown firing while Alertmanager is down",
    )
    # Prometheus tried to notify and could not.
    wait_until(
        lambda: (
            (prometheus.value("sum(increase(prometheus_notifications_errors_total[1m]))") or 0) > 0
        ),
        timeout=ALERT_TIMEOUT,
        what="Prometheus failing to reach Alertmanager",
    )
    assert not target_down_notifications(fault_stack, healthy_agent, died_at, "firing")

    native.start()  # Alertmanager only: everything else is running
    wait_until(fault_stack.alertmanager.ready, timeout=30, what="Alertmanager back")
    wait_until(
        lambda: target_down_notifications(fault_stack, healthy_agent, died_at, "firing"),
        timeout=ALERT_TIMEOUT,
        what="TargetDown delivered after Alertmanager returned",
    )


def test_demo_counts_the_spans_a_dead_collector_never_got(fault_stack: LiveStack) -> None:
    """The fault stack's demo exports to a port where nothing listens; it says so in a metric."""
    wait_until(
        lambda: fault_stack.prometheus.value(
            f'sum({SPANS_DROPPED.name}{{job="{JOB_DEMO}", reason="export_failed"}})'
        ),
        timeout=60,
        what="spans the demo failed to export, counted and scraped",
    )
    # Losing its collector did not stop the demo serving metrics.
    assert fault_stack.prometheus.value(f'up{{job="{JOB_DEMO}"}}') == 1


# How much slower the fleet may run against a broken collector than against a
# healthy one, measured in the same test. Generous on purpose: export happens
# on background threads, so a correct emit path is no slower at all (usually
# faster: a healthy collector's export threads compete for the CPU), while an
# emit path that waited on the collector would be slower by whole export
# timeouts, orders of magnitude beyond this.
EMIT_SLOWDOWN_LIMIT = 3.0
# Virtual seconds of the incident scenario each run simulates (thousands of spans).
EMIT_VIRTUAL_SECONDS = 300.0
DROP_REASONS = ("queue_full", "export_failed", "shutdown")


def _drops() -> dict[str, float]:
    return {reason: span_drops(reason) for reason in DROP_REASONS}


def _run_fleet(otlp_endpoint: str) -> tuple[float, int]:
    """Wall time and steps of the demo's fleet simulated as fast as possible, spans exported."""
    demo = Demo(
        DemoConfig(build_scenario("incident", seed=5), metrics_port=0, otlp_endpoint=otlp_endpoint)
    )
    demo.start()
    try:
        assert demo.world is not None
        started = time.perf_counter()
        steps = demo.world.sim.run_until(EMIT_VIRTUAL_SECONDS)
        return time.perf_counter() - started, steps
    finally:
        demo.close(timeout=1.0)


@pytest.mark.parametrize("fault", ["slow", "down"])
def test_a_slow_or_dead_collector_neither_slows_the_emit_path_nor_loses_spans_silently(
    fault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bound each export attempt as a deployment would (OTEL_EXPORTER_OTLP_TRACES_TIMEOUT).
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2")
    with OtlpReceiver() as healthy:
        baseline, baseline_steps = _run_fleet(healthy.endpoint)
        assert healthy.request_count > 0, "the healthy collector received nothing"

    dropped_before = _drops()
    with OtlpReceiver(mode="slow", delay=30.0) as slow:
        endpoint = slow.endpoint if fault == "slow" else f"http://{LOOPBACK}:{free_port()}"
        elapsed, steps = _run_fleet(endpoint)
        # Spans that cannot reach the collector are counted, not lost silently.
        dropped = wait_until(
            lambda: {
                reason: count - dropped_before[reason]
                for reason, count in _drops().items()
                if count > dropped_before[reason]
            },
            timeout=30,
            what=f"spans counted as dropped with a {fault} collector",
        )
    assert steps == baseline_steps, "the same seed must replay the same fleet"
    assert elapsed <= EMIT_SLOWDOWN_LIMIT * baseline, (
        f"{steps} steps took {elapsed:.2f}s with a {fault} collector vs {baseline:.2f}s "
        f"with a healthy one (limit {EMIT_SLOWDOWN_LIMIT}x); dropped: {dropped}"
    )
