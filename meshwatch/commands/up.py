"""``meshwatch up``: generate the stack into the working directory and start it.

With a Docker engine answering, the whole stack runs under docker compose.
Without one, native mode runs the real Prometheus and Alertmanager binaries
and the demo on the host; Grafana and Tempo need Docker, so their part is
said plainly, with where the dashboards are for import elsewhere.

Receivers without a URL of their own (the default) post to the built-in alert
sink, which runs in both modes; ``up`` says where to read what it received.
In native mode it prints the pages that work on the binaries it runs, and how
to get the dashboards as pictures without Grafana (``meshwatch snapshot``;
``--snapshot`` takes one as soon as the stack is up).
"""

from __future__ import annotations

import argparse

from meshwatch.commands.shared import (
    CommandError,
    add_stack_arguments,
    print_statuses,
)
from meshwatch.commands.snapshot import snapshot
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
from meshwatch.stack.runner.web_ui import alertmanager_pages, prometheus_pages

DEFAULT_TIMEOUT = {"native": 120.0, "compose": 300.0}
# `up --snapshot` (native mode): where the dashboard pictures go, in the working directory.
SNAPSHOT_DIR = "snapshots"
SNAPSHOT_SINCE = "15m"


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


def _print_native_pages(stack: NativeStack) -> None:
    """The pages that work on the binaries native mode runs (Debian's lack the usual UIs)."""
    components = stack.components()
    if "prometheus" in components:
        pages = prometheus_pages(stack.url("prometheus"))
        print("  Prometheus: " + ", ".join(f"{name} {url}" for name, url in pages.items()))
    if "alertmanager" in components:
        print("  Alertmanager: " + "; ".join(alertmanager_pages(stack.url("alertmanager"))))


def _up_native(
    settings: Settings,
    workdir: Workdir,
    timeout: float,
    *,
    config: str | None,
    take_snapshot: bool,
) -> list[ComponentStatus]:
    stack = NativeStack(
        settings, workdir.root, renderer=render_all, say=lambda m: print(f"meshwatch up: {m}")
    )
    statuses = stack.start(timeout=timeout)
    print(f"meshwatch is up in native mode (working directory {workdir.root}):")
    print_statuses(statuses)
    _print_native_pages(stack)
    if ALERT_SINK in stack.components():
        print(
            "  Alert notifications of receivers without a URL are appended to "
            f"{workdir.notifications_file}"
        )
    dashboards = workdir.stack / "grafana" / "dashboards"
    pictures = workdir.root / SNAPSHOT_DIR
    command = f"meshwatch snapshot --prometheus {stack.url('prometheus')} --out {pictures}"
    if config is not None:
        command += f" --config {config}"
    print(
        "Grafana and Tempo need Docker, so they are not running in native mode.\n"
        f"  Dashboards as pictures, drawn from this Prometheus without Grafana: `{command}`\n"
        f"  (then open {pictures / 'index.html'}; run it again for newer data,\n"
        "  or start with `meshwatch up --snapshot`).\n"
        f"  Dashboards to import into a Grafana of your own: {dashboards}/*.json\n"
        f"  (point their Prometheus datasource at {stack.url('prometheus')})."
    )
    if take_snapshot:
        snapshot(settings, stack.url("prometheus"), pictures, SNAPSHOT_SINCE)
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
            statuses = _up_native(
                settings, workdir, timeout, config=args.config, take_snapshot=args.snapshot
            )
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
        "--snapshot",
        action="store_true",
        help=f"native mode: once up, draw the dashboards into {SNAPSHOT_DIR}/ (meshwatch snapshot)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds to wait for every component to be ready (default: 120 native, 300 compose)",
    )
    parser.set_defaults(func=run)
