"""The native stack with its demo on the real agent-hypervisor runtime delivers the tutorial alerts.

``stack.demo.runtime: agent-hypervisor`` makes `make up`'s demo run the fleet on
agent-hypervisor, instrumented by meshwatch.integrations.agent_hypervisor. The
incident's breaches are what the runtime's RingBreachDetector judges breaches,
the stuck elevation is a real grant, and the slow policy backend is timed
around the real ring check. Each of HighRingBreachRate, ElevationTooLong and
GovernanceLatencyHigh must reach Alertmanager's webhook receiver.

A real grant cannot be backdated, so ElevationTooLong's threshold is lowered
to ``ELEVATION_THRESHOLD`` seconds here: the alert then fires through the same
rule, on the same gauge, after that much real time instead of five minutes.

The governance dashboard's Prometheus queries (rings, elevations and their
refusals, policy decisions) must all have data on this stack too: here every
series they read comes from the real runtime.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from meshwatch.instrumentation.catalogue import RING_ELEVATIONS_DENIED
from tests.integration.helpers.panel_check import (
    PanelQueries,
    empty_panels,
    panel_queries,
    recording_rule_queries,
)
from tests.integration.helpers.poll import wait_until
from tests.integration.helpers.stack import LiveStack, running_stack
from tests.integration.helpers.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.integration

TUTORIAL_ALERTS = ("HighRingBreachRate", "ElevationTooLong", "GovernanceLatencyHigh")
ELEVATION_THRESHOLD = 20.0
# From the stack's start: the threshold, the 5 s `for`, group_wait and slack for a loaded machine.
DELIVERY_TIMEOUT = 150.0
GOVERNANCE_DASHBOARD = "meshwatch-governance"
PANELS_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def runtime_stack(
    native_binaries: None, webhook: WebhookReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveStack, float]]:
    started = time.monotonic()
    with running_stack(
        tmp_path_factory.mktemp("runtime-stack"),
        webhook,
        scenario="incident",
        runtime="agent-hypervisor",
        elevation_threshold=ELEVATION_THRESHOLD,
        group_wait="2s",
    ) as stack:
        yield stack, started


@pytest.mark.parametrize("alertname", TUTORIAL_ALERTS)
def test_the_real_runtime_delivers_the_tutorial_alert(
    runtime_stack: tuple[LiveStack, float], alertname: str
) -> None:
    stack, started = runtime_stack
    paths = {stack.receiver_path("critical"), stack.receiver_path("warning")}

    def delivered() -> list[object]:
        return [
            alert
            for alert in stack.webhook.alerts(alertname=alertname, status="firing")
            if alert.path in paths
        ]

    alerts = wait_until(delivered, timeout=DELIVERY_TIMEOUT, what=f"{alertname} delivered")
    first = min(alerts, key=lambda a: a.received_at)  # type: ignore[attr-defined]
    print(f"{alertname} delivered {time.monotonic() - started:.0f}s after the stack started")
    assert first.annotations["runbook_url"] == stack.settings.alerts.runbook_url(alertname)  # type: ignore[attr-defined]


def test_the_stack_demo_runs_on_the_real_runtime(runtime_stack: tuple[LiveStack, float]) -> None:
    """A refused elevation is counted: only the runtime's RingElevationManager refuses here."""
    stack, _ = runtime_stack
    wait_until(
        lambda: f"{RING_ELEVATIONS_DENIED.name}{{" in stack.demo_metrics_text(),
        timeout=60,
        what="a refused elevation in the demo's /metrics",
    )


def test_every_governance_panel_query_has_data_on_the_real_runtime(
    runtime_stack: tuple[LiveStack, float],
) -> None:
    """What Grafana would send for the governance dashboard's panels, refused elevations included."""
    stack, _ = runtime_stack
    every = panel_queries(
        stack.native.workdir.stack / "grafana" / "dashboards",
        recording_rule_queries(stack.prometheus),
    )
    governance = PanelQueries(
        [
            (label, expr)
            for label, expr in every.checkable
            if label.startswith(GOVERNANCE_DASHBOARD)
        ],
        [],
    )
    assert any(RING_ELEVATIONS_DENIED.name in expr for _, expr in governance.checkable)
    empty = empty_panels(stack.prometheus, governance, timeout=PANELS_TIMEOUT)
    if empty:
        pytest.fail("governance panel queries without data:\n  " + "\n  ".join(empty))
