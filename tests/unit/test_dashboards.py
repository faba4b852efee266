"""Dashboards: golden files, deterministic output, the grid, and the conventions every panel keeps.

Golden files live in ``tests/unit/golden/dashboards/<uid>.json``. After an
intended change to a dashboard, regenerate them and review the diff::

    MESHWATCH_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_dashboards.py -k golden
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshwatch import dashboards
from meshwatch.alerts.catalogue import ALERT_CATALOGUE, ALERT_NAMES
from meshwatch.alerts.slos import SLO_ALERT
from meshwatch.dashboards import governance, sagas, stack_health, work
from meshwatch.dashboards.common import GRID_COLUMNS, Grid
from meshwatch.dashboards.panels import ThresholdStep
from meshwatch.dashboards.schema import SCHEMA_VERSION
from meshwatch.settings import Settings, ThresholdAlert, settings_from_mapping

GOLDEN_DIR = Path(__file__).parent / "golden" / "dashboards"
UPDATE_GOLDEN = os.environ.get("MESHWATCH_UPDATE_GOLDEN") == "1"
EXPECTED_UIDS = [
    "meshwatch-governance",
    "meshwatch-work",
    "meshwatch-sagas",
    "meshwatch-stack-health",
    "meshwatch-llm",
    "meshwatch-slos",
]
# Panels that draw field values; the others (row headers, the alert list, the
# trace view, the node graph) have no field unit or thresholds that apply.
FIELD_PANELS = {"timeseries", "stat", "table", "piechart", "gauge", "bargauge", "histogram"}
MODERN_PANELS = FIELD_PANELS | {"traces", "nodeGraph", "alertlist", "row"}
# Grafana's own variables; anything else a panel references must be a dashboard variable.
GRAFANA_GLOBALS = {"__rate_interval", "__range", "__interval", "__dashboard", "__url_time_range"}
GRAFANA_GLOBALS |= {"__data", "__value", "__all"}


def _models(settings: Settings | None = None) -> list[dict[str, Any]]:
    return dashboards.dashboard_models(settings or Settings())


def _panels(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from model["panels"]


def _content(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The panels below the row headers (a row header has no queries, links or field config)."""
    return (p for p in _panels(model) if p["type"] != "row")


MODELS = _models()


@pytest.fixture(params=MODELS, ids=lambda m: m["uid"])
def model(request: pytest.FixtureRequest) -> dict[str, Any]:
    return request.param


# --- golden files and determinism ------------------------------------------------


@pytest.mark.parametrize("generated", dashboards.render(Settings()), ids=lambda f: f.path)
def test_golden_file(generated) -> None:
    golden = GOLDEN_DIR / Path(generated.path).name
    if UPDATE_GOLDEN:
        GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
        golden.write_text(generated.content, encoding="utf-8")
    assert golden.is_file(), f"no golden file {golden.name}: run with MESHWATCH_UPDATE_GOLDEN=1"
    assert generated.content == golden.read_text(encoding="utf-8"), (
        f"{generated.path} differs from its golden file; if the change is intended, "
        "regenerate with MESHWATCH_UPDATE_GOLDEN=1 and review the diff"
    )


def test_no_stale_golden_files() -> None:
    rendered = {Path(f.path).name for f in dashboards.render(Settings())}
    assert {p.name for p in GOLDEN_DIR.glob("*.json")} == rendered


def test_rendering_twice_gives_identical_bytes() -> None:
    first = dashboards.render(Settings())
    second = dashboards.render(Settings())
    assert [(f.path, f.content) for f in first] == [(f.path, f.content) for f in second]


def test_output_is_sorted_indented_json_with_a_trailing_newline() -> None:
    for generated in dashboards.render(Settings()):
        data = json.loads(generated.content)
        assert generated.content == json.dumps(data, sort_keys=True, indent=2) + "\n"


def test_files_are_named_by_uid_under_grafana_dashboards() -> None:
    files = dashboards.render(Settings())
    assert [f.path for f in files] == [f"grafana/dashboards/{uid}.json" for uid in EXPECTED_UIDS]
    for f in files:
        assert json.loads(f.content)["uid"] == Path(f.path).stem


# --- uids, import form and variables ------------------------------------------------


def test_uids_are_stable_and_valid_grafana_uids() -> None:
    uids = [m["uid"] for m in MODELS]
    assert uids == EXPECTED_UIDS
    for uid in uids:
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", uid)


