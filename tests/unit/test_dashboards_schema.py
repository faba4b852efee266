"""Every dashboard is Grafana's schema model as written: it round-trips through
grafana-foundation-sdk's dashboard types (the build for the Grafana version the stack
pins, a dev dependency) with no field dropped, added or changed.

The SDK's ``from_json`` keeps only the fields the schema declares (so a legacy field
is *dropped*), fills in every schema default that is absent (*added*), and fails on
a ``null`` where the schema wants an object. The round trip is run on every
dashboard in :data:`meshwatch.dashboards.BUILDERS`, so a dashboard added there is
checked without touching this file, and on a dashboard built the way a user would,
with meshwatch's panel helpers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard as SchemaDashboard
from grafanalib.core import DataLink, Text, TimeSeries

from meshwatch import dashboards
from meshwatch.alerts.catalogue import AGENT_TASK_DURATION_HIGH, AGENT_TASK_SUCCESS_RATE_LOW
from meshwatch.dashboards import model_of
from meshwatch.dashboards.common import (
    COUNT,
    PROMETHEUS,
    RATIO,
    SECONDS,
    Grid,
    agent_variable,
    alert_marks,
    bargauge,
    dashboard,
    datasource_variable,
    gauge,
    label_variable,
    piechart,
    prom,
    stat,
    table,
    textbox_variable,
    timeseries,
)
from meshwatch.dashboards.panels import ValueText
from meshwatch.dashboards.schema import SCHEMA_VERSION
from meshwatch.instrumentation.catalogue import TASKS_STARTED
from meshwatch.settings import Settings, settings_from_mapping

register_default_plugins()

# Fields grafanalib writes that Grafana's schema does not have (issue 17 lists them).
LEGACY_DASHBOARD_FIELDS = {"rows", "style", "hideControls", "sharedCrosshair", "gnetId"}
LEGACY_PANEL_FIELDS = {"span", "height", "minSpan", "error", "editable"}
LEGACY_VARIABLE_FIELDS = {"tagsQuery", "tagValuesQuery", "useTags"}
SETTINGS_VARIANTS = {
    "defaults": Settings(),
    "per-agent-labels": settings_from_mapping(
        {"dashboards": {"governance_per_agent_labels": True}}
    ),
    "renamed": settings_from_mapping(
        {"dashboards": {"uid_prefix": "acme", "title_prefix": "ACME", "timezone": "browser"}}
    ),
}


def round_trip(model: dict[str, Any]) -> dict[str, Any]:
    """``model`` parsed by the SDK's schema types and written back as JSON."""
    return json.loads(json.dumps(SchemaDashboard.from_json(model), cls=JSONEncoder))


