"""``meshwatch up``: generate the stack into the working directory and start it.

With a Docker engine answering, the whole stack runs under docker compose.
Without one, native mode runs the real Prometheus and Alertmanager binaries
and the demo on the host; Grafana and Tempo need Docker, so their part is
said plainly, with where the dashboards are for import elsewhere.

Receivers without a URL of their own (the default) post to the built-in alert
sink, which runs in both modes; ``up`` says where to read what it received.
"""

from __future__ import annotations

import argparse

from meshwatch.commands.shared import (
    CommandError,
    add_stack_arguments,
    print_statuses,
)
from meshwatch.rendering import render_all
from meshwatch.settings import Settings, load_settings
from meshwatch.stack import secrets as stack_secrets
from meshwatch.stack.alert_sink import NOTIFICATIONS_PATH
from meshwatch.stack.ports import ALERT_SINK, endpoints
from meshwatch.stack.runner import (
    ComponentStatus,
    ComposeStack,
    NativeStack,
    StackError,
    Workdir,
    docker_available,
)
from meshwatch.stack.runner.compose import ENGINE_PROBE_TIMEOUT

DEFAULT_TIMEOUT = {"native": 120.0, "compose": 300.0}


def choose_mode(requested: str) -> str:
    if requested != "auto":
        return requested
    if docker_available():
        print("meshwatch up: a Docker engine answers: compose mode")
        return "compose"
    print(
        f"meshwatch up: no Docker engine answered `docker info` (waited up to {ENGINE_PROBE_TIMEOUT:.0f}s): "
        "native mode (the Prometheus and Alertmanager binaries and the demo, on this machine)"
    )
    return "native"


def _up_native(settings: Settings, workdir: Workdir, timeout: float) -> list[ComponentStatus]:
    stack = NativeStack(
        settings, workdir.root, renderer=render_all, say=lambda m: print(f"meshwatch up: {m}")
    )
    statuses = stack.start(timeout=timeout)
    print(f"meshwatch is up in native mode (working directory {workdir.root}):")
    print_statuses(statuses)
    if ALERT_SINK in stack.components():
        print(
            "  Alert notifications of receivers without a URL are appended to "
            f"{workdir.notifications_file}"
        )
    dashboards = workdir.stack / "grafana" / "dashboards"
    print(
        "Grafana and Tempo need Docker, so they are not running in native mode.\n"
        f"  Dashboards to import into a Grafana of your own: {dashboards}/*.json\n"
        f"  (point their Prometheus datasource at {stack.url('prometheus')})."
    )
    return statuses


def _up_compose(settings: Settings, workdir: Workdir, timeout: float) -> list[ComponentStatus]:
    stack = ComposeStack(settings, workdir.root, renderer=render_all)
    statuses = stack.start(timeout=timeout)
    print(f"meshwatch is up under docker compose (project {settings.stack.project}):")
    print_statuses(statuses)
    if ALERT_SINK in stack.services:
        print(
            "  Alert notifications of receivers without a URL: "
            f"{endpoints(settings.stack)[ALERT_SINK].host_url(settings.stack)}"
            f"{NOTIFICATIONS_PATH} (and `docker compose -p {settings.stack.project} "
            f"logs {ALERT_SINK}`)"
        )
    print(
        f"  Grafana login: user {stack_secrets.ADMIN_USER}, password "
        f"{stack_secrets.PASSWORD_VAR} in {workdir.stack / stack_secrets.PATH}"
    )
    return statuses


def run(args: argparse.Namespace) -> int:
    """Generate the stack into the working directory and start it."""
    settings = load_settings(args.config)
    workdir = Workdir.for_settings(settings, args.workdir)
    mode = choose_mode(args.mode)
    timeout = args.timeout if args.timeout is not None else DEFAULT_TIMEOUT[mode]
    try:
        if mode == "native":
            statuses = _up_native(settings, workdir, timeout)
        else:
            statuses = _up_compose(settings, workdir, timeout)
    except StackError as exc:
        raise CommandError(str(exc)) from None
    print("Stop everything with `make down` (or `meshwatch down`).")
    return 0 if all(s.ready for s in statuses) else 1


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "up",
        help="generate the stack and start it (docker compose, or native without Docker)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stack_arguments(parser)
    parser.add_argument(
        "--mode",
        choices=("auto", "compose", "native"),
        default="auto",
        help="compose when a Docker engine answers, else native (default: auto)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds to wait for every component to be ready (default: 120 native, 300 compose)",
    )
    parser.set_defaults(func=run)
