"""``tempo/tempo.yaml``: a single-binary Tempo that stores traces locally and turns them into metrics.

The document is written for the pinned Tempo's major version. Tempo 3 removed
the ``ingester`` and ``compactor`` blocks and parses its config strictly (an
unknown key is an error), so for 3.x retention is set on the backend worker
(``backend_worker.compaction.block_retention``); for 2.x it stays on the
compactor, and the ingester cuts blocks every five minutes. Every key is
checked against the config structs of the pinned versions by
``tests/unit/test_stack_versions.py``.

Otherwise the keys are the same in both majors: OTLP
receivers on gRPC 4317 and HTTP 4318 (explicitly on all interfaces of the
container, because the OpenTelemetry receivers Tempo embeds default to
localhost since 2.7), local block storage, and the metrics generator with the
``service-graphs`` and ``span-metrics`` processors enabled through the
per-tenant ``overrides.defaults`` (the 2.3+ overrides format), remote-writing
to Prometheus with exemplars so latency histograms link back to traces.
"""

from __future__ import annotations

from typing import Any

from meshwatch.generated import GeneratedFile
from meshwatch.settings import Settings
from meshwatch.stack.ports import CONTAINER_PORTS
from meshwatch.stack.replicas import prometheus_replicas
from meshwatch.stack.yamlfile import yaml_file

PATH = "tempo/tempo.yaml"
DATA_DIR = "/var/tempo"  # owned by the image's tempo user (uid 10001); a named volume
PROCESSORS = ("service-graphs", "span-metrics")
# GenAI span attributes worth a label on span metrics: both are bounded (an
# operation kind, an agent name), unlike ids or prompts.
SPAN_METRIC_DIMENSIONS = ("gen_ai.operation.name", "gen_ai.agent.name")


def tempo_config(settings: Settings) -> dict[str, Any]:
    """The tempo.yaml document for the pinned Tempo's major version."""
    # Every Prometheus replica gets the span and service-graph metrics.
    remote_write = [
        {"url": f"http://{r.name}:{CONTAINER_PORTS[r.name]}/api/v1/write", "send_exemplars": True}
        for r in prometheus_replicas(settings.stack)
    ]
    retention = {"compaction": {"block_retention": str(settings.stack.trace_retention)}}
    if settings.stack.images.version("tempo")[0] >= 3:
        by_version: dict[str, Any] = {"backend_worker": retention}
    else:
        by_version = {"ingester": {"max_block_duration": "5m"}, "compactor": retention}
    return {
        **by_version,
        "stream_over_http_enabled": True,
        "server": {"http_listen_port": CONTAINER_PORTS["tempo"], "log_level": "info"},
        "distributor": {
            "receivers": {
                "otlp": {
                    "protocols": {
                        "grpc": {"endpoint": f"0.0.0.0:{CONTAINER_PORTS['otlp_grpc']}"},
                        "http": {"endpoint": f"0.0.0.0:{CONTAINER_PORTS['otlp_http']}"},
                    }
                }
            }
        },
        "metrics_generator": {
            "registry": {"external_labels": {"source": "tempo"}},
            "storage": {
                "path": f"{DATA_DIR}/generator/wal",
                "remote_write": remote_write,
            },
            "processor": {"span_metrics": {"dimensions": list(SPAN_METRIC_DIMENSIONS)}},
        },
        "storage": {
            "trace": {
                "backend": "local",
                "wal": {"path": f"{DATA_DIR}/wal"},
                "local": {"path": f"{DATA_DIR}/blocks"},
            }
        },
        "overrides": {"defaults": {"metrics_generator": {"processors": list(PROCESSORS)}}},
    }


def render(settings: Settings) -> list[GeneratedFile]:
    return [yaml_file(PATH, tempo_config(settings))]
