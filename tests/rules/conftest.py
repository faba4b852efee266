"""Fixtures for the rule tests: rule files and their promtool tests rendered to a temp dir."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from meshwatch import alerts
from meshwatch.generated import write_tree
from meshwatch.settings import Settings, settings_from_mapping

#: Settings unlike the defaults in every way a rule reads: other thresholds, ``for``
#: durations, severities, rate window, critical tiers, anomaly and forecast windows,
#: minimum volumes of ratio alerts; other SLOs, SLIs, windows and burn rates.
CUSTOM = {
    "alerts": {
        "rate_window": "10m",
        "runbook_base_url": "https://runbooks.example.com/meshwatch/",
        "ring_breach_rate": {"threshold": 1.5, "for": "5m", "critical_threshold": None},
        "elevation_too_long": {
            "threshold": 120,
            "for": "3m",
            "critical_threshold": 600,
            "severity": "info",
        },
        "governance_latency_high": {"threshold": 0.2, "critical_threshold": 1.0},
        "governance_denial_ratio": {"threshold": 0.5, "critical_threshold": 0.9},
        "trust_score_low": {"threshold": 500, "critical_threshold": 100},
        "task_success_rate_low": {
            "threshold": 0.9,
            "critical_threshold": 0.5,
            "severity": "warning",
        },
        "task_error_rate": {
            "threshold": 0.3,
            "critical_threshold": 1.0,
            "for": "2m",
            "min_events": 25,
        },
        "saga_failure_ratio": {"min_events": 4},
        "queue_backlog_growing": {"threshold": 10, "for": "5m", "critical_threshold": 100},
        "task_rate_anomaly": {"z_score": 4, "baseline_window": "2h", "for": "5m"},
        "governance_latency_predicted": {"lookback": "30m", "horizon": "2h", "for": "5m"},
        "saga_escalated": {"for": "1m", "severity": "warning"},
        "target_down": {"for": "5m"},
        "llm_budget_forecast": {
            "daily_budget_usd": 40,
            "lookback": "30m",
            "horizon": "3h",
            "for": "5m",
            "severity": "critical",
        },
        "llm_cost_spike": {"z_score": 4, "baseline_window": "2h", "for": "5m"},
        "llm_runaway_agent": {"threshold": 3, "for": "3m", "critical_threshold": 20},
        "llm_error_ratio": {"threshold": 0.25, "critical_threshold": 0.6, "min_events": 5},
    },
    "slos": {
        "objectives": [
            {
                "name": "policy-latency",
                "sli": "governance_latency",
                "latency_target": 0.25,
                "objective": 99.9,
                "window": "30d",
            },
            {"name": "sagas", "sli": "saga_success", "objective": 99.5, "window": "30d"},
            {"name": "llm-calls", "sli": "llm_success", "objective": 99.5},
        ],
        "burn_rate_alerts": [
            {"factor": 10, "long_window": "2h", "short_window": "10m", "severity": "critical"},
            {"factor": 2, "long_window": "12h", "short_window": "1h", "severity": "warning"},
            {"factor": 0.5, "long_window": "4d", "short_window": "12h", "severity": "info"},
        ],
        "exhaustion_window": "6h",
    },
}
#: Every threshold at zero (or a ratio bound), where "below" and "twice" stop working;
#: a ratio alert without its volume guard (``min_events: 0``) and one at the least guard.
EDGES = {
    "alerts": {
        name: {"threshold": 0}
        for name in (
            "elevation_too_long",
            "governance_latency_high",
            "rate_limit_surge",
            "trust_score_low",
            "saga_compensation_rate",
            "task_duration_p95_high",
            "queue_backlog_growing",
        )
    }
    | {
        "ring_breach_rate": {"threshold": 0, "critical_threshold": 1},
        "task_error_rate": {"threshold": 0, "critical_threshold": None},
        "task_success_rate_low": {"threshold": 1.0},
        "governance_denial_ratio": {"threshold": 0, "min_events": 0},
        "saga_failure_ratio": {"threshold": 0, "min_events": 1},
        "llm_runaway_agent": {"threshold": 0},
        "llm_error_ratio": {"threshold": 0, "min_events": 0},
    },
    # An error budget barely wider than the fastest burn needs (14.4 x 6.9% < 100%), a
    # tiny one, and the largest latency target there is (its bad events exceed every bound).
    "slos": {
        "objectives": [
            {"name": "loose", "sli": "task_success", "objective": 93.1},
            {"name": "strict", "sli": "saga_success", "objective": 99.99},
            {
                "name": "slowest",
                "sli": "governance_latency",
                "latency_target": 2.5,
                "objective": 99.95,
                "window": "30d",
            },
        ]
    },
}
VARIANTS: Mapping[str, Mapping] = {"defaults": {}, "custom": CUSTOM, "edges": EDGES}


def render_to(settings: Settings, out: Path) -> Path:
    """Write the alerts' files for ``settings`` under ``out``; return the rules directory."""
    write_tree(alerts.render(settings), out)
    return out / alerts.RULES_DIR


def run_promtool(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)], capture_output=True, text=True, timeout=240, check=False
    )


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The rules directory rendered for a named settings variant (rendered once each)."""
    cache: dict[str, Path] = {}

    def get(variant: str) -> Path:
        if variant not in cache:
            out = tmp_path_factory.mktemp(variant) / "out"
            render_to(settings_from_mapping(VARIANTS[variant]), out)
            cache[variant] = out
        return cache[variant]

    return get
