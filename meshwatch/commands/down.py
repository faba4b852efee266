"""``meshwatch down``: stop exactly what ``meshwatch up`` started from this working directory.

Native processes are found by their pid files (and stopped as process groups:
SIGTERM, then SIGKILL after ``--timeout``); a compose project by the name
``up`` recorded. Data is kept unless ``--volumes`` is given.
"""

from __future__ import annotations

import argparse
import shutil

from meshwatch.commands.shared import CommandError, add_stack_arguments
from meshwatch.settings import load_settings
from meshwatch.stack.runner import ComposeStack, NativeStack, StackError, Workdir, docker_available


def say(message: str) -> None:
    print(f"meshwatch down: {message}")


def run(args: argparse.Namespace) -> int:
    """Stop what ``meshwatch up`` started."""
    settings = load_settings(args.config)
    workdir = Workdir.for_settings(settings, args.workdir)
    mode = workdir.read_mode()
    try:
        stopped = NativeStack(settings, workdir.root, say=say).stop(timeout=args.timeout)
        if mode is not None and mode["mode"] == "compose":
            if not docker_available():
                raise StackError(
                    f"compose project {mode.get('project')} was started from {workdir.root}, "
                    "but no Docker engine answers now; start Docker and run this again"
                )
            ComposeStack(settings, workdir.root).stop(volumes=args.volumes)
            stopped.append(f"compose project {mode.get('project')}")
    except StackError as exc:
        raise CommandError(str(exc)) from None
    if args.volumes and workdir.data.is_dir():
        shutil.rmtree(workdir.data)
        say(f"removed stored data in {workdir.data}")
    print(
        f"meshwatch down: stopped {', '.join(stopped)}"
        if stopped
        else "meshwatch down: nothing was running"
    )
    return 0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "down",
        help="stop what `meshwatch up` started",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stack_arguments(parser)
    parser.add_argument(
        "--volumes", action="store_true", help="also delete stored metrics, alerts and traces"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait after SIGTERM before SIGKILL"
    )
    parser.set_defaults(func=run)
