"""A live native stack for tests: the runner `make up` uses, on random loopback ports.

:func:`running_stack` writes a test settings file (1 s scrape and evaluation
intervals, 5 s ``for`` durations, receivers pointing at the test's webhook
receiver), starts :class:`~meshwatch.stack.runner.NativeStack` from it (which
generates the configs exactly as ``meshwatch up`` does and validates them with
promtool and amtool), and on exit stops every process and proves none is
left: by the pids the runner recorded and by scanning /proc for anything
mentioning the stack's working directory or the demo's port.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from meshwatch.rendering import render_all
from meshwatch.settings import Settings, load_settings
from meshwatch.stack.runner import NativeStack
from tests.integration.helpers.net import LOOPBACK, free_port, free_stack_ports
from tests.integration.helpers.processes import kill_leftovers, live_processes_mentioning
from tests.integration.helpers.prom import AlertmanagerAPI, PrometheusAPI, http_get
from tests.integration.helpers.webhook_receiver import WebhookReceiver

# Every interval as short as the components allow, so alerts fire within seconds.
INTERVAL = "1s"
ALERT_FOR = "5s"
# Rates (and so the breach and latency alerts) follow the demo within this window,
# and resolve within it once the incident ends.
RATE_WINDOW = "10s"
# How often Prometheus re-sends a firing alert to Alertmanager (default 1m): an
# alert that started firing while Alertmanager was down arrives this soon after
# it is back.
RESEND_DELAY = "1s"
# Alertmanager holds a new group this long before its first notification. A
# sudden surge makes a windowed rate ramp up over the window, so the warning
# tier (0.5/s) crosses a few seconds before the critical tier (2/s) does; the
# critical must arrive within the warning's group_wait for the warning to be
# muted from the start. Production has the same race at its own scale (5m
# window, 30s group_wait); here the wait is set to cover the ramp of RATE_WINDOW.
GROUP_WAIT = "8s"
START_TIMEOUT = 60.0

# The test SLO: half the incident's governance evaluations take more than 50 ms (its
# p50 is about 80 ms), 100 times the 0.5% budget, so the 14.4x page fires within the
# first evaluations; a healthy fleet (p99 a few ms) spends none of it.
TEST_SLO = {
    "name": "governance-latency",
    "sli": "governance_latency",
    "latency_target": 0.05,
    "objective": 99.5,
    "window": "28d",
}
# The three tutorial alerts and the target-down alert the fault tests wait for.
FAST_ALERTS = ("ring_breach_rate", "elevation_too_long", "governance_latency_high", "target_down")
# A daily LLM budget the demo passes within seconds, and a forecast over a window a
# fresh stack already has, so LLMSpendForecastOverBudget fires live (tests/integration/test_llm.py).
TEST_DAILY_BUDGET_USD = 0.001
BUDGET_FORECAST = {
    "daily_budget_usd": TEST_DAILY_BUDGET_USD,
    "lookback": "30s",
    "horizon": "1h",
    "for": ALERT_FOR,
}


@dataclass(frozen=True)
class LiveStack:
    """A running native stack and clients of each of its parts."""

    name: str
    native: NativeStack
    settings: Settings
    prometheus: PrometheusAPI
    alertmanager: AlertmanagerAPI
    webhook: WebhookReceiver
    directory: Path
    started_at: float

    def receiver_path(self, receiver: str) -> str:
        """The webhook path this stack's ``receiver`` ("critical", "warning") delivers to."""
        return f"/{self.name}/{receiver}"

    @property
    def demo_url(self) -> str:
        return f"http://{LOOPBACK}:{self.settings.stack.ports.demo_metrics}/metrics"

    def demo_metrics_text(self) -> str:
        status, body = http_get(self.demo_url)
        if status != 200:
            raise AssertionError(f"demo /metrics answered HTTP {status}")
        return body.decode()

    def pids(self) -> dict[str, int]:
        return {name: record.pid for name, record in self.native.records().items()}

    def prometheus_of(self, name: str) -> PrometheusAPI:
        """The API of one Prometheus replica (``prometheus``, ``prometheus-2``)."""
        return PrometheusAPI(self.native.url(name))

    def alertmanager_of(self, name: str) -> AlertmanagerAPI:
        """The API of one Alertmanager peer (``alertmanager``, ``alertmanager-2``)."""
        return AlertmanagerAPI(self.native.url(name))


