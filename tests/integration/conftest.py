"""Fixtures of the native integration tier: receivers run by the test, and a live stack.

The session stack runs the demo's ``incident`` scenario (which also produces
every catalogue metric) with spans exported to the test's OTLP receiver, so
the chain, dashboard, alert-delivery and span tests share one start-up. Fault
tests start their own short-lived stacks because they break things.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.helpers.otlp_receiver import OtlpReceiver
from tests.integration.helpers.report import terminal_summary
from tests.integration.helpers.stack import LiveStack, running_stack
from tests.integration.helpers.webhook_receiver import WebhookReceiver

# The incident lasts this long, then the demo runs healthy: long enough for every
# alert to fire and be delivered (and inhibition to be observed), short enough
# for the resolved notifications to arrive within the tier's budget.
INCIDENT_SECONDS = 35
# The session stack's remediation: the demo's receiver decides on the incident's
# ring breaches and records what it would do, without doing it.
DRY_RUN_REMEDIATION = {
    "dry_run": True,
    "policies": [{"alert": "HighRingBreachRate", "action": "kill_agent", "agents": ["did:mesh:*"]}],
}


@pytest.fixture(scope="session")
def native_binaries(prometheus_bin: str, alertmanager_bin: str, promtool: str, amtool: str) -> None:
    """The real servers and tools must be installed (a failure in CI, a stated skip elsewhere)."""


@pytest.fixture(scope="session")
def webhook() -> Iterator[WebhookReceiver]:
    """Alertmanager's webhook target for every test stack (each stack has its own paths)."""
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def otlp() -> Iterator[OtlpReceiver]:
    """The OTLP/HTTP receiver the session stack's demo exports spans to."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def live_stack(
    native_binaries: None,
    webhook: WebhookReceiver,
    otlp: OtlpReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveStack]:
    """Prometheus, Alertmanager and the demo (incident scenario), shared by the session."""
    with running_stack(
        tmp_path_factory.mktemp("session-stack"),
        webhook,
        scenario="incident",
        otlp_endpoint=otlp.endpoint,
        incident_duration=INCIDENT_SECONDS,
        # A dry run: remediation's series exist, and the incident runs its course.
        remediation=DRY_RUN_REMEDIATION,
    ) as stack:
        yield stack


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    terminal_summary(config, terminalreporter)
