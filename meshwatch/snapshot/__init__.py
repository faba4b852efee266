"""Dashboard pictures without Grafana: every generated dashboard drawn from a live Prometheus.

``meshwatch snapshot --prometheus URL --out DIR`` runs each Prometheus panel's
queries the way Grafana would on first load (the dashboard's variable
defaults, ``$__rate_interval`` from the scrape interval) and draws the results
with matplotlib on the dashboard's own grid: one PNG per dashboard and an
``index.html``. Time series carry their alert thresholds as dashed lines;
stats, gauges and bars take the threshold colours. Panels only Tempo or
Grafana can feed are drawn as named boxes that say so.

It is what native mode (no Docker, so no Grafana) offers instead of
dashboards, what the documentation's pictures are made with, and what the
integration tier keeps as CI artifacts.
"""

from __future__ import annotations

from meshwatch.snapshot.collect import PanelData, Window
from meshwatch.snapshot.run import SnapshotError, SnapshotReport, take_snapshots

__all__ = ["PanelData", "SnapshotError", "SnapshotReport", "Window", "take_snapshots"]
