"""grafanalib's JSON, made the dashboard model Grafana 11.6 reads and writes (schemaVersion 41).

grafanalib stays the authoring library, but it still serialises the Grafana 5-era
model around the modern panels: a top-level ``rows``, ``style``, ``hideControls``,
``sharedCrosshair`` and ``gnetId``; panel ``span``, ``height``, ``minSpan``,
``error`` and ``editable``; rows carrying ``fieldConfig``, ``targets`` and
``"datasource": null``; variables with ``tagsQuery``, ``tagValuesQuery``,
``useTags`` and ``current.tags``; ``timepicker.time_options``; and ``null`` for
every unset optional field. Grafana's schema has no such fields, and a ``null``
where it wants an object (a row's or a variable's datasource) is a parse error
for its schema types.

:func:`to_schema` is the one place that turns grafanalib's output into the
schema's model, so every dashboard rendered through
:func:`meshwatch.dashboards.dashboard_models` is clean, whoever wrote it:

* fields the schema does not have are dropped (the tables below, by object kind);
* ``null`` means "unset" and the field is left out, except a threshold step's
  ``value``, which the schema types as ``number | null`` (the base step);
* fields the schema gives a default are written with that default when absent,
  so the file is exactly what Grafana's schema types read back
  (``tests/unit/test_dashboards_schema.py`` round-trips every dashboard through
  grafana-foundation-sdk's model and requires no field dropped, added or changed);
* a legend without ``showLegend`` gets it (true unless its display mode is
  ``hidden``): the schema's default is false, so such a legend would vanish.

``auto``, ``auto_min`` and ``auto_count`` stay on every variable: the schema's
``VariableModel`` declares them, with these defaults, for variables of every type,
so leaving them out would have them added back by any schema-typed reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

JSON = dict[str, Any]

#: What Grafana 11.6 writes (and the schema version grafana-foundation-sdk 11.6 defaults to).
#: Newer Grafana (12, 13) migrates a dashboard of this version on load.
SCHEMA_VERSION = 41

_DASHBOARD_LEGACY = ("__inputs", "gnetId", "hideControls", "rows", "sharedCrosshair", "style")
_DASHBOARD_DEFAULTS: Mapping[str, Any] = {"fiscalYearStartMonth": 0}
_PANEL_LEGACY = ("editable", "error", "height", "minSpan", "span")
_PANEL_DEFAULTS: Mapping[str, Any] = {"repeatDirection": "h", "transparent": False}
# A row header has only these fields; its panels hold the queries and field config.
_ROW_FIELDS = frozenset({"collapsed", "datasource", "gridPos", "id", "panels", "repeat", "title"})
_VARIABLE_LEGACY = ("tagValuesQuery", "tagsQuery", "useTags")
_VARIABLE_DEFAULTS: Mapping[str, Any] = {"allowCustomValue": True, "skipUrlSync": False}
_TIMEPICKER_LEGACY = ("time_options",)
# Data links in fieldConfig share the dashboard link type of the schema.
_FIELD_LINK_DEFAULTS: Mapping[str, Any] = {
    "asDropdown": False,
    "icon": "",
    "includeVars": False,
    "keepTime": False,
    "tags": [],
    "targetBlank": False,
    "tooltip": "",
    "type": "link",
}
# Panel options the panel plugin's schema defaults, by panel type.
_OPTION_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "stat": {"percentChangeColorMode": "standard", "showPercentChange": False, "wideLayout": True},
    "table": {"frameIndex": 0, "showTypeIcons": False},
    "piechart": {"orientation": "auto"},
}


def _without_nulls(value: Any, *, step: bool = False) -> Any:
    """``value`` with every ``null`` field left out; a threshold ``step`` keeps its null base."""
    if isinstance(value, dict):
        return {
            key: _without_nulls(item, step=key == "steps")
            for key, item in value.items()
            if item is not None or (step and key == "value")
        }
    if isinstance(value, list):
        return [_without_nulls(item, step=step) for item in value]
    return value


def _drop(obj: JSON, keys: tuple[str, ...]) -> None:
    for key in keys:
        obj.pop(key, None)


def _defaults(obj: JSON, defaults: Mapping[str, Any]) -> None:
    for key, value in defaults.items():
        obj.setdefault(key, value)


def _row(panel: JSON) -> JSON:
    return {"type": "row", **{k: v for k, v in panel.items() if k in _ROW_FIELDS}}


def _panel(panel: JSON) -> JSON:
    if panel.get("type") == "row":
        return _row(panel)
    _drop(panel, _PANEL_LEGACY)
    _defaults(panel, _PANEL_DEFAULTS)
    options = panel.get("options")
    if isinstance(options, dict):
        _defaults(options, _OPTION_DEFAULTS.get(panel.get("type", ""), {}))
        legend = options.get("legend")
        if isinstance(legend, dict):
            legend.setdefault("showLegend", legend.get("displayMode") != "hidden")
            legend.setdefault("calcs", [])
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    for link in defaults.get("links", ()):
        _defaults(link, _FIELD_LINK_DEFAULTS)
    if "fieldConfig" in panel:
        panel["fieldConfig"].setdefault("overrides", [])
    return panel


def _variable(variable: JSON) -> JSON:
    _drop(variable, _VARIABLE_LEGACY)
    _defaults(variable, _VARIABLE_DEFAULTS)
    current = variable.get("current")
    if isinstance(current, dict):
        current.pop("tags", None)
        # An empty selection is no selection: Grafana picks the default (a datasource variable).
        if "text" not in current and "value" not in current:
            del variable["current"]
    return variable


def to_schema(model: Mapping[str, Any]) -> JSON:
    """The dashboard model in Grafana's schema, from grafanalib's ``to_json_data()`` output.

    ``model`` is plain JSON (dicts, lists, scalars); the result is a new dict.
    """
    clean: JSON = _without_nulls(dict(model))
    _drop(clean, _DASHBOARD_LEGACY)
    _defaults(clean, _DASHBOARD_DEFAULTS)
    clean["schemaVersion"] = SCHEMA_VERSION
    clean["panels"] = [_panel(panel) for panel in clean.get("panels", [])]
    templating = clean.get("templating", {})
    templating["list"] = [_variable(v) for v in templating.get("list", [])]
    _drop(clean.get("timepicker", {}), _TIMEPICKER_LEGACY)
    return clean
