"""``prometheus/prometheus.yml``: what Prometheus scrapes, which rules it loads, where alerts go.

With ``stack.ha`` there is one file per replica (``prometheus-2.yml`` beside
it): the same targets, rules, Alertmanagers and remote writes, and only the
``replica`` external label differs. Alerts leave each replica without that
label (``alert_relabel_configs``), so the Alertmanagers see one alert, not two.
Remote-write credentials are read from files (docker secrets under
/run/secrets in compose, the host files natively), never written here.

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
from meshwatch.settings.scale_out import RemoteWrite
from meshwatch.stack.ports import CONTAINER_PORTS, in_container_target, in_container_url
from meshwatch.stack.replicas import (
    PROMETHEUS_REPLICAS,
    PrometheusReplica,
    alertmanager_peers,
    external_labels,
    prometheus_replicas,
)
from meshwatch.stack.yamlfile import yaml_file

PATH = PROMETHEUS_REPLICAS[0].config_path
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


# Keys only Prometheus 3 reads, written for a 3.x image and dropped by native
# mode (Debian's 2.42 rejects them): legacy names, so 3.x accepts exactly the
# metric and label names 2.x does, and a text-format fallback for targets that
# answer without a Content-Type, which 3.x otherwise refuses to scrape.
PROMETHEUS_3_GLOBAL = {"metric_name_validation_scheme": "legacy"}
PROMETHEUS_3_AGENT_JOB = {"fallback_scrape_protocol": "PrometheusText0.0.4"}


def for_prometheus_2(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` without the keys only Prometheus 3 reads: what a 2.x binary (Debian's 2.42) loads.

    Dropping them changes nothing for 2.x, whose defaults they restate.
    """
    copy = dict(doc)
    copy["global"] = {
        k: v for k, v in doc.get("global", {}).items() if k not in PROMETHEUS_3_GLOBAL
    }
    copy["scrape_configs"] = [
        {k: v for k, v in job.items() if k not in PROMETHEUS_3_AGENT_JOB}
        for job in doc.get("scrape_configs", [])
    ]
    return copy


def _job(name: str, targets: list[str]) -> dict[str, Any]:
    return {"job_name": name, "static_configs": [{"targets": targets}]}


SECRETS_DIR = "/run/secrets"
# Settings field of a remote write -> the Prometheus key that reads it from a file.
_REMOTE_WRITE_SECRETS = {"password_file": "password", "bearer_token_file": "bearer_token"}


def remote_write_secret(index: int, field_name: str) -> str:
    """The docker secret (and file under /run/secrets) of one remote write's credential."""
    return f"meshwatch_remote_write_{index}_{_REMOTE_WRITE_SECRETS[field_name]}"


def secret_files(settings: Settings) -> dict[str, str]:
    """Docker secret name -> host file, for every credential a remote write reads."""
    return {
        remote_write_secret(i, field_name): path
        for i, write in enumerate(settings.stack.remote_write)
        for field_name, path in write.secret_files().items()
    }


def _remote_write(index: int, write: RemoteWrite) -> dict[str, Any]:
    """One ``remote_write`` entry; keys valid in Prometheus 2.42 and in 3.x alike."""
    config: dict[str, Any] = {
        "url": in_container_url(write.url),
        "send_exemplars": write.send_exemplars,
    }
    if write.name is not None:
        config["name"] = write.name
    if write.headers:
        config["headers"] = dict(write.headers)
    if write.remote_timeout is not None:
        config["remote_timeout"] = str(write.remote_timeout)
    if write.username is not None:
        config["basic_auth"] = {
            "username": write.username,
            "password_file": f"{SECRETS_DIR}/{remote_write_secret(index, 'password_file')}",
        }
    if write.bearer_token_file is not None:
        # ``authorization`` rather than the older ``bearer_token_file``: both
        # majors read it, and the older key is deprecated.
        config["authorization"] = {
            "type": "Bearer",
            "credentials_file": f"{SECRETS_DIR}/{remote_write_secret(index, 'bearer_token_file')}",
        }
    queue = write.queue.config()
    if queue:
        config["queue_config"] = queue
    return config


def prometheus_targets(settings: Settings) -> list[str]:
    """The compose addresses of the stack's own Prometheus instances (job ``prometheus``)."""
    replicas = prometheus_replicas(settings.stack)
    if len(replicas) == 1:
        return [f"localhost:{CONTAINER_PORTS['prometheus']}"]
    return [f"{r.name}:{CONTAINER_PORTS[r.name]}" for r in replicas]


def alertmanager_targets(settings: Settings) -> list[str]:
    """The compose addresses of every Alertmanager: each Prometheus sends to all of them."""
    return [f"{p.name}:{CONTAINER_PORTS[p.name]}" for p in alertmanager_peers(settings.stack)]


def prometheus_config(
    settings: Settings, replica: PrometheusReplica | None = None
) -> dict[str, Any]:
    """The compose-network prometheus.yml of ``replica`` (default: the first) as a document."""
    stack = settings.stack
    replica = replica or prometheus_replicas(stack)[0]
    jobs = [
        _job(JOB_PROMETHEUS, prometheus_targets(settings)),
        _job(JOB_ALERTMANAGER, alertmanager_targets(settings)),
        _job(JOB_TEMPO, [f"tempo:{CONTAINER_PORTS['tempo']}"]),
        _job(JOB_GRAFANA, [f"grafana:{CONTAINER_PORTS['grafana']}"]),
    ]
    if stack.demo.enabled:
        jobs.append(_job(JOB_DEMO, [DEMO_COMPOSE_TARGET]))
    prometheus_3 = stack.images.version("prometheus")[0] >= 3
    if stack.agent_targets:
        agents = _job(JOB_AGENTS, [in_container_target(t) for t in stack.agent_targets])
        jobs.append({**agents, **PROMETHEUS_3_AGENT_JOB} if prometheus_3 else agents)
    global_: dict[str, Any] = {
        "scrape_interval": str(stack.scrape_interval),
        "evaluation_interval": str(stack.evaluation_interval),
    }
    labels = external_labels(stack, replica)
    if labels:
        global_["external_labels"] = labels
    if prometheus_3:
        global_.update(PROMETHEUS_3_GLOBAL)
    alerting: dict[str, Any] = {
        "alertmanagers": [{"static_configs": [{"targets": alertmanager_targets(settings)}]}]
    }
    if stack.ha:
        alerting["alert_relabel_configs"] = [{"action": "labeldrop", "regex": stack.replica_label}]
    doc: dict[str, Any] = {
        "global": global_,
        "rule_files": [RULES_GLOB],
        "alerting": alerting,
        "scrape_configs": jobs,
    }
    if stack.remote_write:
        doc["remote_write"] = [_remote_write(i, w) for i, w in enumerate(stack.remote_write)]
    return doc


def render(settings: Settings) -> list[GeneratedFile]:
    return [
        yaml_file(
            replica.config_path,
            prometheus_config(settings, replica),
            comment="Run with: " + " ".join(prometheus_flags(settings)),
        )
        for replica in prometheus_replicas(settings.stack)
    ]
