"""What several subcommands share: the user-facing error, the settings and workdir options,
and how component statuses are printed.

Subcommands import this module, never :mod:`meshwatch.cli` or each other, so
each command module depends only on what it uses.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from meshwatch.stack.alert_sink import NOTIFICATIONS_PATH
from meshwatch.stack.ports import ALERT_SINK
from meshwatch.stack.runner import ComponentStatus

# The page of each component worth opening, after its base URL.
STATUS_PAGES = {"demo": "/metrics", ALERT_SINK: NOTIFICATIONS_PATH}


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code 1 (or ``exit_code``)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def os_error(exc: OSError) -> str:
    """An OSError as one line: the path, then what is wrong with it."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is None:
        return reason
    return f"{exc.filename}: {reason}"


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """``--config``: which settings file (every command that reads settings takes it)."""
    parser.add_argument(
        "--config", default=None, help="settings file (default: ./meshwatch.yaml if present)"
    )


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by up, down and status: which settings and which working directory."""
    add_config_argument(parser)
    parser.add_argument(
        "--workdir", default=None, help="working directory (default: stack.workdir, .meshwatch)"
    )


def print_statuses(statuses: Sequence[ComponentStatus]) -> None:
    """One aligned line per component: name, the URL worth opening, ready or why not."""
    width = max((len(s.name) for s in statuses), default=0)
    for s in statuses:
        url = s.url + STATUS_PAGES.get(s.name, "")
        state = "ready" if s.ready else f"NOT READY ({s.detail})"
        print(f"  {s.name.ljust(width)}  {url}  {state}")
