"""The demo fleet on the real agent-hypervisor runtime (meshwatch.demo.runtime_world).

Integration tier: the fleet serves its metrics and the remediation receiver on
loopback ports, scraped over HTTP. Its flag checks are unit tests
(``tests/unit/test_demo_runtime_flags.py``).
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from meshwatch.demo.runner import DemoConfig
from meshwatch.demo.runtime_runner import RuntimeDemo
from meshwatch.demo.runtime_world import CANNOT_PRODUCE, INCIDENT_ONLY
from meshwatch.demo.scenario import build_scenario
from meshwatch.demo.world import PUBLISHER, TOOL_CODE
from meshwatch.instrumentation.catalogue import (
    CATALOGUE,
    GOVERNANCE_LATENCY,
    RING_BREACHES,
    RING_ELEVATED,
    RING_ELEVATIONS_DENIED,
    SAGA_ESCALATIONS,
)
from meshwatch.instrumentation.events import EventType
from meshwatch.settings import load_settings
from tests.integration.helpers.poll import wait_until

pytestmark = pytest.mark.integration

# The bound: every catalogue metric the runtime can produce, within 60 s.
CATALOGUE_BOUND = 60.0


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _total(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return sum(
        v
        for (n, lbls), v in samples.items()
        if n == name and all(dict(lbls).get(k) == want for k, want in labels.items())
    )


@pytest.fixture(scope="module")
def runtime_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeDemo]:
    tmp = tmp_path_factory.mktemp("runtime-demo")
    # The remediation receiver (a dry run) serves the remediation metrics, as in test_demo.
    (tmp / "token").write_text("demo-token\n", encoding="utf-8")
    (tmp / "meshwatch.yaml").write_text(
        f"remediation:\n  token_file: {tmp / 'token'}\n  policies:\n"
        "    - {alert: HighRingBreachRate, action: kill_agent, agents: ['did:mesh:*']}\n",
        encoding="utf-8",
    )
    config = DemoConfig(
        build_scenario("incident", seed=5),
        metrics_port=0,
        remediation=load_settings(tmp / "meshwatch.yaml").remediation,
        remediation_port=0,
    )
    demo = RuntimeDemo(config)
    demo.start()
    stop = threading.Event()
    thread = threading.Thread(target=demo.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield demo
    finally:
        stop.set()
        thread.join(10)
        demo.close()
    assert not thread.is_alive()


def test_every_catalogue_metric_the_runtime_can_produce_is_served_within_60_seconds(
    runtime_demo: RuntimeDemo,
) -> None:
    assert not set(CANNOT_PRODUCE) & set(INCIDENT_ONLY)
    wanted = {s for m in CATALOGUE if m not in CANNOT_PRODUCE for s in m.series_names}

    def missing() -> set[str]:
        return wanted - {name for name, _ in _scrape(runtime_demo.url)}

    wait_until(lambda: not missing(), timeout=CATALOGUE_BOUND, what="every producible series")


def test_the_incident_runs_through_the_real_runtime(runtime_demo: RuntimeDemo) -> None:
    runtime = runtime_demo.runtime
    assert runtime is not None, "the runtime objects are reachable while the demo runs"
    url = runtime_demo.url

    def breaches() -> float:
        return _total(_scrape(url), RING_BREACHES.name, agent_did=TOOL_CODE.did)

    start = breaches()
    # 20 breaches within 10 s is 2/s, HighRingBreachRate's critical tier.
    wait_until(lambda: breaches() >= start + 20, timeout=10, what="breaches at > 2/s")
    assert runtime.breach_detector.breach_count >= 20, "the detector itself judged them breaches"
    samples = _scrape(url)
    assert _total(samples, RING_ELEVATED.name, agent_did=PUBLISHER.did) == 1
    active = [e for e in runtime.elevations.active_elevations if e.agent_did == PUBLISHER.did]
    assert len(active) == 1, "the publisher's stuck elevation is a real, active grant"
    assert _total(samples, RING_ELEVATIONS_DENIED.name) >= 1
    buckets = {
        dict(labels)["le"]: v
        for (name, labels), v in samples.items()
        if name == f"{GOVERNANCE_LATENCY.name}_bucket" and dict(labels).get("decision") == "blocked"
    }
    assert buckets["0.05"] < 0.5 * buckets["+Inf"], "most evaluations slower than 50 ms"
    wait_until(
        lambda: _total(_scrape(url), SAGA_ESCALATIONS.name) >= 1,
        timeout=30,
        what="a saga escalated by real timeouts",
    )
    assert runtime.instrumentation.hook_errors == {}


def test_remediation_kills_with_the_real_kill_switch(runtime_demo: RuntimeDemo) -> None:
    """Last in this module: the kill ends the rogue agent's breaches, as remediation should."""
    runtime, world = runtime_demo.runtime, runtime_demo.world
    assert runtime is not None and world is not None

    def killed() -> str | None:
        # The fleet may be between two of the agent's sessions: kill it once it has one.
        sid = world.sessions.get(TOOL_CODE.did)
        return sid if sid is not None and world.kill(TOOL_CODE.did, "HighRingBreachRate") else None

    old_session = wait_until(killed, timeout=10, what="the rogue agent killed in its session")
    assert not world.kill(TOOL_CODE.did, "HighRingBreachRate"), "already killed"
    (result,) = runtime.kill_switch.kill_history
    assert (result.agent_did, result.reason.value, result.terminated) == (
        TOOL_CODE.did,
        "ring_breach",
        True,
    )
    bus = runtime.instrumentation.bus
    assert runtime.instrumentation.flush(), "the kill's events delivered"
    (kill,) = bus.query(event_type=EventType.AGENT_KILLED)
    assert kill.session_id == old_session and kill.payload["terminated"] is True
    assert [e.event_type for e in bus.query(session_id=old_session)][-2:] == [
        EventType.AUDIT_GC_COLLECTED,
        EventType.SESSION_ARCHIVED,
    ]
    wait_until(
        lambda: world.sessions.get(TOOL_CODE.did, old_session) != old_session,
        timeout=10,
        what="the fleet restarting the killed agent in a new session",
    )