def settings_document(
    directory: Path,
    *,
    name: str,
    webhook_base_url: str,
    scenario: Literal["steady", "incident"],
    otlp_endpoint: str | None,
    duration: int | None,
    seed: int,
    incident_duration: int | None = None,
    group_wait: str = GROUP_WAIT,
    runtime: str | None = None,
    elevation_threshold: float | None = None,
) -> dict[str, Any]:
    """The meshwatch.yaml of a test stack, as data.

    ``runtime`` is ``stack.demo.runtime``; ``elevation_threshold`` lowers
    ElevationTooLong's threshold (seconds), for a demo whose stuck elevation
    cannot be backdated (the real runtime's).

    Critical and warning notifications go to ``<webhook_base_url>/<name>/critical``
    and ``.../warning``, so one receiver can serve several stacks apart.
    """
    ports = free_stack_ports()
    demo: dict[str, Any] = {"enabled": True, "seed": seed, "scenario": scenario}
    if otlp_endpoint is not None:
        demo["otlp_endpoint"] = otlp_endpoint
    if duration is not None:
        demo["duration"] = f"{duration}s"
    if incident_duration is not None:
        demo["incident_duration"] = f"{incident_duration}s"
    if runtime is not None:
        demo["runtime"] = runtime
    alerts: dict[str, Any] = {key: {"for": ALERT_FOR} for key in FAST_ALERTS}
    if elevation_threshold is not None:
        alerts["elevation_too_long"]["threshold"] = elevation_threshold
    return {
        "alerts": {
            "rate_window": RATE_WINDOW,
            **alerts,
            "llm_budget_forecast": BUDGET_FORECAST,
        },
        "slos": {"objectives": [TEST_SLO]},
        "stack": {
            "bind_address": LOOPBACK,
            "ports": ports,
            "scrape_interval": INTERVAL,
            "evaluation_interval": INTERVAL,
            "workdir": str(directory / "work"),
            "project": name,
            "alert_resend_delay": RESEND_DELAY,
            "receivers": {
                "critical": {"url": f"{webhook_base_url}/{name}/critical"},
                "warning": {"url": f"{webhook_base_url}/{name}/warning"},
                "group_wait": group_wait,
                "group_interval": INTERVAL,
                "repeat_interval": "1h",
            },
            "demo": demo,
        },
    }


@contextlib.contextmanager
def running_stack(
    directory: Path,
    webhook: WebhookReceiver,
    *,
    scenario: Literal["steady", "incident"] = "steady",
    otlp_endpoint: str | None = None,
    duration: int | None = None,
    seed: int = 7,
    incident_duration: int | None = None,
    agent_targets: Sequence[str] = (),
    group_wait: str = GROUP_WAIT,
    remediation: Mapping[str, Any] | None = None,
    runtime: str | None = None,
    elevation_threshold: float | None = None,
    stack_settings: Mapping[str, Any] | None = None,
) -> Iterator[LiveStack]:
    """Start a native stack from a test settings file; always stop it and check for orphans.

    ``incident_duration`` ends the demo's incident after that many seconds
    (the ``stack.demo.incident_duration`` setting); ``agent_targets`` are extra ``host:port`` scrape targets (job ``agents``); ``group_wait`` is
    Alertmanager's (shorter where no inhibition is tested). ``remediation``, when
    given, is the ``remediation:`` section (a token and a free port are added):
    the demo serves the receiver and Alertmanager routes the policies' alerts to it.
    ``stack_settings`` are further ``stack`` keys (``ha``, ``remote_write``). On exit, a process
    that outlived ``stop()`` is killed and reported as an AssertionError, so a
    leak fails the run instead of haunting the next.
    """
    name = f"it-{uuid.uuid4().hex[:8]}"
    document = settings_document(
        directory,
        name=name,
        webhook_base_url=webhook.base_url,
        scenario=scenario,
        otlp_endpoint=otlp_endpoint,
        duration=duration,
        seed=seed,
        incident_duration=incident_duration,
        group_wait=group_wait,
        runtime=runtime,
        elevation_threshold=elevation_threshold,
    )
    document["stack"]["agent_targets"] = list(agent_targets)
    if remediation is not None:
        token = directory / "remediation-token"
        token.write_text(f"{uuid.uuid4().hex}\n", encoding="utf-8")
        document["remediation"] = {
            "enabled": True,
            "token_file": str(token),
            "port": free_port(),
            **remediation,
        }
    document["stack"].update(stack_settings or {})
    settings_file = directory / "meshwatch.yaml"
    settings_file.write_text(yaml.safe_dump(document, sort_keys=True), encoding="utf-8")
    settings = load_settings(settings_file)
    native = NativeStack(settings, settings.stack.workdir, renderer=render_all)
    workdir = str(native.workdir.root)
    needles = (workdir, f"--metrics-port {settings.stack.ports.demo_metrics}")
    recorded: set[int] = set()
    try:
        native.start(timeout=START_TIMEOUT)
        started_at = time.time()
        recorded.update(record.pid for record in native.records().values())
        yield LiveStack(
            name=name,
            native=native,
            settings=settings,
            prometheus=PrometheusAPI(native.url("prometheus")),
            alertmanager=AlertmanagerAPI(native.url("alertmanager")),
            webhook=webhook,
            directory=directory,
            started_at=started_at,
        )
    finally:
        # Components restarted by a test have new pids: collect them before stopping.
        recorded.update(record.pid for record in native.records().values())
        try:
            native.stop()
        finally:
            check_no_orphans(needles, recorded)


def check_no_orphans(needles: tuple[str, ...], recorded: set[int]) -> None:
    """Kill and report any recorded pid, or process mentioning ``needles``, still alive."""
    leftovers = {p.pid: p.cmdline for p in live_processes_mentioning(*needles)}
    killed = kill_leftovers(sorted(recorded | set(leftovers)))
    if killed:
        raise AssertionError(
            "processes outlived the stack's stop(): "
            + "; ".join(f"{pid}: {leftovers.get(pid, '(recorded pid)')}" for pid in killed)
        )
