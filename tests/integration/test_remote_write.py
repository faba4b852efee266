"""Remote write, live: the stack's Prometheus writes to a second real Prometheus.

The receiver runs with ``--web.enable-remote-write-receiver`` (the protocol
Mimir, Thanos Receive and Cortex accept) and scrapes nothing, so whatever it
holds came by remote write. The stack runs the demo's incident, like the
session stack, so that every dashboard panel has data to show; then the
receiver alone must answer every panel query (the "global view"), every
series must carry the stack's external labels, and a 60 s outage of the
receiver must leave no gap once it is back: the stack's WAL-backed queue
retries, and the receiver ends up with exactly the samples the stack holds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from meshwatch.stack.prometheus_config import JOB_DEMO, JOB_PROMETHEUS
from tests.integration.conftest import DRY_RUN_REMEDIATION
from tests.integration.helpers.panel_check import (
    empty_panels,
    panel_queries,
    recording_rule_queries,
)
from tests.integration.helpers.poll import wait_until
from tests.integration.helpers.prom import PrometheusAPI
from tests.integration.helpers.receiver import RemoteWriteReceiver
from tests.integration.helpers.stack import LiveStack, running_stack
from tests.integration.helpers.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.integration

CLUSTER = "it-remote-write"
TENANT = "meshwatch-it"
INCIDENT_SECONDS = 35
OUTAGE_SECONDS = 60.0
DATA_TIMEOUT = 90.0
# After the receiver is back, the queue drains its backlog within this.
CATCH_UP_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def receiver(
    prometheus_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RemoteWriteReceiver]:
    store = RemoteWriteReceiver(prometheus_bin, tmp_path_factory.mktemp("receiver"))
    store.start()
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture(scope="module")
def rw_stack(
    native_binaries: None,
    webhook: WebhookReceiver,
    receiver: RemoteWriteReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveStack]:
    with running_stack(
        tmp_path_factory.mktemp("remote-write-stack"),
        webhook,
        scenario="incident",
        incident_duration=INCIDENT_SECONDS,
        # The demo's receiver serves remediation's series, which the dashboards read.
        remediation=DRY_RUN_REMEDIATION,
        stack_settings={
            "external_labels": {"cluster": CLUSTER},
            "remote_write": [
                {
                    "url": receiver.write_url,
                    "name": "receiver",
                    "headers": {"X-Scope-OrgID": TENANT},
                    # Retry soon after the store is back, so the test is short.
                    "queue": {"max_backoff": "2s"},
                }
            ],
        },
    ) as stack:
        yield stack


def test_samples_arrive_with_the_external_labels(
    rw_stack: LiveStack, receiver: RemoteWriteReceiver
) -> None:
    store = receiver.api
    wait_until(
        lambda: store.value(f'count(up{{job="{JOB_DEMO}", cluster="{CLUSTER}"}})') == 1,
        timeout=DATA_TIMEOUT,
        what="the demo's up series at the receiver, with the cluster label",
    )
    by_cluster = store.query('count by (cluster) ({__name__=~".+"})')
    assert [r["metric"] for r in by_cluster] == [{"cluster": CLUSTER}]
    # Rule results are written too: recording rules and ALERTS come from the stack.
    recorded = sorted(recording_rule_queries(rw_stack.prometheus))
    wait_until(
        lambda: store.query(f'{{__name__=~"{"|".join(recorded)}"}}'),
        timeout=DATA_TIMEOUT,
        what="recorded series at the receiver",
    )


def test_every_dashboard_query_returns_data_against_the_receiver_alone(
    rw_stack: LiveStack, receiver: RemoteWriteReceiver
) -> None:
    queries = panel_queries(
        rw_stack.native.workdir.stack / "grafana" / "dashboards",
        recording_rule_queries(rw_stack.prometheus),
    )
    assert queries.checkable
    empty = empty_panels(receiver.api, queries, timeout=DATA_TIMEOUT)
    assert not empty, "panel queries without data at the receiver:\n  " + "\n  ".join(empty)


def raw_timestamps(prometheus: PrometheusAPI, series: str, start: float, end: float) -> list[float]:
    """Timestamps of every raw sample of the one series ``series`` in ``[start, end]``."""
    window = int(end - start) + 1
    result = prometheus.query(f"{series}[{window}s]", at=end)
    assert len(result) == 1, result
    return [float(t) for t, _ in result[0]["values"] if float(t) >= start]


def test_a_receiver_down_for_60s_leaves_no_gap_once_it_is_back(
    rw_stack: LiveStack, receiver: RemoteWriteReceiver
) -> None:
    source, store = rw_stack.prometheus, receiver.api
    series = f'up{{job="{JOB_PROMETHEUS}"}}'
    retried = "sum(prometheus_remote_storage_samples_retried_total)"
    wait_until(
        lambda: store.value(f"count({series})") == 1,
        timeout=DATA_TIMEOUT,
        what="samples at the receiver before the outage",
    )
    retried_before = source.value(retried) or 0.0
    down_at = time.time()
    receiver.stop()
    # The stack notices: its queue retries the samples it cannot send.
    wait_until(
        lambda: (source.value(retried) or 0.0) > retried_before,
        timeout=OUTAGE_SECONDS,
        what="the stack's remote-write queue retrying",
    )
    # The outage lasts its full minute; nothing is asserted while it lasts.
    time.sleep(max(0.0, down_at + OUTAGE_SECONDS - time.time()))
    receiver.start()
    back_at = time.time()
    start, end = down_at - 10, back_at + 10

    def caught_up() -> bool:
        return receiver.api.value(f"count({series})", at=end) == 1 and raw_timestamps(
            store, series, start, end
        ) == raw_timestamps(source, series, start, end)

    wait_until(
        caught_up, timeout=CATCH_UP_TIMEOUT, what="every sample of the outage at the receiver"
    )
    # The stack scraped through the outage (1 s interval), and all of that arrived late:
    # the receiver holds the same samples as the stack, the outage's minute included.
    during = [t for t in raw_timestamps(store, series, start, end) if down_at <= t <= back_at]
    assert len(during) >= 0.5 * OUTAGE_SECONDS, len(during)
