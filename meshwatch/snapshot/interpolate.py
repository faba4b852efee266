"""What Grafana does to a panel query before sending it, and to a series name after.

Grafana replaces template variables with the dashboard's defaults on first
load ("All" is the variable's ``allValue``, ``.*`` in meshwatch's dashboards)
and its global variables with values derived from the time range and the
scrape interval; a snapshot must send the same PromQL, or it would draw
something the dashboard never shows. Legends follow ``legendFormat``
(``{{label}}`` templates, or Grafana's automatic naming for ``__auto``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_VARIABLE = re.compile(r"\$\{(?P<braced>\w+)(?::\w+)?\}|\[\[(?P<old>\w+)\]\]|\$(?P<plain>\w+)")
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def rate_interval(step: float, scrape_interval: float) -> float:
    """Grafana's ``$__rate_interval``: at least four scrapes, and one step plus a scrape."""
    return max(step + scrape_interval, 4 * scrape_interval)


def builtin_values(*, range_seconds: float, step: float, scrape_interval: float) -> dict[str, str]:
    """Grafana's global variables for a dashboard showing the last ``range_seconds``."""
    rate = rate_interval(step, scrape_interval)
    return {
        "__rate_interval": f"{rate:.0f}s",
        "__interval": f"{step:.0f}s",
        "__interval_ms": f"{step * 1000:.0f}",
        "__range": f"{range_seconds:.0f}s",
        "__range_s": f"{range_seconds:.0f}",
        "__range_ms": f"{range_seconds * 1000:.0f}",
    }


def default_values(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """Each template variable's value on first load."""
    values: dict[str, str] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        name = variable["name"]
        if variable.get("includeAll") and variable.get("allValue") is not None:
            values[name] = variable["allValue"]
        elif variable.get("type") == "datasource":
            values[name] = variable.get("query", "")
        else:
            values[name] = str(variable.get("current", {}).get("value", ""))
    return values


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with every ``$var``, ``${var}`` and ``[[var]]`` replaced from ``values``.

    ``KeyError`` for a variable the dashboard does not define (Grafana would
    send it as is, and Prometheus would refuse the query).
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("old") or match.group("plain")
        if name not in values:
            raise KeyError(f"undefined variable ${name}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def series_name(legend: str, labels: Mapping[str, str], expr: str) -> str:
    """The name Grafana gives a series: its ``legendFormat``, or automatic naming."""
    if legend and legend != "__auto":
        return _LEGEND.sub(lambda m: labels.get(m.group(1), ""), legend).strip() or expr
    name = labels.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    if not name and not rest:
        return expr
    return f"{name}{{{rest}}}" if rest else name
