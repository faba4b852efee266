"""Take the snapshot: query, draw and write every dashboard's picture and the index."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from meshwatch.dashboards import dashboard_models
from meshwatch.generated import GeneratedFile, write_tree
from meshwatch.settings import Settings
from meshwatch.snapshot.collect import PanelData, Progress, Window, collect, plan, query_count
from meshwatch.snapshot.index import MARKER, DashboardPicture, render_index
from meshwatch.snapshot.layout import render_png
from meshwatch.snapshot.promapi import PrometheusClient, PrometheusUnreachable

INDEX = "index.html"


class SnapshotError(Exception):
    """The snapshot cannot be taken as asked (bad URL, no Prometheus there, unusable --out)."""


@dataclass(frozen=True)
class SnapshotReport:
    """What was written, and every panel's outcome."""

    out: Path
    pictures: tuple[DashboardPicture, ...]
    queries: int

    def panels(self) -> list[tuple[str, PanelData]]:
        """(dashboard uid, panel) for every panel below the row headers."""
        return [(p.uid, panel) for p in self.pictures for panel in p.panels if panel.kind != "row"]


def writable_out(out: Path) -> None:
    """Refuse an ``--out`` that is a file, or a directory that holds something else than a snapshot."""
    if out.exists() and not out.is_dir():
        raise SnapshotError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        try:
            ours = (out / INDEX).read_text(encoding="utf-8").startswith(MARKER)
        except (OSError, UnicodeDecodeError):
            ours = False
        if not ours:
            raise SnapshotError(
                f"--out {out} is not empty and holds no earlier snapshot; its contents would be "
                "replaced: choose another directory"
            )


def take_snapshots(
    settings: Settings,
    prometheus_url: str,
    out: Path,
    since_seconds: float,
    *,
    progress: Progress | None = None,
    now: float | None = None,
) -> SnapshotReport:
    """Draw every generated dashboard from ``prometheus_url`` and write ``out`` atomically."""
    try:
        client = PrometheusClient(prometheus_url)
    except ValueError as err:
        raise SnapshotError(f"--prometheus: {err}") from None
    if since_seconds <= 0:
        raise SnapshotError("--since must be a positive duration")
    writable_out(out)
    try:
        client.build_info()
    except PrometheusUnreachable as err:
        raise SnapshotError(str(err)) from None
    except Exception as err:  # an answer, but not a Prometheus API
        raise SnapshotError(f"{client.base_url} is not a Prometheus API: {err}") from None
    window = Window(
        end=time.time() if now is None else now,
        range_seconds=since_seconds,
        scrape_interval=settings.stack.scrape_interval.seconds,
    )
    models = dashboard_models(settings)
    total = sum(query_count(plan(model)) for model in models)
    done = 0
    pictures: list[DashboardPicture] = []
    files: list[GeneratedFile] = []
    for model in models:
        try:
            panels = collect(
                model, client, window, progress=progress, done_before=done, total=total
            )
        except PrometheusUnreachable as err:
            raise SnapshotError(f"{err} (while querying {model['title']})") from None
        done += query_count(panels)
        image = f"{model['uid']}.png"
        files.append(
            GeneratedFile(image, render_png(model["title"], panels, window, client.base_url))
        )
        pictures.append(DashboardPicture(model["uid"], model["title"], image, tuple(panels)))
    header = (
        f"Drawn from {client.base_url}, the last {since_seconds / 60:g} minutes, by "
        "`meshwatch snapshot` (matplotlib): no Grafana involved."
    )
    files.append(GeneratedFile(INDEX, render_index(pictures, header)))
    write_tree(files, out)
    return SnapshotReport(out, tuple(pictures), total)