def test_uid_and_title_prefixes_come_from_the_settings() -> None:
    settings = settings_from_mapping(
        {"dashboards": {"uid_prefix": "acme-agents", "title_prefix": "ACME"}}
    )
    models = _models(settings)
    assert [m["uid"] for m in models] == [
        uid.replace("meshwatch", "acme-agents", 1) for uid in EXPECTED_UIDS
    ]
    assert all(m["title"].startswith("ACME / ") for m in models)


def test_time_refresh_and_timezone_come_from_the_settings() -> None:
    settings = settings_from_mapping(
        {"dashboards": {"refresh": "1m", "time_from": "now-6h", "timezone": "browser"}}
    )
    for m in _models(settings):
        assert m["refresh"] == "1m"
        assert m["time"] == {"from": "now-6h", "to": "now"}
        assert m["timezone"] == "browser"


def test_model_imports_as_is(model: dict[str, Any]) -> None:
    """The file is the dashboard itself: no inputs to fill, no id to clash, the pinned schema."""
    assert "id" not in model
    assert "__inputs" not in model
    assert model["schemaVersion"] == SCHEMA_VERSION
    assert model["title"] and model["uid"] and model["panels"]
    assert "meshwatch" in model["tags"]
    assert "${DS_" not in json.dumps(model), "datasources are variables, not import inputs"


