"""Every Prometheus panel query of the generated dashboards, run against a Prometheus API.

Shared by the chain test (the stack's own Prometheus) and the remote-write
test (a receiver that holds only what the stack wrote to it, the "global
view"): the same queries, with the dashboards' defaults substituted as
Grafana would, must all return data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from meshwatch.dashboards import queries_of
from meshwatch.dashboards.query_sources import TEMPO_SOURCES
from tests.integration.helpers.dashboards import (
    builtin_values,
    default_values,
    load_dashboards,
    panels,
    substitute,
)
from tests.integration.helpers.poll import WaitTimeout, wait_until
from tests.integration.helpers.prom import PrometheusAPI

# Grafana's $__rate_interval for a 1 s scrape interval is a few seconds; a wider
# window is what the panel shows when zoomed out, and it is never emptier.
PANEL_RATE_INTERVAL = "1m"
PANEL_RANGE_SECONDS = 3600


def recording_rule_queries(prometheus: PrometheusAPI) -> dict[str, str]:
    """Each loaded recording rule's name and expression."""
    return {
        rule["name"]: rule["query"]
        for group in prometheus.rule_groups()
        for rule in group["rules"]
        if rule["type"] == "recording"
    }


def _reads(query: str, series: str) -> bool:
    """Whether ``query`` selects ``series`` (a whole metric name, not part of a longer one)."""
    return re.search(rf"(?<![\w:]){re.escape(series)}(?![\w:])", query) is not None


def history_bound(rules: dict[str, str]) -> dict[str, set[str]]:
    """Rules reading ``offset D``, with their offsets: no data before the stack is ``D`` old.

    A rule reading such a rule is bound by the same offsets (a ratio over a
    baseline), so the search repeats until no rule is added.
    """
    bound = {
        name: offsets
        for name, query in rules.items()
        if (offsets := set(re.findall(r"\boffset\s+(\w+)", query)))
    }
    while True:
        added = {
            name: set().union(*(offsets for b, offsets in bound.items() if _reads(query, b)))
            for name, query in rules.items()
            if name not in bound and any(_reads(query, b) for b in bound)
        }
        if not added:
            return bound
        bound.update(added)


@dataclass(frozen=True)
class PanelQueries:
    """``checkable``: (label, substituted expression); ``not_checkable``: why the rest are not."""

    checkable: list[tuple[str, str]]
    not_checkable: list[str]


def panel_queries(dashboards_dir: Path, rules: dict[str, str]) -> PanelQueries:
    """The queries a Prometheus can answer, given the stack's recording ``rules``.

    Panels only Tempo or Grafana can feed (trace search, service graph, alert
    list) and queries of rules that need more history than the stack has are
    set apart, with the reason.
    """
    dashboards = load_dashboards(dashboards_dir)
    assert dashboards, "the stack generated no dashboards"
    needs_history = history_bound(rules)
    checkable: list[tuple[str, str]] = []
    not_checkable: list[str] = []
    for uid, model in dashboards.items():
        values = default_values(model) | builtin_values(
            rate_interval=PANEL_RATE_INTERVAL, range_seconds=PANEL_RANGE_SECONDS
        )
        for query in queries_of(model):
            label = f"{uid} / {query.panel_title} [{query.ref_id}]"
            too_young = sorted(query.metrics & set(needs_history))
            if query.datasource == "tempo":
                not_checkable.append(f"{label} (a Tempo {query.query_type} query)")
            elif not query.natively_checkable:
                sources = ", ".join(sorted(query.sources & TEMPO_SOURCES))
                not_checkable.append(f"{label} (reads series from {sources})")
            elif too_young:
                not_checkable.append(f"{label} (reads {', '.join(too_young)}: needs history)")
            else:
                checkable.append((label, substitute(query.expr, values)))
        not_checkable.extend(
            f"{uid} / {panel['title']} (Grafana-only: {panel['type']})"
            for panel in panels(model)
            if panel["type"] != "row" and not panel.get("targets")
        )
    return PanelQueries(checkable, sorted(not_checkable))


def empty_panels(prometheus: PrometheusAPI, queries: PanelQueries, *, timeout: float) -> list[str]:
    """The checkable queries still without data at ``prometheus`` after ``timeout`` seconds."""

    def empty() -> list[str]:
        return [
            f"{label}: {expr}" for label, expr in queries.checkable if not prometheus.query(expr)
        ]

    try:
        wait_until(lambda: not empty(), timeout=timeout, what="data for every panel")
    except WaitTimeout:
        return empty()
    return []
