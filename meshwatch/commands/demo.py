"""``meshwatch demo``: a simulated multi-agent fleet driving the real instrumentation.

It serves ``/metrics`` on ``--addr:--metrics-port`` (loopback by default) and,
with ``--otlp-endpoint``, exports spans over OTLP/HTTP (protobuf to
``URL/v1/traces``). Within seconds of start every metric of the catalogue has
series. ``--scenario incident`` drives the three tutorial alerts (see
:mod:`meshwatch.demo.scenario`); ``--runtime agent-hypervisor`` runs the fleet
on the real agent-hypervisor runtime (see :mod:`meshwatch.demo.runtime_world`); ``--incident-duration`` ends the incident
while the demo keeps serving, so the alerts can be seen to resolve.

It stops on SIGINT or SIGTERM, or after ``--duration`` seconds, with exit code
0: agent processes end, the server closes, spans and audit trails are flushed
within a bounded time.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from meshwatch.commands.shared import CommandError
from meshwatch.commands.signals import stop_on_signals
from meshwatch.demo.command_line import RUNTIME, add_arguments
from meshwatch.demo.runner import Demo, DemoConfig
from meshwatch.demo.scenario import build_scenario
from meshwatch.instrumentation.audit import AuditDatabaseError
from meshwatch.instrumentation.logs import configure_logging
from meshwatch.remediation import RemediationError
from meshwatch.settings import SettingsError, load_settings
from meshwatch.settings.remediation import RemediationSettings


def run(args: argparse.Namespace) -> int:
    """Run the demo until SIGINT/SIGTERM or the end of ``--duration``."""
    runtime = args.runtime
    if runtime == RUNTIME and args.elevation_backdate is not None:
        raise CommandError(
            "--elevation-backdate: not for --runtime agent-hypervisor "
            "(a real elevation starts when it is granted)",
            exit_code=2,
        )
    try:
        scenario = build_scenario(
            args.scenario,
            seed=args.seed,
            incident_duration=args.incident_duration,
            breach_rate=args.breach_rate,
            elevation_backdate=args.elevation_backdate,
        )
        config = DemoConfig(
            scenario,
            metrics_port=args.metrics_port,
            addr=args.addr,
            duration=args.duration,
            otlp_endpoint=args.otlp_endpoint,
            audit_dir=Path(args.audit_dir) if args.audit_dir else None,
            remediation=_remediation(args.remediation_config),
            remediation_port=args.remediation_port,
        )
    except (ValueError, SettingsError) as error:
        raise CommandError(str(error), exit_code=2) from None
    configure_logging(level=args.log_level)
    stop = threading.Event()
    if runtime == RUNTIME:
        try:
            from meshwatch.demo.runtime_runner import RuntimeDemo
        except ImportError as error:
            raise CommandError(
                f"--runtime {RUNTIME} needs the extra: pip install 'meshwatch[{RUNTIME}]' ({error})",
                exit_code=2,
            ) from None
        demo: Demo = RuntimeDemo(config)
    else:
        demo = Demo(config)
    with stop_on_signals(stop):
        try:
            demo.start()
        except AuditDatabaseError as error:
            raise CommandError(f"audit trail: {error}", exit_code=2) from None
        except RemediationError as error:
            raise CommandError(str(error)) from None
        except OSError as error:
            if error.filename is not None:  # the audit directory, not the socket
                raise CommandError(
                    f"--audit-dir {error.filename}: {error.strerror or error}", exit_code=2
                ) from None
            raise CommandError(
                f"cannot serve /metrics on {args.addr}:{args.metrics_port}: {error.strerror or error}"
            ) from None
        try:
            spans = f"; spans to {args.otlp_endpoint}" if args.otlp_endpoint else ""
            remediation = f"; remediation at {demo.receiver.url}" if demo.receiver else ""
            print(
                f"meshwatch demo: {scenario.name} scenario on the {runtime} runtime, "
                f"seed {scenario.seed}, serving {demo.url}{spans}{remediation}",
                flush=True,
            )
            demo.run(stop)
        finally:
            demo.close()
    print("meshwatch demo: stopped", flush=True)
    return 0


def _remediation(path: str | None) -> RemediationSettings | None:
    """The ``remediation:`` section of the settings file at ``path``, if one was given."""
    return None if path is None else load_settings(path).remediation


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a simulated multi-agent fleet that drives the real instrumentation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


__all__ = ["add_parser", "run"]