def test_datasource_variables(model: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    uses_tempo = any(
        p.get("datasource", {}) == {"type": "tempo", "uid": "${tempo}"} for p in _panels(model)
    )
    if uses_tempo:
        assert variables["tempo"]["type"] == "datasource"
        assert variables["tempo"]["query"] == "tempo"
    else:
        assert "tempo" not in variables


def test_agent_variable_lists_agents_from_a_catalogue_metric(model: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in model["templating"]["list"]}
    if model["uid"].endswith(("stack-health", "slos")):  # the stack; fleet-wide SLOs
        assert "agent" not in variables
        return
    agent = variables["agent"]
    match = re.fullmatch(r"label_values\((\w+), (\w+)\)", agent["query"])
    assert match, agent["query"]
    from meshwatch.instrumentation.catalogue import CATALOGUE

    assert match.group(2) in CATALOGUE.get(match.group(1)).labels
    assert agent["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert agent["includeAll"] and agent["multi"] and agent["allValue"] == ".*"


def test_every_referenced_variable_is_defined(model: dict[str, Any]) -> None:
    defined = {v["name"] for v in model["templating"]["list"]}
    text = json.dumps(model["panels"])
    used = set(re.findall(r"\$\{?([A-Za-z_]\w*)", text))
    assert used - defined - GRAFANA_GLOBALS == set()


# --- the grid ------------------------------------------------------------------------


def test_panels_fit_the_grid_without_overlapping(model: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in _panels(model):
        pos = panel["gridPos"]
        assert pos["w"] >= 1 and pos["h"] >= 1
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= GRID_COLUMNS, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_panel_ids_are_unique_and_in_reading_order(model: dict[str, Any]) -> None:
    panels = list(_panels(model))
    assert [p["id"] for p in panels] == list(range(1, len(panels) + 1))
    positions = [(p["gridPos"]["y"], p["gridPos"]["x"]) for p in panels]
    assert positions == sorted(positions)


def test_grid_wraps_a_panel_that_does_not_fit_below_the_tallest_of_the_line() -> None:
    from grafanalib.core import Text

    grid = Grid().add(Text(title="a"), w=16, h=4).add(Text(title="b"), w=8, h=9)
    grid.add(Text(title="c"), w=12, h=2)
    grid.row("r")
    grid.add(Text(title="d"), w=24, h=3)
    placed = [(p.title, p.id, p.gridPos.to_json_data()) for p in grid.panels()]
    assert placed == [
        ("a", 1, {"h": 4, "w": 16, "x": 0, "y": 0}),
        ("b", 2, {"h": 9, "w": 8, "x": 16, "y": 0}),
        ("c", 3, {"h": 2, "w": 12, "x": 0, "y": 9}),
        ("r", 4, {"h": 1, "w": 24, "x": 0, "y": 11}),
        ("d", 5, {"h": 3, "w": 24, "x": 0, "y": 12}),
    ]


@pytest.mark.parametrize(("w", "h"), [(0, 4), (25, 4), (6, 0)])
def test_grid_rejects_impossible_sizes(w: int, h: int) -> None:
    from grafanalib.core import Text

    with pytest.raises(ValueError, match="width must be"):
        Grid().add(Text(title="x"), w=w, h=h)


# --- panel conventions -------------------------------------------------------------------


def test_only_modern_panel_types(model: dict[str, Any]) -> None:
    assert {p["type"] for p in _panels(model)} <= MODERN_PANELS


def test_every_query_panel_reads_its_datasource_from_a_variable(model: dict[str, Any]) -> None:
    refs = ({"type": "prometheus", "uid": "${datasource}"}, {"type": "tempo", "uid": "${tempo}"})
    for panel in _panels(model):
        if panel["type"] in ("row", "alertlist"):
            assert panel.get("targets", []) == [], "rows and the alert list run no query"
            continue
        assert panel["datasource"] in refs, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]
        assert [t["refId"] for t in panel["targets"]] == [
            chr(ord("A") + i) for i in range(len(panel["targets"]))
        ]


def test_every_field_panel_has_a_unit_and_thresholds(model: dict[str, Any]) -> None:
    for panel in _panels(model):
        if panel["type"] not in FIELD_PANELS:
            continue
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults["unit"], f"{panel['title']!r} has no unit"
        steps = defaults["thresholds"]["steps"]
        assert defaults["thresholds"]["mode"] == "absolute"
        assert steps and steps[0]["value"] is None, f"{panel['title']!r}: base step first"
        values = [s["value"] for s in steps[1:]]
        assert values == sorted(values), f"{panel['title']!r}: steps must ascend"


def test_node_graph_states_its_units() -> None:
    (graph,) = [p for m in MODELS for p in _panels(m) if p["type"] == "nodeGraph"]
    assert graph["options"]["nodes"]["mainStatUnit"] and graph["options"]["edges"]["mainStatUnit"]
    assert graph["targets"][0]["queryType"] == "serviceMap"


def test_every_panel_has_a_title_and_a_description(model: dict[str, Any]) -> None:
    titles = []
    for panel in _panels(model):
        assert panel["title"]
        if panel["type"] != "row":
            assert panel["description"], panel["title"]
            titles.append(panel["title"])
    assert len(titles) == len(set(titles)), "panel titles identify panels in panel_queries"


def test_rate_windows_follow_the_query_resolution(model: dict[str, Any]) -> None:
    """Raw rates use $__rate_interval; only whole-range totals use $__range."""
    for panel in _content(model):
        for target in panel["targets"]:
            expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', target.get("expr", ""))
            for window in re.findall(r"\[([^\]]+)\]", expr):
                assert window in ("$__rate_interval", "$__range"), (panel["title"], window)


def test_governance_latency_asks_for_exemplars() -> None:
    (panel,) = [p for p in _panels(MODELS[0]) if p["title"] == "Governance evaluation latency"]
    assert [t["legendFormat"] for t in panel["targets"]] == ["p50", "p95", "p99"]
    assert any(t["exemplar"] for t in panel["targets"])
    assert all("_bucket" in t["expr"] for t in panel["targets"]), "exemplars live on raw buckets"


def test_governance_follows_the_tutorial_layout() -> None:
    types = {p["title"]: p["type"] for p in _panels(MODELS[0])}
    assert types["Ring transitions by type"] == "timeseries"
    assert types["Ring breach rate (worst agent)"] == "stat"
    assert types["Current ring per agent"] == "table"
    assert types["Policy decisions: allowed vs blocked"] == "piechart"
    assert types["Trust scores"] == "gauge"
    assert types["Saga span timeline"] == "traces"
    assert types["Firing alerts"] == "alertlist"


def test_saga_timeline_is_driven_by_a_traceql_search() -> None:
    for m in (MODELS[0], MODELS[2]):
        panels = {p["title"]: p for p in _panels(m)}
        search = panels["Saga traces"]["targets"][0]
        assert search["queryType"] == "traceql"
        assert 'name =~ "saga[.].*"' in search["query"]
        link = panels["Saga traces"]["fieldConfig"]["defaults"]["links"][0]["url"]
        assert "var-trace_id=${__data.fields.traceID}" in link
        assert panels["Saga span timeline"]["targets"][0]["query"] == "${trace_id}"


def test_alert_list_shows_firing_alerts_from_unified_alerting() -> None:
    (panel,) = [p for p in _panels(MODELS[0]) if p["type"] == "alertlist"]
    state = panel["options"]["stateFilter"]
    assert state["firing"] and not state["normal"]
    assert panel["options"]["viewMode"] == "list"


# --- thresholds and runbooks come from the alert settings -------------------------------


def _links(model: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    for panel in _content(model):
        for link in panel["links"]:
            yield panel, link["url"]


def test_runbook_links_name_real_alerts_and_use_the_settings_url(model: dict[str, Any]) -> None:
    settings = Settings()
    for panel, url in _links(model):
        name = Path(url).stem
        assert name in ALERT_NAMES, f"{panel['title']!r} links an unknown alert {name!r}"
        assert url == settings.alerts.runbook_url(name)


def test_every_alert_has_a_panel_linking_its_runbook() -> None:
    linked = {Path(url).stem for m in MODELS for _, url in _links(m)}
    assert linked == set(ALERT_NAMES)


def test_runbook_base_url_comes_from_the_settings() -> None:
    settings = settings_from_mapping({"alerts": {"runbook_base_url": "https://rb.example/x"}})
    urls = {url for m in _models(settings) for _, url in _links(m)}
    assert urls and all(u.startswith("https://rb.example/x/") for u in urls)


# Thresholds nobody would choose, so a match cannot be a coincidence.
ODD = {
    "ring_breach_rate": {"threshold": 0.137, "critical_threshold": 0.911},
    "elevation_too_long": {"threshold": 123.0},
    "governance_latency_high": {"threshold": 0.0421},
    "governance_denial_ratio": {"threshold": 0.377},
    "rate_limit_surge": {"threshold": 2.71},
    "trust_score_low": {"threshold": 417.0},
    "saga_failure_ratio": {"threshold": 0.0613},
    "saga_compensation_rate": {"threshold": 0.0291},
    "task_error_rate": {"threshold": 0.0717, "critical_threshold": 0.333},
    "task_success_rate_low": {"threshold": 0.871},
    "task_duration_p95_high": {"threshold": 41.5},
    "queue_backlog_growing": {"threshold": 77.0},
    "task_rate_anomaly": {"z_score": 2.3},
}


def test_panels_draw_the_thresholds_of_the_alerts_they_link() -> None:
    """Every threshold alert has a panel that links its runbook and draws its threshold."""
    settings = settings_from_mapping({"alerts": ODD})
    drawn = set()
    for m in _models(settings):
        for panel in _content(m):
            steps = [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]
            for link in panel["links"]:
                name = Path(link["url"]).stem
                if name == SLO_ALERT:  # its factors: test_the_burn_rate_panels_draw_every_factor...
                    continue
                entry = getattr(settings.alerts, ALERT_CATALOGUE.get(name).key)
                if isinstance(entry, ThresholdAlert) and entry.threshold in steps:
                    if entry.critical_threshold is not None:
                        assert entry.critical_threshold in steps, (panel["title"], name)
                    drawn.add(name)
    threshold_alerts = {
        name
        for name, key in ((a.name, a.key) for a in ALERT_CATALOGUE)
        if isinstance(getattr(settings.alerts, key), ThresholdAlert)
    }
    assert drawn == threshold_alerts


def test_the_burn_rate_panels_draw_every_factor_of_the_settings() -> None:
    pairs = [
        {"factor": 9.5, "long_window": "2h", "short_window": "10m", "severity": "critical"},
        {"factor": 1.5, "long_window": "2d", "short_window": "4h", "severity": "warning"},
    ]
    settings = settings_from_mapping({"slos": {"burn_rate_alerts": pairs}})
    slo_model = _models(settings)[EXPECTED_UIDS.index("meshwatch-slos")]
    burns = [p for p in _panels(slo_model) if p["title"].endswith("burn rate per window")]
    assert [p["title"].split(":")[0] for p in burns] == ["governance-latency", "task-success"]
    for panel in burns:
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert [(s["color"], s["value"]) for s in steps] == [
            ("green", None),
            ("orange", 1.5),
            ("red", 9.5),
        ]
        legends = [t["legendFormat"] for t in panel["targets"]]
        assert legends == ["10m", "2h", "4h", "2d"]
        assert all(Path(link["url"]).stem == SLO_ALERT for link in panel["links"])


def test_the_slo_dashboard_has_a_row_per_slo_and_none_without_slos() -> None:
    settings = settings_from_mapping({"slos": {"objectives": []}})
    slo_model = _models(settings)[EXPECTED_UIDS.index("meshwatch-slos")]
    assert slo_model["panels"] == []


def test_the_anomaly_panel_draws_plus_and_minus_z() -> None:
    settings = settings_from_mapping({"alerts": ODD})
    z = settings.alerts.task_rate_anomaly.z_score
    work_model = _models(settings)[EXPECTED_UIDS.index("meshwatch-work")]
    (panel,) = [p for p in _panels(work_model) if "z-score" in p["title"]]
    steps = [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert steps == [None, -z, z]


def test_threshold_step_json_has_a_null_base() -> None:
    assert ThresholdStep("green").to_json_data() == {"color": "green", "value": None}
    assert ThresholdStep("red", 2).to_json_data() == {"color": "red", "value": 2}


# --- dashboards document the questions they answer --------------------------------------


@pytest.mark.parametrize(
    "module", [governance, work, sagas, stack_health], ids=lambda m: m.__name__
)
def test_each_dashboard_says_which_questions_it_answers(module) -> None:
    doc = module.__doc__ or ""
    assert "Questions it answers:" in doc
    assert doc.count("* ") >= 4


def test_value_panels_keep_options_where_grafana_reads_them(model: dict[str, Any]) -> None:
    """Guards the fixes over grafanalib's gauge, bar gauge and table (see panels.py)."""
    for panel in _content(model):
        if panel["type"] in ("stat", "gauge", "bargauge", "piechart"):
            assert panel["options"]["reduceOptions"]["calcs"], panel["title"]
            assert "fieldOptions" not in panel["options"], panel["title"]
            assert "calcs" not in panel["fieldConfig"]["defaults"], panel["title"]
        if panel["type"] == "table":
            assert "mappings" not in panel, "Grafana 8+ reads mappings from fieldConfig.defaults"
        for target in panel["targets"]:
            assert "intervalFactor" not in target, panel["title"]


def test_a_forecast_alert_has_no_threshold_of_its_own_to_draw() -> None:
    from meshwatch.alerts.catalogue import GOVERNANCE_LATENCY_PREDICTED_HIGH
    from meshwatch.dashboards.common import alert_steps

    with pytest.raises(ValueError, match="draw that alert's steps"):
        alert_steps(Settings(), GOVERNANCE_LATENCY_PREDICTED_HIGH)


def test_a_floor_alert_with_a_critical_tier_draws_both_levels() -> None:
    """Below its floor the panel is orange, below the critical level red, above it green."""
    from meshwatch.alerts.catalogue import TRUST_SCORE_LOW
    from meshwatch.dashboards.common import alert_marks

    settings = settings_from_mapping(
        {"alerts": {"trust_score_low": {"threshold": 400, "critical_threshold": 150}}}
    )
    marks = alert_marks(settings, TRUST_SCORE_LOW)
    steps = [(s.color, s.value) for s in marks["steps"]]
    assert steps == [("red", None), ("orange", 150.0), ("green", 400.0)]
    assert [link.linkUrl for link in marks["links"]] == [
        settings.alerts.runbook_url(TRUST_SCORE_LOW.name)
    ]


@pytest.mark.parametrize("per_agent", [False, True], ids=["fleet-labels", "per-agent-labels"])
def test_governance_agent_filter_follows_the_per_agent_label_setting(per_agent: bool) -> None:
    """Decision and latency panels filter on agent_id only when agents emit it.

    Trust scores always carry agent_id, so that gauge always filters.
    """
    from meshwatch.dashboards import panel_queries
    from meshwatch.instrumentation.catalogue import (
        GOVERNANCE_DECISIONS,
        GOVERNANCE_LATENCY,
        GOVERNANCE_TRUST_SCORE,
    )
    from meshwatch.settings import settings_from_mapping

    settings = settings_from_mapping({"dashboards": {"governance_per_agent_labels": per_agent}})
    exprs = [
        q.expr for q in panel_queries(settings) if q.dashboard_uid.endswith("governance") and q.expr
    ]
    optional = [e for e in exprs if GOVERNANCE_DECISIONS.name in e or GOVERNANCE_LATENCY.name in e]
    trust = [e for e in exprs if GOVERNANCE_TRUST_SCORE.name in e]
    assert optional and trust
    assert all(('agent_id=~"$agent"' in e) == per_agent for e in optional)
    assert all('agent_id=~"$agent"' in e for e in trust)
