"""Native mode's copies of the generated configs: the same documents, addresses rewritten.

Prometheus and Alertmanager run on the host in native mode, so every address
that means something inside the compose network is rewritten to where that
thing is on the host: ``alertmanager:9093`` becomes ``127.0.0.1:<port>``, a
secret under /run/secrets becomes the host file it was mounted from, and the
``host.docker.internal`` spelling of the user's own targets goes back to the
address the user wrote, and receivers posting to the alert sink post to the
sink on the host; remote-write credentials are read from their host files. With
``stack.ha`` each Prometheus replica gets its own copy (``prometheus-2.yml``).
Keys only Prometheus 3 reads are dropped, so a stack pinned to Prometheus 3
runs natively on Debian's 2.42 from the same settings. Scrape jobs of
components native mode does not run
(Tempo, Grafana) are dropped, or they would only ever report down. Rule files
are loaded from the generated ``stack/prometheus/rules/`` directory itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from meshwatch.generated import GeneratedFile
from meshwatch.settings import Settings
from meshwatch.stack import alertmanager_config, prometheus_config, remediation_config
from meshwatch.stack.ports import (
    CONTAINER_PORTS,
    alert_sink_url,
    connect_host,
    in_container_target,
    in_container_url,
    url_host,
)
from meshwatch.stack.replicas import (
    PrometheusReplica,
    alertmanager_peers,
    host_port,
    prometheus_replicas,
)
from meshwatch.stack.yamlfile import yaml_file

PROMETHEUS = "prometheus.yml"
ALERTMANAGER = "alertmanager.yml"
DEMO_REMEDIATION = "demo-remediation.yaml"


def native_config_name(replica: PrometheusReplica) -> str:
    """The native copy of ``replica``'s prometheus.yml, in the workdir's native/ directory."""
    return Path(replica.config_path).name


# Jobs whose targets only exist inside compose.
COMPOSE_ONLY_JOBS = (prometheus_config.JOB_TEMPO, prometheus_config.JOB_GRAFANA)


def _replace_values(doc: Any, mapping: dict[str, str]) -> Any:
    """A copy of ``doc`` with every string value found in ``mapping`` replaced."""
    if isinstance(doc, dict):
        return {key: _replace_values(value, mapping) for key, value in doc.items()}
    if isinstance(doc, list):
        return [_replace_values(value, mapping) for value in doc]
    if isinstance(doc, str):
        return mapping.get(doc, doc)
    return doc


def native_prometheus(doc: dict[str, Any], settings: Settings, stack_dir: Path) -> dict[str, Any]:
    """The compose prometheus.yml ``doc`` rewritten for a Prometheus on the host."""
    stack = settings.stack
    host = url_host(connect_host(stack.bind_address))
    addresses = {
        f"localhost:{CONTAINER_PORTS['prometheus']}": f"{host}:{stack.ports.prometheus}",
        prometheus_config.DEMO_COMPOSE_TARGET: f"{host}:{stack.ports.demo_metrics}",
        **{in_container_target(t): t for t in stack.agent_targets},
        **{
            f"{r.name}:{CONTAINER_PORTS[r.name]}": f"{host}:{host_port(stack, r.host_port_key)}"
            for r in prometheus_replicas(stack)
        },
        **{
            f"{p.name}:{CONTAINER_PORTS[p.name]}": f"{host}:{host_port(stack, p.host_port_key)}"
            for p in alertmanager_peers(stack)
        },
        **{in_container_url(w.url): w.url for w in stack.remote_write},
        **{
            f"{prometheus_config.SECRETS_DIR}/{name}": path
            for name, path in prometheus_config.secret_files(settings).items()
        },
    }
    # Debian's Prometheus is 2.x: drop what only 3.x reads (its 2.x defaults are the same).
    native = prometheus_config.for_prometheus_2(_replace_values(doc, addresses))
    native["scrape_configs"] = [
        job for job in native["scrape_configs"] if job["job_name"] not in COMPOSE_ONLY_JOBS
    ]
    config_dir = stack_dir / Path(prometheus_config.PATH).parent
    native["rule_files"] = [str(config_dir / pattern) for pattern in native.get("rule_files", [])]
    return native


def native_alertmanager(doc: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The compose alertmanager.yml ``doc`` rewritten for an Alertmanager on the host."""
    mapping = {
        f"{alertmanager_config.SECRETS_DIR}/{name}": host_path
        for name, host_path in alertmanager_config.secret_files(settings).items()
    }
    stack = settings.stack
    for name, receiver in stack.receivers.by_severity().items():
        if receiver.posts_to_sink:
            mapping[alert_sink_url(stack, name, in_compose=True)] = alert_sink_url(
                stack, name, in_compose=False
            )
        elif receiver.url is not None:
            mapping[in_container_url(receiver.url)] = receiver.url
    if remediation_config.enabled(settings):
        compose_url = remediation_config.receiver_url(settings, in_compose=True)
        mapping[compose_url] = remediation_config.receiver_url(settings, in_compose=False)
    native: dict[str, Any] = _replace_values(doc, mapping)
    return native


def native_configs(settings: Settings, stack_dir: Path) -> list[GeneratedFile]:
    """Native copies of the configs generated in ``stack_dir`` (read back from disk)."""

    def load(relative: str) -> dict[str, Any]:
        doc: dict[str, Any] = yaml.safe_load((stack_dir / relative).read_text(encoding="utf-8"))
        return doc

    return [
        *(
            yaml_file(
                native_config_name(replica),
                native_prometheus(load(replica.config_path), settings, stack_dir),
                comment=f"Native-mode copy of {stack_dir / replica.config_path}.",
            )
            for replica in prometheus_replicas(settings.stack)
        ),
        yaml_file(
            ALERTMANAGER,
            native_alertmanager(load(alertmanager_config.PATH), settings),
            comment=f"Native-mode copy of {stack_dir / alertmanager_config.PATH}.",
        ),
        *(
            [
                yaml_file(
                    DEMO_REMEDIATION,
                    remediation_config.demo_settings(settings, in_compose=False),
                    comment="The demo's remediation receiver, listening on the host.",
                )
            ]
            if remediation_config.enabled(settings) and settings.stack.demo.enabled
            else []
        ),
    ]
