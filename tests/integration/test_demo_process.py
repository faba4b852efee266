"""The live demo process: it serves every catalogue metric, drives the incident, exports
traces over OTLP, and stops cleanly (signals, --duration, bad ports and directories).

These tests spawn ``meshwatch demo`` and bind loopback ports, so they belong to
the integration tier; the simulation itself is tested in-process in
``tests/unit/test_demo.py``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from meshwatch.demo.world import PUBLISHER, TOOL_CODE
from meshwatch.instrumentation.catalogue import (
    CATALOGUE,
    GOVERNANCE_LATENCY,
    RING_BREACHES,
    RING_ELEVATED,
    RING_ELEVATION_DURATION,
    SPANS_DROPPED,
    TASKS_COMPLETED,
)
from tests.integration.helpers.net import LOOPBACK, free_port, port_open
from tests.integration.helpers.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.integration.helpers.poll import wait_until

pytestmark = pytest.mark.integration


# --- the live demo process ---------------------------------------------------------------

CATALOGUE_BOUND = 30.0  # seconds: every catalogue metric must have series by then


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def _scrape(port: int) -> list[Sample]:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return [
        Sample(s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def _value(samples: list[Sample], name: str, **labels: str) -> float | None:
    for s in samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


@dataclass
class DemoProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@contextmanager
def _demo(tmp: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[DemoProcess]:
    port = free_port()
    log = tmp / f"demo-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "meshwatch", "demo", "--metrics-port", str(port), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    demo = DemoProcess(process, port, log)
    try:
        wait_until(
            lambda: process.poll() is not None or port_open(port), timeout=30, what="/metrics"
        )
        assert process.poll() is None, log.read_text()
        yield demo
    finally:
        demo.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as server:
        yield server


@pytest.fixture(scope="module")
def incident_demo(
    receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoProcess]:
    """One incident demo for the live checks, exporting spans to ``receiver``."""
    tmp = tmp_path_factory.mktemp("demo")
    # The remediation receiver (a dry run) serves the remediation metrics.
    (tmp / "token").write_text("demo-token\n", encoding="utf-8")
    config = tmp / "meshwatch.yaml"
    config.write_text(
        f"remediation:\n  token_file: {tmp / 'token'}\n  policies:\n"
        "    - {alert: HighRingBreachRate, action: kill_agent, agents: ['did:mesh:*']}\n",
        encoding="utf-8",
    )
    with _demo(
        tmp,
        "--scenario",
        "incident",
        "--seed",
        "3",
        "--otlp-endpoint",
        receiver.endpoint,
        "--remediation-config",
        str(config),
        "--remediation-port",
        "0",
    ) as demo:
        yield demo


def test_every_catalogue_metric_is_served_within_30_seconds(incident_demo: DemoProcess) -> None:
    wanted = {series for metric in CATALOGUE for series in metric.series_names}

    def missing() -> set[str]:
        return wanted - {s.name for s in _scrape(incident_demo.port)}

    wait_until(lambda: not missing(), timeout=CATALOGUE_BOUND, what="every catalogue series")


def test_the_incident_conditions_show_in_the_scrape(incident_demo: DemoProcess) -> None:
    port = incident_demo.port
    publisher = {"agent_did": PUBLISHER.did}

    def elevated_long() -> bool:
        samples = _scrape(port)
        return (
            _value(samples, RING_ELEVATED.name, **publisher) == 1
            and (_value(samples, RING_ELEVATION_DURATION.name, **publisher) or 0) > 300
        )

    wait_until(elevated_long, timeout=20, what="the publisher elevated for more than 300 s")

    def rogue_breaches() -> float:
        return _value(_scrape(port), RING_BREACHES.name, agent_did=TOOL_CODE.did) or 0.0

    start = rogue_breaches()
    # 20 more breaches within 10 s is at least 2/s, the critical tier.
    wait_until(lambda: rogue_breaches() >= start + 20, timeout=10, what="breaches at > 2/s")

    buckets = {
        s.labels["le"]: s.value
        for s in _scrape(port)
        if s.name == f"{GOVERNANCE_LATENCY.name}_bucket" and s.labels["decision"] == "blocked"
    }
    assert buckets["0.05"] < 0.5 * buckets["+Inf"], "most evaluations slower than 50 ms"


def test_one_conversation_is_one_trace_with_genai_attributes(
    incident_demo: DemoProcess, receiver: OtlpReceiver
) -> None:
    required = {
        "invoke_workflow conversation",
        "invoke_agent orchestrator",
        "send delegate",
        "process delegate",
        "invoke_agent researcher",
        "invoke_agent tool-search",
        "invoke_agent writer",
    }

    def complete_conversation() -> tuple[ReceivedSpan, list[ReceivedSpan]] | None:
        """A conversation whose spans have all arrived (each provider exports on its own)."""
        spans = receiver.spans()
        for root in spans:
            if root.name != "invoke_workflow conversation" or root.parent_span_id:
                continue
            if root.attributes.get("gen_ai.conversation.id") is None:
                continue  # the fleet's bootstrap, not a conversation
            trace = [s for s in spans if s.trace_id == root.trace_id]
            ids = {s.span_id for s in trace}
            names = {s.name for s in trace}
            if (
                required <= names
                and any(n.startswith("execute_tool ") for n in names)
                and all(s.parent_span_id in ids for s in trace if s is not root)
            ):
                return root, trace
        return None

    root, trace = wait_until(complete_conversation, timeout=60, what="a complete conversation")
    cid = root.attributes["gen_ai.conversation.id"]
    spans = receiver.spans()
    tagged = [s for s in spans if s.attributes.get("gen_ai.conversation.id") == cid]
    assert {s.trace_id for s in tagged} == {root.trace_id}, "one conversation, one trace"
    assert [s for s in trace if not s.parent_span_id] == [root], "one root"
    assert {s.resource.get("service.name") for s in trace} >= {
        "orchestrator",
        "researcher",
        "writer",
        "tool-search",
    }
    for span in trace:
        operation = span.attributes.get("gen_ai.operation.name")
        if span.name.startswith("invoke_agent "):
            assert operation == "invoke_agent"
            assert span.attributes["gen_ai.agent.name"] == span.name.removeprefix("invoke_agent ")
            assert str(span.attributes["meshwatch.agent.id"]).startswith("did:mesh:")
        if span.name.startswith("execute_tool "):
            assert operation == "execute_tool"
            assert span.attributes["gen_ai.tool.name"] == span.name.removeprefix("execute_tool ")
            assert span.attributes["gen_ai.tool.call.id"]
    other_traces = {s.trace_id for s in spans if s.name == "invoke_agent orchestrator"} - {
        root.trace_id
    }
    assert other_traces, "other conversations are other traces"


def test_sigterm_stops_the_demo_cleanly(incident_demo: DemoProcess) -> None:
    incident_demo.process.send_signal(signal.SIGTERM)
    assert incident_demo.process.wait(timeout=20) == 0, incident_demo.log.read_text()
    assert not port_open(incident_demo.port)
    assert "meshwatch demo: stopped" in incident_demo.log.read_text()


def test_the_incident_ends_while_serving_and_duration_ends_the_demo(tmp_path: Path) -> None:
    """A dead collector too: spans are dropped and counted, and nothing slows down."""
    dead = f"http://{LOOPBACK}:{free_port()}"
    with _demo(
        tmp_path,
        "--scenario",
        "incident",
        "--incident-duration",
        "4",
        "--duration",
        "14",
        "--otlp-endpoint",
        dead,
        env={"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "1"},
    ) as demo:
        publisher = {"agent_did": PUBLISHER.did}
        wait_until(
            lambda: _value(_scrape(demo.port), RING_ELEVATED.name, **publisher) == 1,
            timeout=10,
            what="the incident elevation",
        )
        wait_until(
            lambda: _value(_scrape(demo.port), RING_ELEVATED.name, **publisher) == 0,
            timeout=15,
            what="the publisher demoted when the incident ends",
        )
        after_incident = _value(_scrape(demo.port), RING_BREACHES.name, agent_did=TOOL_CODE.did)
        wait_until(
            lambda: _value(_scrape(demo.port), SPANS_DROPPED.name, reason="export_failed"),
            timeout=10,
            what="spans dropped for the dead collector, counted",
        )

        def completed() -> float:
            return sum(s.value for s in _scrape(demo.port) if s.name == TASKS_COMPLETED.name)

        completed_then = completed()
        wait_until(
            lambda: completed() > completed_then, timeout=10, what="agents still completing tasks"
        )
        # The rogue agent's 5/s stopped; at most a rare stray breach of steady state remains.
        rogue_now = _value(_scrape(demo.port), RING_BREACHES.name, agent_did=TOOL_CODE.did)
        assert after_incident is not None and rogue_now is not None
        assert rogue_now - after_incident < 5
        assert demo.process.wait(timeout=30) == 0, demo.log.read_text()
        assert not port_open(demo.port)


def test_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "meshwatch", "demo", "--metrics-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"meshwatch demo: cannot serve /metrics on 127.0.0.1:{port}: Address already in use"
    )


DEMO_COMMAND = (sys.executable, "-m", "meshwatch", "demo")


def test_an_unusable_audit_dir_is_a_one_line_error_about_the_directory(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "audit"
    not_a_dir.write_text("a file where the audit directory should be")
    result = subprocess.run(
        [*DEMO_COMMAND, "--metrics-port", "0", "--audit-dir", str(not_a_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"meshwatch demo: --audit-dir {not_a_dir}: File exists"
    ), "the error names the directory, not the /metrics port"


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "duration"])
def test_the_demo_stops_promptly_at_the_highest_breach_rate(tmp_path: Path, how: str) -> None:
    """At the most demanding flags the scheduler still yields to a stop, within seconds."""
    extra = ["--duration", "4"] if how == "duration" else []
    flags = ["--scenario", "incident", "--breach-rate", "1000", *extra]
    with _demo(tmp_path, *flags) as demo:
        wait_until(lambda: _scrape(demo.port), timeout=30, what="a scrape under load")
        if how != "duration":
            demo.process.send_signal(getattr(signal, how))
        assert demo.process.wait(timeout=60) == 0, demo.log.read_text()
