"""Grafana dashboards as code, built with grafanalib from the metric catalogue and the settings.

>>> from meshwatch.settings import Settings
>>> from meshwatch.dashboards import render
>>> [f.path for f in render(Settings())]  # doctest: +NORMALIZE_WHITESPACE
['grafana/dashboards/meshwatch-governance.json', 'grafana/dashboards/meshwatch-work.json',
 'grafana/dashboards/meshwatch-sagas.json', 'grafana/dashboards/meshwatch-stack-health.json',
 'grafana/dashboards/meshwatch-llm.json', 'grafana/dashboards/meshwatch-slos.json']

Six dashboards, one module each (their docstrings say which questions they
answer): :mod:`~meshwatch.dashboards.governance` (the tutorial's agent governance
overview), :mod:`~meshwatch.dashboards.work`, :mod:`~meshwatch.dashboards.sagas`,
:mod:`~meshwatch.dashboards.stack_health`, :mod:`~meshwatch.dashboards.llm`
(LLM cost and tokens) and :mod:`~meshwatch.dashboards.slos`. Thresholds drawn on panels are
the alert thresholds from ``settings.alerts``, and panels link to the runbooks
of the alerts they show the signal of.

**Import form.** Each file is the dashboard model itself (a top-level object
with ``uid``, ``title``, ``panels``, ``templating`` and ``schemaVersion``) in
Grafana 11.6's schema (see :mod:`~meshwatch.dashboards.schema`), with no ``id``
and no ``__inputs`` section. Every panel names its datasource
through a datasource template variable (``${datasource}`` for Prometheus,
``${tempo}`` for Tempo) rather than a uid, so the same file is provisioned by
``make up`` and imported as is through Grafana's UI ("Import dashboard" asks
for nothing; Grafana selects the default datasource of each type, and the
variables switch between several).

For the exemplar dots on the governance latency panel to open traces, the
Prometheus datasource needs an exemplar trace-id destination pointing at
Tempo (``exemplarTraceIdDestinations``); for the service graph, the Tempo
datasource needs its ``serviceMap`` linked to the Prometheus datasource that
receives Tempo's metrics-generator series. The generated stack provisions both.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from grafanalib._gen import DashboardEncoder
from grafanalib.core import Dashboard

from meshwatch.dashboards import governance, llm, sagas, slos, stack_health, work
from meshwatch.dashboards.query_sources import (
    PanelQuery,
    check_metrics,
    metric_names,
    queries_of,
    source_of,
)
from meshwatch.dashboards.schema import to_schema
from meshwatch.generated import GeneratedFile
from meshwatch.settings import Settings

#: The dashboards, in the order they are rendered (an explicit list, not discovery).
BUILDERS: tuple[Callable[[Settings], Dashboard], ...] = (
    governance.build,
    work.build,
    sagas.build,
    stack_health.build,
    llm.build,
    slos.build,
)
OUTPUT_DIR = "grafana/dashboards"


def dashboard_models(settings: Settings) -> list[dict[str, Any]]:
    """The dashboards as plain JSON-ready dicts (what the files contain).

    Every dashboard passes through :func:`~meshwatch.dashboards.schema.to_schema`,
    so each file is Grafana's schema model (no ``__inputs``, none of grafanalib's
    legacy fields), whichever module built it.
    """
    return [model_of(build(settings)) for build in BUILDERS]


def model_of(dashboard: Dashboard) -> dict[str, Any]:
    """One grafanalib dashboard as the JSON model meshwatch writes (for dashboards of your own)."""
    return to_schema(json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder)))


def to_json(model: dict[str, Any]) -> str:
    """Deterministic JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(model, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def panel_queries(settings: Settings) -> list[PanelQuery]:
    """Every panel query of every dashboard: (uid, panel title, datasource, expr, sources).

    The integration tier runs each query with ``natively_checkable`` true
    against a live Prometheus scraping the demo; the others need Tempo.
    """
    return [query for model in dashboard_models(settings) for query in queries_of(model)]


def render(settings: Settings) -> list[GeneratedFile]:
    """``grafana/dashboards/<uid>.json`` for every dashboard.

    Raises ``ValueError`` if any panel reads a series that neither meshwatch,
    its recording rules nor the monitoring stack produces.
    """
    files = []
    for model in dashboard_models(settings):
        check_metrics(model)
        files.append(GeneratedFile(f"{OUTPUT_DIR}/{model['uid']}.json", to_json(model)))
    return files


__all__ = [
    "BUILDERS",
    "OUTPUT_DIR",
    "PanelQuery",
    "dashboard_models",
    "metric_names",
    "model_of",
    "panel_queries",
    "render",
    "source_of",
    "to_json",
]
