"""``prometheus/prometheus.yml``: what Prometheus scrapes, which rules it loads, where alerts go.

The file is written for the compose network (service names, container ports).
Native mode runs the very same document with its addresses rewritten for
127.0.0.1 (:mod:`meshwatch.stack.runner.native_config`). Feature flags that
are command-line only (exemplar storage, the remote-write receiver Tempo's
metrics generator writes into) are in :data:`PROMETHEUS_FLAGS`, used by both
the compose service and the native process.
"""

from __future__ import annotations

from typing import Any

from meshwatch.generated import GeneratedFile
from meshwatch.settings import Settings
from meshwatch.stack.ports import CONTAINER_PORTS, in_container_target
from meshwatch.stack.yamlfile import yaml_file

PATH = "prometheus/prometheus.yml"
# Relative to prometheus.yml; the alerts generator writes prometheus/rules/<group>.yml.
RULES_GLOB = "rules/*.yml"

# Scrape job names. Alerts and dashboards select on `job` only through these values.
JOB_PROMETHEUS = "prometheus"
JOB_ALERTMANAGER = "alertmanager"
JOB_TEMPO = "tempo"
JOB_GRAFANA = "grafana"
JOB_DEMO = "meshwatch-demo"
JOB_AGENTS = "agents"

# Flags both modes pass: exemplars (trace links on histogram buckets), the
# remote-write receiver (Tempo's service-graph and span metrics arrive that way),
# and /-/reload so `meshwatch up` applies regenerated configs without a restart.
PROMETHEUS_FLAGS = (
    "--enable-feature=exemplar-storage",
    "--web.enable-remote-write-receiver",
    "--web.enable-lifecycle",
)


def prometheus_flags(settings: Settings) -> list[str]:
    """Command-line flags of Prometheus in both modes (besides config, storage and listen address)."""
    delay = settings.stack.alert_resend_delay
    if delay is None:
        return list(PROMETHEUS_FLAGS)
    return [*PROMETHEUS_FLAGS, f"--rules.alert.resend-delay={delay}"]


DEMO_COMPOSE_TARGET = f"demo:{CONTAINER_PORTS['demo']}"


def _job(name: str, targets: list[str], interval: str | None = None) -> dict[str, Any]:
    job: dict[str, Any] = {"job_name": name, "static_configs": [{"targets": targets}]}
    if interval is not None:
        job["scrape_interval"] = interval
    return job


def prometheus_config(settings: Settings) -> dict[str, Any]:
    """The compose-network prometheus.yml as a document."""
    stack = settings.stack
    jobs = [
        _job(JOB_PROMETHEUS, [f"localhost:{CONTAINER_PORTS['prometheus']}"]),
        _job(JOB_ALERTMANAGER, [f"alertmanager:{CONTAINER_PORTS['alertmanager']}"]),
        _job(JOB_TEMPO, [f"tempo:{CONTAINER_PORTS['tempo']}"]),
        _job(JOB_GRAFANA, [f"grafana:{CONTAINER_PORTS['grafana']}"]),
    ]
    if stack.demo.enabled:
        jobs.append(_job(JOB_DEMO, [DEMO_COMPOSE_TARGET]))
    if stack.agent_targets:
        jobs.append(_job(JOB_AGENTS, [in_container_target(t) for t in stack.agent_targets]))
    return {
        "global": {
            "scrape_interval": str(stack.scrape_interval),
            "evaluation_interval": str(stack.evaluation_interval),
        },
        "rule_files": [RULES_GLOB],
        "alerting": {
            "alertmanagers": [
                {
                    "static_configs": [
                        {"targets": [f"alertmanager:{CONTAINER_PORTS['alertmanager']}"]}
                    ]
                }
            ]
        },
        "scrape_configs": jobs,
    }


def render(settings: Settings) -> list[GeneratedFile]:
    return [
        yaml_file(
            PATH,
            prometheus_config(settings),
            comment="Run with: " + " ".join(prometheus_flags(settings)),
        )
    ]
