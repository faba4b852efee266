"""The SLO burn-rate page, live: the demo's incident burns the test SLO's budget, and stops.

The session stack runs the test SLO of :data:`tests.integration.helpers.stack.TEST_SLO`
(99.5% of governance evaluations within 50 ms) with the default burn-rate pairs.
The incident's sick policy backend makes about half the evaluations slower than
50 ms for ``INCIDENT_SECONDS``: the 1h and 5m error ratios both pass 14.4 times
the budget within the first evaluations, so the page fires and reaches the
critical receiver. When the incident ends, the windows fill with fast
evaluations and the page resolves. (On a Prometheus younger than 5 minutes the
1h and 5m windows hold the same samples, so here both fall below the factor
together; that the short window alone stops a page is proven by the promtool
case "resolves the 14.4x page ... while the 1h window still burns".)
"""

from __future__ import annotations

import time

import pytest

from meshwatch.alerts.slos import SLO_ALERT, burn_rate
from meshwatch.settings import Duration
from tests.integration.conftest import INCIDENT_SECONDS
from tests.integration.helpers.poll import wait_until
from tests.integration.helpers.stack import TEST_SLO, LiveStack
from tests.integration.helpers.webhook_receiver import DeliveredAlert
from tests.integration.test_alert_delivery import fired

pytestmark = pytest.mark.integration

PAGE = {"slo": str(TEST_SLO["name"]), "long_window": "1h", "short_window": "5m"}
# From the stack's start: the first evaluations with two scrapes, then delivery.
PAGE_TIMEOUT = 120.0
# The 5m window must move past the incident (it ends INCIDENT_SECONDS in); then delivery.
RESOLVE_TIMEOUT = INCIDENT_SECONDS + 300.0 + 120.0


def _page(stack: LiveStack, status: str) -> list[DeliveredAlert]:
    return stack.webhook.alerts(
        path=stack.receiver_path("critical"), alertname=SLO_ALERT, status=status, labels=PAGE
    )


def test_the_incident_pages_on_the_governance_latency_budget(
    live_stack: LiveStack, record_property: pytest.RecordProperty
) -> None:
    firing = wait_until(
        lambda: fired(live_stack.prometheus, SLO_ALERT, severity="critical", **PAGE),
        timeout=PAGE_TIMEOUT,
        what=f"{SLO_ALERT} {PAGE} firing",
    )
    assert firing == [{"alertname": SLO_ALERT, "severity": "critical", **PAGE}]
    notified = wait_until(
        lambda: _page(live_stack, "firing"), timeout=PAGE_TIMEOUT, what="the SLO page delivered"
    )
    delay = notified[0].received_at - live_stack.started_at
    record_property("slo_page_delivered_after_s", round(delay, 1))
    print(f"SLO page delivered {delay:.1f}s after the stack was ready")
    alert = notified[0]
    assert dict(alert.labels) == firing[0]
    assert alert.annotations["runbook_url"].endswith(f"/{SLO_ALERT}.md")
    description = alert.annotations["description"]
    assert "SLO governance-latency (99.5% of governance evaluations within 0.05s" in description
    burn = float(description.split("error budget ")[1].split("x as fast")[0])
    assert burn > 14.4, description


@pytest.mark.timeout(RESOLVE_TIMEOUT + 60)
def test_the_page_resolves_once_the_burn_ends(
    live_stack: LiveStack, record_property: pytest.RecordProperty
) -> None:
    resolved = wait_until(
        lambda: _page(live_stack, "resolved"),
        timeout=max(1.0, live_stack.started_at + RESOLVE_TIMEOUT - time.time()),
        what="the SLO page resolved",
    )
    after = resolved[0].received_at - live_stack.started_at
    record_property("slo_page_resolved_after_s", round(after, 1))
    print(f"SLO page resolved {after:.1f}s after the stack was ready")
    assert after > INCIDENT_SECONDS, "the page resolved while the incident still burned"
    slo = live_stack.settings.slos.objectives[0]
    short_burn = live_stack.prometheus.query(burn_rate(slo, Duration("5m")))
    assert short_burn and float(short_burn[0]["value"][1]) <= 14.4, short_burn