def differences(ours: Any, theirs: Any, path: str = "") -> Iterator[str]:
    """Each field dropped, added or changed between two JSON values, by its path."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key in sorted(set(ours) | set(theirs)):
            where = f"{path}.{key}"
            if key not in theirs:
                yield f"dropped {where} = {json.dumps(ours[key])[:60]}"
            elif key not in ours:
                yield f"added {where} = {json.dumps(theirs[key])[:60]}"
            else:
                yield from differences(ours[key], theirs[key], where)
    elif isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            yield from differences(a, b, f"{path}[{i}]")
    elif ours != theirs or type(ours) is not type(theirs):
        yield f"changed {path}: {json.dumps(ours)[:60]} -> {json.dumps(theirs)[:60]}"


def nulls(value: Any, path: str = "") -> Iterator[str]:
    """Paths holding ``null``, except a threshold step's value (the schema's ``number | null``)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if item is None and not (key == "value" and ".steps[" in path):
                yield f"{path}.{key}"
            yield from nulls(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from nulls(item, f"{path}[{i}]")


def assert_schema_clean(model: dict[str, Any]) -> None:
    assert list(nulls(model)) == [], "null where the schema wants a value or an object"
    assert list(differences(model, round_trip(model))) == []


ALL_MODELS = [
    pytest.param(model, id=f"{variant}-{model['uid']}")
    for variant, settings in SETTINGS_VARIANTS.items()
    for model in dashboards.dashboard_models(settings)
]


@pytest.mark.parametrize("model", ALL_MODELS)
def test_every_dashboard_round_trips_through_the_schema_types(model: dict[str, Any]) -> None:
    assert_schema_clean(model)


def test_the_round_trip_covers_every_registered_dashboard() -> None:
    uids = {m["uid"] for m in dashboards.dashboard_models(Settings())}
    assert len(uids) == len(dashboards.BUILDERS)


def test_schema_version_is_the_pinned_grafanas() -> None:
    """What Grafana 11.6 writes, which is what its SDK build defaults to."""
    assert SchemaDashboard().schema_version == SCHEMA_VERSION
    assert {m["schemaVersion"] for m in dashboards.dashboard_models(Settings())} == {SCHEMA_VERSION}


def test_no_legacy_field_is_written() -> None:
    for model in dashboards.dashboard_models(Settings()):
        assert not LEGACY_DASHBOARD_FIELDS & set(model), model["uid"]
        assert "time_options" not in model["timepicker"]
        for panel in model["panels"]:
            assert not LEGACY_PANEL_FIELDS & set(panel), panel["title"]
            if panel["type"] == "row":
                assert not {"fieldConfig", "targets", "datasource"} & set(panel), panel["title"]
            legend = panel.get("options", {}).get("legend")
            if legend is not None:
                assert "showLegend" in legend, panel["title"]
        for variable in model["templating"]["list"]:
            assert not LEGACY_VARIABLE_FIELDS & set(variable), variable["name"]
            assert "tags" not in variable.get("current", {}), variable["name"]


def test_the_round_trip_catches_what_grafanalib_writes_unmended() -> None:
    """The check can fail: grafanalib's raw output is dropped from, added to and null-laden."""
    from grafanalib._gen import DashboardEncoder

    settings = Settings()
    built = dashboards.BUILDERS[0](settings)
    raw = json.loads(json.dumps(built.to_json_data(), cls=DashboardEncoder))
    with pytest.raises(TypeError):  # "datasource": null (rows, variables) is no DataSourceRef
        round_trip(raw)
    raw["panels"] = [p for p in raw["panels"] if p["datasource"] is not None]
    raw["templating"]["list"] = [v for v in raw["templating"]["list"] if v["datasource"]]
    found = list(differences(raw, round_trip(raw)))
    assert any(d.startswith("dropped .rows") for d in found)
    assert any(d.startswith("dropped .panels[0].span") for d in found)
    assert any(d.startswith("added .panels[0].options.legend.showLegend") for d in found)


def _user_dashboard(settings: Settings) -> dict[str, Any]:
    """A dashboard of the user's own, made with every meshwatch panel helper and variable."""
    grid = Grid().row("Mine")
    grid.add(
        timeseries(
            "Tasks",
            "Task starts per second.",
            [prom(f"sum(rate({TASKS_STARTED.name}[$__rate_interval]))", "tasks")],
            unit="ops",
            **alert_marks(settings, AGENT_TASK_DURATION_HIGH),
            stack=True,
        ),
        w=12,
        h=8,
    )
    grid.add(stat("Started", "Tasks started.", [prom("vector(1)", "x")], unit=COUNT), w=6, h=8)
    grid.add(
        gauge(
            "Success",
            "Share succeeding.",
            [prom("vector(0.9)", "x", instant=True)],
            unit=RATIO,
            steps=alert_marks(settings, AGENT_TASK_SUCCESS_RATE_LOW)["steps"],
            links=[DataLink(title="Runbook", linkUrl="https://rb.example/x")],
            min_value=0,
            max_value=1,
        ),
        w=6,
        h=8,
    )
    grid.row("More")
    grid.add(
        table(
            "Agents",
            "One row per agent.",
            [prom("vector(1)", table=True)],
            unit=COUNT,
            mappings=[ValueText("1", "one", color="green")],
            rename={"Value": "N"},
            sort_by="N",
            data_links=[DataLink(title="open", linkUrl="/d/x?var-a=${__data.fields.N}")],
        ),
        w=8,
        h=8,
    )
    grid.add(
        bargauge("Bars", "Bars.", [prom("vector(2)", "b", instant=True)], unit=SECONDS), w=8, h=8
    )
    grid.add(piechart("Shares", "Shares.", [prom("vector(3)", "c")], unit=COUNT), w=8, h=8)
    return model_of(
        dashboard(
            settings,
            slug="mine",
            title="Mine",
            description="A user's dashboard.",
            tags=["mine"],
            grid=grid,
            variables=[
                datasource_variable(),
                agent_variable(TASKS_STARTED),
                label_variable("job", "Job", "up", "job"),
                textbox_variable("trace_id", "Trace"),
            ],
        )
    )


def test_a_dashboard_built_with_the_panel_helpers_round_trips() -> None:
    model = _user_dashboard(Settings())
    assert {p["type"] for p in model["panels"]} == {
        "row",
        "timeseries",
        "stat",
        "gauge",
        "table",
        "bargauge",
        "piechart",
    }
    assert_schema_clean(model)


def test_grafanalib_panels_used_directly_are_made_clean_too() -> None:
    """model_of() cleans whatever grafanalib writes, not only meshwatch's own helpers."""
    grid = Grid().row("Plain grafanalib")
    grid.add(TimeSeries(title="ts", dataSource=PROMETHEUS, unit="s"), w=12, h=8)
    grid.add(Text(title="note", content="hello"), w=12, h=8)
    model = model_of(
        dashboard(
            Settings(),
            slug="plain",
            title="Plain",
            description="grafanalib panels as they come.",
            tags=[],
            grid=grid,
            variables=[datasource_variable()],
        )
    )
    assert_schema_clean(model)
