"""HA, live: two Prometheus replicas and two Alertmanagers in a gossip cluster, with faults.

The stack runs with ``stack.ha: true`` on random loopback ports. Three agent
endpoints served by this test are its scrape targets; stopping one makes both
replicas fire ``TargetDown`` for it, which is one alert group
(``alertname``, no agent) at the critical receiver. The test then kills one
Alertmanager, stops a second endpoint, kills one Prometheus and stops the
third: every change of the group must still reach the webhook, and none
twice. "Exactly once" means: each distinct content of the group (which
instances fire) arrives in exactly one notification, although two
Prometheus replicas send it and two Alertmanagers could deliver it.

Alertmanager's cluster holds back the second peer's copy of a notification for
``--cluster.peer-timeout`` (15 s) and drops it if the first peer's delivery
was gossiped meanwhile; so each count is read only after that wait has passed.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from meshwatch.stack.prometheus_config import JOB_AGENTS
from tests.integration.helpers.agent_endpoint import AgentEndpoint
from tests.integration.helpers.poll import wait_until
from tests.integration.helpers.stack import INTERVAL, LiveStack, running_stack
from tests.integration.helpers.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.integration

TARGET_DOWN = "TargetDown"
ALERT_TIMEOUT = 60.0
# Alertmanager's default --cluster.peer-timeout, plus room for a loaded machine.
PEER_TIMEOUT = 15.0
DUPLICATE_WINDOW = PEER_TIMEOUT + 10.0
REPLICAS = ("prometheus", "prometheus-2")
PEERS = ("alertmanager", "alertmanager-2")


@pytest.fixture(scope="module")
def agents() -> Iterator[list[AgentEndpoint]]:
    endpoints = [AgentEndpoint() for _ in range(3)]
    for endpoint in endpoints:
        endpoint.start()
    try:
        yield endpoints
    finally:
        for endpoint in endpoints:
            endpoint.stop()


@pytest.fixture(scope="module")
def ha_stack(
    native_binaries: None,
    webhook: WebhookReceiver,
    agents: list[AgentEndpoint],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveStack]:
    with running_stack(
        tmp_path_factory.mktemp("ha-stack"),
        webhook,
        scenario="steady",
        agent_targets=[a.target for a in agents],
        group_wait=INTERVAL,  # no inhibition to protect here: notify at once
        stack_settings={"ha": True, "external_labels": {"cluster": "it-ha"}},
    ) as stack:
        yield stack


def group_contents(stack: LiveStack) -> list[tuple[frozenset[str], frozenset[str]]]:
    """Each TargetDown notification to the critical receiver: (firing, resolved) agent instances."""
    contents = []
    for payload in stack.webhook.payloads(stack.receiver_path("critical")):
        if payload.get("groupLabels", {}).get("alertname") != TARGET_DOWN:
            continue
        by_status: dict[str, set[str]] = {"firing": set(), "resolved": set()}
        for alert in payload["alerts"]:
            if alert["labels"].get("job") == JOB_AGENTS:
                by_status[alert["status"]].add(alert["labels"]["instance"])
        contents.append((frozenset(by_status["firing"]), frozenset(by_status["resolved"])))
    return contents


def delivered_once(stack: LiveStack, firing: set[str]) -> int:
    """Wait for the notification whose firing set is ``firing``, then count its copies."""
    wanted = (frozenset(firing), frozenset())
    wait_until(
        lambda: wanted in group_contents(stack),
        timeout=ALERT_TIMEOUT,
        what=f"a TargetDown notification firing for exactly {sorted(firing)}",
    )
    # A duplicate, if the cluster failed to de-duplicate, comes within the peer timeout.
    time.sleep(DUPLICATE_WINDOW)
    return Counter(group_contents(stack))[wanted]


def test_ha_delivers_each_group_once_through_alertmanager_then_prometheus_failures(
    ha_stack: LiveStack, agents: list[AgentEndpoint]
) -> None:
    stack, native = ha_stack, ha_stack.native
    # The cluster formed: each Alertmanager sees two ready peers.
    for peer in PEERS:
        wait_until(
            lambda p=peer: (
                stack.alertmanager_of(p).cluster()["status"] == "ready"
                and len(stack.alertmanager_of(p).cluster()["peers"]) == 2
            ),
            timeout=ALERT_TIMEOUT,
            what=f"{peer} in a settled two-peer cluster",
        )
    # Both replicas scrape the same targets and send to both Alertmanagers.
    for replica in REPLICAS:
        api = stack.prometheus_of(replica)
        wait_until(
            lambda a=api: len(a.alertmanagers()) == 2,
            timeout=ALERT_TIMEOUT,
            what=f"{replica} sending to both Alertmanagers",
        )
        wait_until(
            lambda a=api: a.value(f'count(up{{job="{JOB_AGENTS}"}} == 1)') == len(agents),
            timeout=ALERT_TIMEOUT,
            what=f"{replica} scraping every agent",
        )
    first, second, third = agents
    firing = {first.target}
    first.stop()

    # Both replicas fire; both Alertmanagers hold one alert, without the replica label.
    for replica in REPLICAS:
        wait_until(
            lambda r=replica: stack.prometheus_of(r).firing(TARGET_DOWN, instance=first.target),
            timeout=ALERT_TIMEOUT,
            what=f"{replica} firing TargetDown for {first.target}",
        )
    for peer in PEERS:
        held = wait_until(
            lambda p=peer: [
                a
                for a in stack.alertmanager_of(p).alerts()
                if a["labels"].get("alertname") == TARGET_DOWN
            ],
            timeout=ALERT_TIMEOUT,
            what=f"{peer} holding TargetDown",
        )
        assert len(held) == 1, held
        assert "replica" not in held[0]["labels"]
        assert held[0]["labels"]["cluster"] == "it-ha"
    assert delivered_once(stack, firing) == 1

    # One Alertmanager gone: the other delivers the group's next change, once.
    native.signal("alertmanager", signal.SIGKILL)
    wait_until(lambda: native.running("alertmanager") is None, timeout=10, what="alertmanager gone")
    firing.add(second.target)
    second.stop()
    assert delivered_once(stack, firing) == 1

    # Then one Prometheus gone too: the other replica's alert still gets through.
    native.signal("prometheus", signal.SIGKILL)
    wait_until(lambda: native.running("prometheus") is None, timeout=10, what="prometheus gone")
    firing.add(third.target)
    third.stop()
    assert delivered_once(stack, firing) == 1

    contents = Counter(group_contents(stack))
    duplicates = {content: n for content, n in contents.items() if n > 1}
    assert not duplicates, f"notifications delivered more than once: {duplicates}"
