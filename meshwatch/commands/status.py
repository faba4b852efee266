"""``meshwatch status``: each component's readiness, from its own health endpoint.

Exit status 0 when everything ``up`` started is ready, 1 otherwise (including
when nothing was started from this working directory).
"""

from __future__ import annotations

import argparse

from meshwatch.commands.shared import add_stack_arguments, print_statuses
from meshwatch.settings import load_settings
from meshwatch.stack.runner import ComposeStack, NativeStack, Workdir


def run(args: argparse.Namespace) -> int:
    """Report each component's readiness."""
    settings = load_settings(args.config)
    workdir = Workdir.for_settings(settings, args.workdir)
    mode = workdir.read_mode()
    native = NativeStack(settings, workdir.root)
    if mode is None and not native.records():
        print(f"meshwatch status: nothing was started from {workdir.root} (run `meshwatch up`)")
        return 1
    if mode is not None and mode["mode"] == "compose":
        print(f"compose mode (project {mode.get('project')}):")
        statuses = ComposeStack(settings, workdir.root, services=mode.get("services")).status()
    else:
        print(f"native mode (working directory {workdir.root}):")
        statuses = native.status()
    print_statuses(statuses)
    if mode is None or mode["mode"] == "native":
        print("  grafana and tempo: not run in native mode (they need Docker)")
    return 0 if statuses and all(s.ready for s in statuses) else 1


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "status",
        help="readiness of each component `meshwatch up` started",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stack_arguments(parser)
    parser.set_defaults(func=run)
