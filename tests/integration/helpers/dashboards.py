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

_VARIABLE = re.compile(r"\$\{(?P<braced>\w+)(?::\w+)?\}|\[\[(?P<old>\w+)\]\]|\$(?P<plain>\w+)")


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


def default_values(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """Each template variable's value on first load (what "All" or the default expands to)."""
    values: dict[str, str] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        name = variable["name"]
        if variable.get("includeAll") and variable.get("allValue") is not None:
            values[name] = variable["allValue"]
        elif variable.get("type") == "datasource":
            # Datasource variables select where a query goes; they never appear in PromQL.
            values[name] = variable.get("query", "")
        else:
            current = variable.get("current") or {}
            values[name] = str(current.get("value", variable.get("query", "")))
    return values


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with every ``$var``, ``${var}`` and ``[[var]]`` replaced from ``values``.

    An unknown variable raises ``KeyError``: a query that names a variable the
    dashboard does not define shows "No data" in Grafana, which is a bug.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("old") or match.group("plain")
        if name not in values:
            raise KeyError(f"query {expr!r} uses undefined variable ${name}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


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
