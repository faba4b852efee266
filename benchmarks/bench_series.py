"""Series count per agent and per 1,000 agents, so a team can size its metrics store.

Two figures, each split into series that carry an agent label (``agent_did``
or ``agent_id``, which grow with the fleet) and fleet-wide series (which do
not):

* **From the catalogue**: every metric with one value per label, histograms
  counted as their buckets plus ``+Inf``, ``_sum`` and ``_count``, with the
  opt-in agent labels off (the default, as in the demo) and, separately, on.
  It is a floor: an agent that reports two tools or three sessions
  multiplies its series accordingly.
* **Measured on the demo**: the real ``meshwatch demo`` (incident scenario,
  with a dry-run remediation receiver, which together exercise every
  catalogue metric) on 127.0.0.1, scraped once every catalogue series is
  served; series are the exposition's samples, as Prometheus stores them.

Per 1,000 agents is ``1000 x per agent + fleet-wide``. The targets are the
cardinality budget of docs/guide/scaling-out.md, reported, never asserted.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from benchmarks.common import Result
from meshwatch.instrumentation.catalogue import CATALOGUE, MetricDef, MetricType

AGENT_LABELS = ("agent_did", "agent_id")
FLEET = 1000
#: The budget the scaling-out guide plans with (series per agent, and for 1,000 agents).
SERIES_PER_AGENT_BUDGET = 100
SERIES_PER_1000_AGENTS_BUDGET = 150_000
DEMO_TIMEOUT_SECONDS = 90.0
# A dry-run remediation receiver, so the remediation metrics are served too.
REMEDIATION_CONFIG = (
    "remediation:\n  token_file: {token}\n  policies:\n"
    "    - {{alert: HighRingBreachRate, action: kill_agent, agents: ['did:mesh:*']}}\n"
)


@dataclass(frozen=True)
class SeriesCount:
    """Series that grow with the fleet (per agent) and series that do not (fleet-wide)."""

    per_agent: float
    fleet_wide: int
    agents: int = 1

    def for_agents(self, n: int) -> float:
        return n * self.per_agent + self.fleet_wide


def series_per_label_set(metric: MetricDef) -> int:
    """Samples one label set of ``metric`` exposes: a histogram's buckets, +Inf, sum and count."""
    if metric.type is MetricType.HISTOGRAM:
        return len(metric.buckets) + 3
    return 1


def catalogue_count(
    metrics: Iterable[MetricDef] = CATALOGUE, *, with_optional: bool = False
) -> SeriesCount:
    per_agent = fleet = 0
    for metric in metrics:
        n = series_per_label_set(metric)
        if set(AGENT_LABELS) & set(metric.all_labels(with_optional=with_optional)):
            per_agent += n
        else:
            fleet += n
    return SeriesCount(per_agent, fleet)


def count_exposition(text: str) -> SeriesCount:
    """Split a scrape's samples into per-agent and fleet-wide series."""
    agent_series = fleet = 0
    agents: dict[str, set[str]] = {label: set() for label in AGENT_LABELS}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            owners = [label for label in AGENT_LABELS if label in sample.labels]
            for label in owners:
                agents[label].add(sample.labels[label])
            if owners:
                agent_series += 1
            else:
                fleet += 1
    n_agents = max(len(values) for values in agents.values()) or 1
    return SeriesCount(agent_series / n_agents, fleet, n_agents)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode("utf-8"))
    except OSError:
        return None


def _served(text: str) -> set[str]:
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def demo_count() -> SeriesCount:
    """Run the demo until every catalogue series is served, scrape it, and stop it."""
    wanted = {name for metric in CATALOGUE for name in metric.series_names}
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="meshwatch-bench-") as tmp:
        token, config = Path(tmp, "token"), Path(tmp, "meshwatch.yaml")
        token.write_text("bench-token\n", encoding="utf-8")
        config.write_text(REMEDIATION_CONFIG.format(token=token), encoding="utf-8")
        command = [sys.executable, "-m", "meshwatch", "demo", "--metrics-port", str(port)]
        command += ["--scenario", "incident", "--seed", "42", "--audit-dir", tmp]
        command += ["--remediation-config", str(config), "--remediation-port", "0"]
        command += ["--log-level", "WARNING", "--duration", str(int(DEMO_TIMEOUT_SECONDS) + 30)]
        process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        )
        try:
            deadline = time.monotonic() + DEMO_TIMEOUT_SECONDS
            while True:
                text = _scrape(port)
                if text is not None and wanted <= _served(text):
                    return count_exposition(text)
                if time.monotonic() > deadline or process.poll() is not None:
                    missing = sorted(wanted - _served(text or ""))[:5]
                    raise RuntimeError(f"the demo did not serve every catalogue series: {missing}")
                time.sleep(1.0)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _results(source: str, count: SeriesCount, note: str) -> list[Result]:
    return [
        Result(
            f"series per agent ({source})",
            count.per_agent,
            "series",
            SERIES_PER_AGENT_BUDGET,
            note=f"{note}; plus {count.fleet_wide} fleet-wide",
        ),
        Result(
            f"series per {FLEET:,} agents ({source})",
            count.for_agents(FLEET),
            "series",
            SERIES_PER_1000_AGENTS_BUDGET,
            note=f"{FLEET:,} x {count.per_agent:.0f} + {count.fleet_wide}",
        ),
    ]


def run() -> list[Result]:
    demo = demo_count()
    return [
        *_results("catalogue", catalogue_count(), "floor: one value per label"),
        *_results(
            "catalogue, opt-in agent labels on",
            catalogue_count(with_optional=True),
            "floor: one value per label",
        ),
        *_results("demo", demo, f"{demo.agents} agents in the incident demo"),
    ]
