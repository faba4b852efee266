"""The ``meshwatch demo`` command line, the same in both modes but for where it listens and exports."""

from __future__ import annotations

from meshwatch.settings import DemoSettings


def demo_arguments(
    demo: DemoSettings,
    *,
    metrics_port: int,
    addr: str | None = None,
    otlp_endpoint: str | None = None,
    audit_dir: str | None = None,
) -> list[str]:
    """Arguments of ``meshwatch`` that run the demo as ``demo`` settings describe."""
    args = ["demo", "--metrics-port", str(metrics_port)]
    if addr is not None:
        args += ["--addr", addr]
    if otlp_endpoint is not None:
        args += ["--otlp-endpoint", otlp_endpoint]
    args += ["--seed", str(demo.seed), "--scenario", demo.scenario]
    if demo.duration is not None:
        args += ["--duration", str(int(demo.duration.seconds))]
    if demo.incident_duration is not None:
        args += ["--incident-duration", str(int(demo.incident_duration.seconds))]
    if audit_dir is not None:
        args += ["--audit-dir", audit_dir]
    return args
