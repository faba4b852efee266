"""``meshwatch snapshot --prometheus URL --out DIR``: the dashboards as pictures, no Grafana needed.

Every Prometheus panel of every generated dashboard is queried from the given
Prometheus over the last ``--since`` (default 30m) and drawn with matplotlib on
the dashboard's grid: one PNG per dashboard and an ``index.html`` in ``DIR``
(replaced atomically). Panels fed by Tempo or Grafana are named as not
drawable. Thresholds and variables come from the same settings as the
dashboards (``--config``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

from meshwatch.commands.shared import CommandError, add_config_argument
from meshwatch.settings import Duration, Settings, load_settings

DEFAULT_SINCE = "30m"


class ProgressLine:
    """One line that counts the queries: rewritten in place on a terminal, else one per dashboard."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last_title = ""

    def __call__(self, done: int, total: int, title: str) -> None:
        text = f"meshwatch snapshot: querying {title}: {done}/{total} queries"
        if self.tty:
            self.stream.write("\r" + text.ljust(100)[:100])
            self.stream.flush()
        elif title != self._last_title:
            self.stream.write(f"meshwatch snapshot: querying {title} (query {done} of {total})\n")
        self._last_title = title

    def finish(self) -> None:
        if self.tty and self._last_title:
            self.stream.write("\n")


def snapshot(
    settings: Settings, prometheus: str, out: Path, since: str, *, stream: TextIO | None = None
) -> int:
    """Take the snapshot and print where it is; shared with ``meshwatch up --snapshot``."""
    try:
        from meshwatch.snapshot import SnapshotError, take_snapshots
    except ModuleNotFoundError as err:
        raise CommandError(
            f"needs {err.name}: pip install 'meshwatch[snapshot]' (make up installs it)",
            exit_code=2,
        ) from None

    try:
        seconds = Duration(since).seconds
    except ValueError as err:
        raise CommandError(f"--since: {err}", exit_code=2) from None
    progress = ProgressLine(stream or sys.stderr)
    started = time.monotonic()
    try:
        report = take_snapshots(settings, prometheus, out, seconds, progress=progress)
    except SnapshotError as err:
        progress.finish()
        raise CommandError(str(err), exit_code=2) from None
    progress.finish()
    panels = report.panels()
    drawable = [p for _, p in panels if p.kind == "prometheus"]
    with_data = [p for p in drawable if p.has_data]
    print(
        f"wrote {len(report.pictures)} dashboard pictures and index.html to {out} "
        f"in {time.monotonic() - started:.1f}s: {len(with_data)}/{len(drawable)} Prometheus "
        f"panels drew data, {len(panels) - len(drawable)} panels not drawable without Grafana"
    )
    print(f"  open {(out / 'index.html').absolute()}")
    return 0


def run(args: argparse.Namespace) -> int:
    return snapshot(load_settings(args.config), args.prometheus, Path(args.out), args.since)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "snapshot",
        help="draw every dashboard from a live Prometheus into PNGs and an index.html",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--prometheus", required=True, help="Prometheus base URL, e.g. http://127.0.0.1:9090"
    )
    parser.add_argument("--out", required=True, help="output directory (replaced atomically)")
    parser.add_argument(
        "--since",
        default=DEFAULT_SINCE,
        help=f"time range drawn, a duration (default {DEFAULT_SINCE})",
    )
    add_config_argument(parser)
    parser.set_defaults(func=run)
