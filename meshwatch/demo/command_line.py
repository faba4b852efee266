"""The ``meshwatch demo`` command line, owned by the demo: its flags, and the argv that sets them.

The parser (:func:`add_arguments`, used by :mod:`meshwatch.commands.demo`) and
the argument list a deployment runs the demo with (:func:`argv`, used by the
generated compose file and the native runner) spell each flag through the same
constant, so the two cannot drift apart.
"""

from __future__ import annotations

import argparse
import math

from meshwatch.demo.scenario import MAX_BACKDATE, MAX_BREACH_RATE, MAX_SECONDS, SCENARIOS
from meshwatch.instrumentation.endpoints import check_endpoint
from meshwatch.settings.stack import RUNTIMES, DemoSettings, Ports, port_argument

METRICS_PORT = "--metrics-port"
ADDR = "--addr"
DURATION = "--duration"
SEED = "--seed"
SCENARIO = "--scenario"
RUNTIME_FLAG = "--runtime"
# The runtime that is not the demo's own simulation.
RUNTIME = "agent-hypervisor"
OTLP_ENDPOINT = "--otlp-endpoint"
INCIDENT_DURATION = "--incident-duration"
BREACH_RATE = "--breach-rate"
ELEVATION_BACKDATE = "--elevation-backdate"
AUDIT_DIR = "--audit-dir"
REMEDIATION_CONFIG = "--remediation-config"
REMEDIATION_PORT = "--remediation-port"
LOG_LEVEL = "--log-level"


def _number(text: str, low: float, high: float, *, low_inclusive: bool) -> float:
    """A finite number within bounds, or argparse's one-line error naming them."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    above_low = value >= low if low_inclusive else value > low
    if not (math.isfinite(value) and above_low and value <= high):
        lower = f"at least {low:g}" if low_inclusive else f"more than {low:g}"
        raise argparse.ArgumentTypeError(f"must be {lower} and at most {high:g}, got {text}")
    return value


def _seconds(text: str) -> float:
    return _number(text, 0, MAX_SECONDS, low_inclusive=False)


def _backdate(text: str) -> float:
    return _number(text, 0, MAX_BACKDATE, low_inclusive=True)


def _breach_rate(text: str) -> float:
    return _number(text, 0, MAX_BREACH_RATE, low_inclusive=False)


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _endpoint(text: str) -> str:
    try:
        return check_endpoint(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's options, on the ``meshwatch demo`` parser."""
    defaults = DemoSettings()
    parser.add_argument(
        METRICS_PORT,
        type=port_argument,
        metavar="PORT",
        default=Ports().demo_metrics,
        help="port of /metrics (0 picks a free one; default %(default)s)",
    )
    parser.add_argument(ADDR, default="127.0.0.1", help="address of /metrics (default %(default)s)")
    parser.add_argument(
        DURATION,
        type=_seconds,
        default=None,
        help="stop after this many seconds (default: run until stopped)",
    )
    parser.add_argument(
        SEED, type=_seed, default=defaults.seed, help="random seed (default %(default)s)"
    )
    parser.add_argument(
        SCENARIO,
        choices=SCENARIOS,
        default=defaults.scenario,
        help="steady: a healthy fleet; incident: drives the three tutorial alerts (default %(default)s)",
    )
    parser.add_argument(
        RUNTIME_FLAG,
        choices=RUNTIMES,
        default=defaults.runtime,
        help=f"simulated: the fleet's runtime is simulated; {RUNTIME}: the fleet runs on the "
        "real agent-hypervisor runtime (needs the extra; default %(default)s)",
    )
    parser.add_argument(
        OTLP_ENDPOINT,
        type=_endpoint,
        default=None,
        metavar="URL",
        help="export spans over OTLP/HTTP to URL (base URL: /v1/traces is appended)",
    )
    incident = parser.add_argument_group("incident scenario")
    incident.add_argument(
        INCIDENT_DURATION,
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="end the incident after this long and keep running healthy (default: never)",
    )
    incident.add_argument(
        BREACH_RATE,
        type=_breach_rate,
        default=None,
        metavar="PER_SECOND",
        help=f"ring breaches per second by the rogue agent (default 5, at most {MAX_BREACH_RATE:g})",
    )
    incident.add_argument(
        ELEVATION_BACKDATE,
        type=_backdate,
        default=None,
        metavar="SECONDS",
        help="the stuck elevation began this long before start (default 330; 0 = now)",
    )
    parser.add_argument(
        AUDIT_DIR,
        default=None,
        metavar="DIR",
        help="keep the audit databases here (default: a temporary directory, removed at exit)",
    )
    remediation = parser.add_argument_group("remediation")
    remediation.add_argument(
        REMEDIATION_CONFIG,
        default=None,
        metavar="FILE",
        help=(
            "serve the remediation receiver with the remediation section of this meshwatch.yaml "
            "(its kill_agent action kills simulated agents)"
        ),
    )
    remediation.add_argument(
        REMEDIATION_PORT,
        type=port_argument,
        default=None,
        metavar="PORT",
        help="port of the remediation receiver (0 picks a free one; default: from the file)",
    )
    parser.add_argument(
        LOG_LEVEL,
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="JSON log lines on stderr at this level (default %(default)s)",
    )


def argv(
    demo: DemoSettings,
    *,
    metrics_port: int,
    addr: str | None = None,
    otlp_endpoint: str | None = None,
    audit_dir: str | None = None,
    remediation_config: str | None = None,
    remediation_port: int | None = None,
) -> list[str]:
    """Arguments of ``meshwatch`` that run the demo as ``demo`` settings describe."""
    args = ["demo", METRICS_PORT, str(metrics_port)]
    if addr is not None:
        args += [ADDR, addr]
    if otlp_endpoint is not None:
        args += [OTLP_ENDPOINT, otlp_endpoint]
    args += [SEED, str(demo.seed), SCENARIO, demo.scenario]
    if demo.runtime != "simulated":
        args += [RUNTIME_FLAG, demo.runtime]
    if demo.duration is not None:
        args += [DURATION, str(int(demo.duration.seconds))]
    if demo.incident_duration is not None:
        args += [INCIDENT_DURATION, str(int(demo.incident_duration.seconds))]
    if audit_dir is not None:
        args += [AUDIT_DIR, audit_dir]
    if remediation_config is not None:
        args += [REMEDIATION_CONFIG, remediation_config]
    if remediation_port is not None:
        args += [REMEDIATION_PORT, str(remediation_port)]
    return args
