"""``meshwatch snapshot``: what it sends, how it draws, and how it refuses bad input.

The end-to-end run against a live Prometheus scraping the demo is in
``tests/integration/test_snapshot.py``; here each step is checked on its own,
with panel data built in the test.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from meshwatch import dashboards
from meshwatch.cli import main
from meshwatch.settings import Settings
from meshwatch.snapshot.collect import PanelData, TargetData, Window, plan
from meshwatch.snapshot.draw import bucket_counts, table_rows, time_ticks
from meshwatch.snapshot.index import MARKER
from meshwatch.snapshot.interpolate import (
    builtin_values,
    default_values,
    rate_interval,
    series_name,
    substitute,
)
from meshwatch.snapshot.layout import render_png
from meshwatch.snapshot.promapi import Series
from meshwatch.snapshot.units import format_value, threshold_color

MODELS = dashboards.dashboard_models(Settings())
WINDOW = Window(end=1_800_000_000.0, range_seconds=1800, scrape_interval=15)


def _by_title(model: dict[str, Any], title: str) -> dict[str, Any]:
    (panel,) = [p for p in model["panels"] if p["title"] == title]
    return panel


def _ramp(labels: dict[str, str], start: float, slope: float) -> Series:
    step = WINDOW.step
    return Series(
        labels,
        tuple(
            (WINDOW.start + i * step, start + slope * i)
            for i in range(int(WINDOW.range_seconds // step) + 1)
        ),
    )


# --- what is sent ---------------------------------------------------------------------


def test_queries_are_what_grafana_sends_on_first_load() -> None:
    governance = MODELS[0]
    values = default_values(governance) | builtin_values(
        range_seconds=1800, step=WINDOW.step, scrape_interval=15
    )
    assert WINDOW.step == 15
    assert values["agent"] == ".*" and values["__rate_interval"] == "60s"
    assert values["__range"] == "1800s"
    expr = 'sum(rate(x{agent_did=~"$agent"}[$__rate_interval])) / ${agent:regex}'
    assert substitute(expr, values) == 'sum(rate(x{agent_did=~".*"}[60s])) / .*'
    with pytest.raises(KeyError, match="undefined variable"):
        substitute("rate(x[$nope])", values)


def test_rate_interval_is_four_scrapes_or_a_step_and_a_scrape() -> None:
    assert rate_interval(step=15, scrape_interval=15) == 60
    assert rate_interval(step=120, scrape_interval=15) == 135


def test_series_names_follow_the_legend_format() -> None:
    labels = {"__name__": "up", "job": "demo", "instance": "a:1"}
    assert series_name("{{job}} on {{ instance }}", labels, "up") == "demo on a:1"
    assert series_name("__auto", labels, "up") == 'up{instance="a:1", job="demo"}'
    assert series_name("__auto", {}, "vector(1)") == "vector(1)"


def test_tempo_and_grafana_panels_are_not_drawable_and_say_why() -> None:
    kinds = {(m["uid"], p.title): p for m in MODELS for p in plan(m)}
    assert "Tempo" in (kinds[("meshwatch-governance", "Saga traces")].not_drawable or "")
    assert "Tempo" in (kinds[("meshwatch-sagas", "Service graph")].not_drawable or "")
    assert "Grafana" in (kinds[("meshwatch-governance", "Firing alerts")].not_drawable or "")
    assert kinds[("meshwatch-sagas", "Requests between services")].external == (
        "tempo-metrics-generator",
    )
    drawable = [p for p in kinds.values() if p.kind == "prometheus"]
    assert all(p.panel["datasource"]["type"] == "prometheus" for p in drawable)
    assert len(drawable) >= 40


# --- how values are shown ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (0.0351, "percentunit", "3.51%"),
        (0.0421, "s", "42.1 ms"),
        (150.0, "s", "2.5 min"),
        (0.5, "ops", "0.5 ops/s"),
        (1500.0, "reqps", "1.5k req/s"),
        (2048.0, "Bps", "2 KiB/s"),
        (417.0, "short", "417"),
        (9.43, "currencyUSD", "$9.43"),
        (1200.0, "currencyCHF", "CHF 1.2k"),
        (None, "s", "No data"),
    ],
)
def test_values_are_formatted_by_unit(value: float | None, unit: str, shown: str) -> None:
    assert format_value(value, unit) == shown


def test_threshold_colour_is_the_highest_step_reached() -> None:
    steps = [(None, "green"), (0.5, "orange"), (2.0, "red")]
    assert [threshold_color(v, steps) for v in (0.1, 0.5, 3.0)] == ["green", "orange", "red"]


def test_time_ticks_fall_on_round_clock_times() -> None:
    ticks = time_ticks(1_800_000_010.0, 1_800_001_810.0, 4)
    assert ticks == [1_800_000_600.0, 1_800_001_200.0, 1_800_001_800.0]
    assert all(t % 600 == 0 for t in ticks)


def test_cumulative_buckets_become_counts_per_bucket() -> None:
    series = [
        (le, Series({"le": le}, ((0.0, total),)))
        for le, total in (("+Inf", 10.0), ("0.5", 4.0), ("0.1", 1.0))
    ]
    assert bucket_counts(series) == [("0.1", 1.0), ("0.5", 3.0), ("+Inf", 6.0)]


def test_tables_rename_hide_map_and_sort_as_the_panel_says() -> None:
    panel = _by_title(MODELS[0], "Current ring per agent")
    data = PanelData(
        panel,
        [
            TargetData(
                "A",
                "__auto",
                "x",
                [
                    Series({"agent_did": "did:a"}, ((1.0, 3.0),)),
                    Series({"agent_did": "did:b"}, ((1.0, 0.0),)),
                ],
            )
        ],
    )
    columns, rows, values = table_rows(data)
    assert columns == ["Agent", "Ring"]
    assert rows == [["did:b", "0 (root)"], ["did:a", "3 (sandbox)"]]
    assert values == [0.0, 3.0]


# --- drawing --------------------------------------------------------------------------------


def test_a_dashboard_renders_to_a_small_png_of_its_grid() -> None:
    """Every drawable panel of the work dashboard, fed with ramps, draws into one PNG."""
    work = MODELS[1]
    panels = plan(work)
    for data in panels:
        if data.kind == "prometheus":
            data.targets = [
                TargetData(
                    t["refId"],
                    t["legendFormat"],
                    t["expr"],
                    [_ramp({"agent_did": f"did:{i}", "le": str(i)}, i, 0.01) for i in range(3)],
                )
                for t in data.panel["targets"]
            ]
    png = render_png(work["title"], panels, WINDOW, "http://127.0.0.1:9090")
    image = Image.open(io.BytesIO(png))
    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in work["panels"])
    assert image.size == (1200, int(48 + bottom * 30 + 6))
    assert len(png) < 250_000, "pictures are committed to the docs: keep them small"
    colours = image.convert("RGB").getcolors(maxcolors=1 << 16) or []
    assert len(colours) > 8, "something was drawn"


def test_panels_without_data_still_render() -> None:
    panels = plan(MODELS[3])
    png = render_png("empty", panels, WINDOW, "http://127.0.0.1:9090")
    assert png.startswith(b"\x89PNG")


# --- the command ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prometheus", "localhost:9090"], "is not an http:// or https:// URL"),
        (["--prometheus", "http://127.0.0.1:9", "--since", "soon"], "--since"),
        (["--prometheus", "http://127.0.0.1:9", "--since", "0s"], "positive"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "snap"
    assert main(["snapshot", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists(), "nothing is written on bad input"


def test_the_index_marks_the_directory_as_a_snapshot() -> None:
    from meshwatch.snapshot.index import DashboardPicture, render_index

    html = render_index([DashboardPicture("u", "T", "u.png", plan(MODELS[0]))], "header")
    assert html.startswith(MARKER)
    assert '<img src="u.png"' in html and "Firing alerts: not drawable here" in html
