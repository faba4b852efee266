"""``meshwatch alert-sink``: record Alertmanager's webhook notifications where you can read them.

``meshwatch up`` runs it beside Alertmanager for every receiver without a URL
of its own, so notifications of a fresh stack arrive somewhere instead of
failing. It serves on ``--addr:--port``:

  POST /<receiver>             an Alertmanager webhook notification (JSON, version 4)
  GET  /notifications?limit=N  the newest N notifications as JSON (default 20)
  GET  /-/ready                200 while it serves

Each notification is appended as one JSON line to ``--log``, and each alert in
it is printed as one line on stdout. It stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import threading

from meshwatch.commands.shared import CommandError
from meshwatch.commands.signals import stop_on_signals
from meshwatch.settings.stack import StackSettings
from meshwatch.stack import alert_sink_command_line
from meshwatch.stack.alert_sink import AlertSink
from meshwatch.stack.runner.workdir import Workdir


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM."""
    try:
        sink = AlertSink(args.log, addr=args.addr, port=args.port)
    except OSError as error:
        target = error.filename or f"{args.addr}:{args.port}"
        raise CommandError(f"cannot start on {target}: {error.strerror or error}") from None
    stop = threading.Event()
    with stop_on_signals(stop):
        sink.start()
        try:
            print(
                f"meshwatch alert-sink: listening on {sink.url}, notifications to {sink.log_path}",
                flush=True,
            )
            stop.wait()
        finally:
            sink.stop()
    print("meshwatch alert-sink: stopped", flush=True)
    return 0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        alert_sink_command_line.COMMAND,
        help="record Alertmanager webhook notifications to a file (what `up` runs by default)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    alert_sink_command_line.add_arguments(
        parser, default_log=Workdir(StackSettings().workdir).notifications_file
    )
    parser.set_defaults(func=run)


__all__ = ["add_parser", "run"]
