"""The ``meshwatch alert-sink`` command line, beside the sink: its flags, and the argv that sets them.

The parser (:func:`add_arguments`, used by :mod:`meshwatch.commands.alert_sink`)
and the argument list the stack runs the sink with (:func:`argv`, used by the
generated compose file, the Kubernetes workload and the native runner) spell
each flag through the same constant, so the two cannot drift apart, as
``meshwatch/demo/command_line.py`` does for the demo.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from meshwatch.settings.stack import Ports, port_argument

COMMAND = "alert-sink"
PORT = "--port"
ADDR = "--addr"
LOG = "--log"
DEFAULT_ADDR = "127.0.0.1"


def add_arguments(parser: argparse.ArgumentParser, *, default_log: Path) -> None:
    """The sink's options, on the ``meshwatch alert-sink`` parser.

    ``default_log`` is where ``meshwatch up`` keeps the file (the command
    reads it from the working directory's layout, which this module, imported
    by the compose generator, must not import).
    """
    parser.add_argument(
        PORT,
        type=port_argument,
        default=Ports().alert_sink,
        help="port to listen on (0 picks a free one; default %(default)s)",
    )
    parser.add_argument(
        ADDR, default=DEFAULT_ADDR, help="address to listen on (default %(default)s)"
    )
    parser.add_argument(
        LOG,
        default=str(default_log),
        metavar="PATH",
        help="file the notifications are appended to, one JSON line each "
        "(default: where `meshwatch up` keeps it, %(default)s)",
    )


def argv(*, port: int, addr: str, log: str | Path) -> list[str]:
    """Arguments of ``meshwatch`` that run the sink on ``addr:port``, appending to ``log``."""
    return [COMMAND, PORT, str(port), ADDR, addr, LOG, str(log)]


__all__ = ["ADDR", "COMMAND", "LOG", "PORT", "add_arguments", "argv"]
