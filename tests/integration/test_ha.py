"""HA, live: two Prometheus replicas and two Alertmanagers in a gossip cluster, with faults.

The stack runs with ``stack.ha: true`` on random loopback ports. Three agent
endpoints served by this test are its scrape targets; stopping one makes both
replicas fire ``TargetDown`` for it, which is one alert group
(``alertname``, no agent) at the critical receiver. The test then kills one
Alertmanager, stops a second endpoint, kills one Prometheus and stops the
third: every change of the group must still reach the webhook, and none
twice. "Exactly once" means: each distinct content of the group (which
targets fire, which resolved) arrives in exactly one notification, although
two Prometheus replicas send it and two Alertmanagers could deliver it.

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


Content = tuple[frozenset[tuple[str, str]], frozenset[tuple[str, str]]]


def group_contents(stack: LiveStack) -> list[Content]:
    """Each TargetDown notification to the critical receiver: its (firing, resolved) targets.

    A target is ``(job, instance)``. Killing an Alertmanager or a Prometheus makes the
    surviving replica fire TargetDown for it too, in the same group, so the whole group
    is compared, not only the agents.
    """
    contents = []
    for payload in stack.webhook.payloads(stack.receiver_path("critical")):
        if payload.get("groupLabels", {}).get("alertname") != TARGET_DOWN:
            continue
        by_status: dict[str, set[tuple[str, str]]] = {"firing": set(), "resolved": set()}
        for alert in payload["alerts"]:
            labels = alert["labels"]
            by_status[alert["status"]].add((labels.get("job", ""), labels.get("instance", "")))
        contents.append((frozenset(by_status["firing"]), frozenset(by_status["resolved"])))
    return contents


def firing_agents(content: Content) -> set[str]:
    return {instance for job, instance in content[0] if job == JOB_AGENTS}


def duplicates(stack: LiveStack) -> dict[Content, int]:
    """Contents of the group that reached the webhook more than once."""
    return {c: n for c, n in Counter(group_contents(stack)).items() if n > 1}


def delivered(stack: LiveStack, agents: set[str]) -> None:
    """Wait for the group to arrive with exactly ``agents`` firing, then for any duplicate."""
    wait_until(
        lambda: any(firing_agents(c) == agents for c in group_contents(stack)),
        timeout=ALERT_TIMEOUT,
        what=f"a TargetDown notification firing for the agents {sorted(agents)}",
    )
    # A duplicate, if the cluster failed to de-duplicate, comes within the peer timeout:
    # its absence can only be observed by letting that time pass.
    time.sleep(DUPLICATE_WINDOW)
    assert not duplicates(stack), f"delivered more than once: {duplicates(stack)}"


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
    delivered(stack, firing)

    # One Alertmanager gone: the other delivers the group's next change, once.
    native.signal("alertmanager", signal.SIGKILL)
    wait_until(lambda: native.running("alertmanager") is None, timeout=10, what="alertmanager gone")
    firing.add(second.target)
    second.stop()
    delivered(stack, firing)

    # Then one Prometheus gone too: the other replica's alert still gets through.
    native.signal("prometheus", signal.SIGKILL)
    wait_until(lambda: native.running("prometheus") is None, timeout=10, what="prometheus gone")
    firing.add(third.target)
    third.stop()
    delivered(stack, firing)
    contents = group_contents(stack)
    print(f"\nHA: {len(contents)} TargetDown notifications, each content once:")
    for content in contents:
        print(f"  firing {sorted(content[0])} resolved {sorted(content[1])}")
