"""Turning a generated dashboard's queries into what Grafana actually sends to Prometheus.

Grafana interpolates template variables before a query leaves the browser:
``$agent`` with "All" selected becomes the variable's ``allValue``,
``$__rate_interval`` becomes a window derived from the scrape interval, and so
on. Running the raw expression against Prometheus would be a parse error, so
the integration tests substitute exactly as Grafana would with each
dashboard's defaults.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

# What Grafana does to a query before sending it is product code now: `meshwatch snapshot`
# sends the same PromQL.
from meshwatch.snapshot.interpolate import default_values, substitute

__all__ = ["builtin_values", "default_values", "load_dashboards", "panels", "substitute"]


def builtin_values(*, rate_interval: str, range_seconds: int) -> dict[str, str]:
    """Grafana's global variables for a dashboard showing the last ``range_seconds``."""
    return {
        "__rate_interval": rate_interval,
        "__interval": rate_interval,
        "__interval_ms": str(_seconds(rate_interval) * 1000),
        "__range": f"{range_seconds}s",
        "__range_s": str(range_seconds),
        "__range_ms": str(range_seconds * 1000),
    }


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    match = re.fullmatch(r"(\d+)([smh])", duration)
    if match is None:
        raise ValueError(f"unsupported duration {duration!r}")
    return int(match.group(1)) * units[match.group(2)]


def load_dashboards(directory: Path) -> dict[str, dict[str, Any]]:
    """Every dashboard JSON in ``directory``, by uid."""
    dashboards = {}
    for path in sorted(directory.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        dashboards[dashboard["uid"]] = dashboard
    return dashboards


def panels(dashboard: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])
