"""One panel drawn with matplotlib, in the box the dashboard grid gives it.

Each ``draw_*`` function takes the figure, the panel's content box (pixels from
the figure's top left: x, y, width, height) and the panel's data, and draws
what Grafana's visualization of that type shows: time series with the
threshold steps as dashed lines, stat values on their threshold colour,
gauges and bars coloured where an alert would fire, donuts of shares, and
tables with the panel's renames, hidden columns, value mappings and sort.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle, Wedge
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.transforms import Bbox

from meshwatch.snapshot.collect import PanelData, Window
from meshwatch.snapshot.interpolate import series_name
from meshwatch.snapshot.promapi import Series
from meshwatch.snapshot.units import (
    COLORS,
    PALETTE,
    format_value,
    threshold_color,
    thresholds,
)

Box = tuple[float, float, float, float]
JSON = dict[str, Any]
TEXT = COLORS["text"]
MUTED = "#8E8E8E"
SMALL, NORMAL = 7.0, 8.0
LEGEND_LINE_PX = 13.0
_THRESHOLD_STYLES = {"dashed", "line", "dashed+area", "line+area"}


class Canvas:
    """Pixel boxes on one figure, turned into matplotlib's figure fractions."""

    def __init__(self, figure: Figure, width_px: float, height_px: float) -> None:
        self.figure = figure
        self.width_px = width_px
        self.height_px = height_px

    def axes(self, box: Box, **kwargs: Any) -> Axes:
        x, y, w, h = box
        rect = (
            x / self.width_px,
            1 - (y + h) / self.height_px,
            max(w, 1) / self.width_px,
            max(h, 1) / self.height_px,
        )
        return self.figure.add_axes(rect, **kwargs)

    def text(self, x: float, y: float, text: str, **kwargs: Any) -> None:
        """Text at pixel (x, y); cheaper than an axes for a title or a note."""
        self.figure.text(x / self.width_px, 1 - y / self.height_px, text, **kwargs)

    def rect(self, box: Box, **kwargs: Any) -> None:
        """A filled rectangle over ``box`` (a panel's frame, a stat's coloured background)."""
        x, y, w, h = box
        kwargs.setdefault("zorder", -1)  # beneath the axes drawn in it
        self.figure.patches.append(
            Rectangle(
                (x / self.width_px, 1 - (y + h) / self.height_px),
                w / self.width_px,
                h / self.height_px,
                transform=self.figure.transFigure,
                figure=self.figure,
                **kwargs,
            )
        )

    def blank(self, box: Box) -> Axes:
        ax = self.axes(box)
        ax.set_axis_off()
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        return ax


def _defaults(data: PanelData) -> JSON:
    return dict(data.panel.get("fieldConfig", {}).get("defaults", {}))


def _unit(data: PanelData) -> str:
    return str(_defaults(data).get("unit", "short"))


def named_series(data: PanelData) -> list[tuple[str, Series]]:
    """Every series of every query of the panel, with the name its legend gives it."""
    return [
        (series_name(target.legend, s.labels, target.expr), s)
        for target in data.targets
        for s in target.series
    ]


def message(canvas: Canvas, box: Box, text: str, detail: str = "") -> None:
    """A centred note in the panel's box: "No data", a query error, why it is not drawn."""
    x, y, w, h = box
    canvas.text(x + w / 2, y + h * 0.45, text, ha="center", va="center", fontsize=10, color=MUTED)
    if detail:
        canvas.text(
            x + w / 2,
            y + h * 0.45 + 18,
            _fit(detail, w),
            ha="center",
            va="center",
            fontsize=SMALL,
            color=MUTED,
        )


def no_data_detail(data: PanelData) -> str:
    if data.errors:
        return "query error: " + "; ".join(data.errors)[:160]
    if data.external:
        return "reads series from " + ", ".join(data.external) + ", which this Prometheus lacks"
    return ""


# --- time series ---------------------------------------------------------------------------


def _times(series: Series) -> list[float]:
    return [t for t, _ in series.samples]


_TICK_SPACINGS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def time_ticks(start: float, end: float, most: int) -> list[float]:
    """Round clock times across ``start``-``end``: the finest spacing giving at most ``most``."""
    spacing = next((s for s in _TICK_SPACINGS if (end - start) / s <= most), _TICK_SPACINGS[-1])
    first = math.ceil(start / spacing) * spacing
    return [float(t) for t in range(int(first), int(end) + 1, spacing)]


def _clock(value: float, _position: int | None = None) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%H:%M")


def _legend_lines(count: int, columns: int, max_lines: int) -> int:
    return min(max_lines, math.ceil(count / columns)) if count else 0


def draw_timeseries(canvas: Canvas, box: Box, data: PanelData, window: Window) -> None:
    x, y, w, h = box
    defaults = _defaults(data)
    custom = defaults.get("custom", {})
    unit = _unit(data)
    series = [(name, s) for name, s in named_series(data) if s.samples]
    columns = max(1, int(w // 170))
    lines = _legend_lines(len(series), columns, max_lines=2 if h < 200 else 3)
    legend_px = lines * LEGEND_LINE_PX + (4 if lines else 0)
    ax = canvas.axes((x + 58, y + 4, w - 66, h - 22 - legend_px))
    ax.set_facecolor("white")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=SMALL, colors=TEXT, length=2)
    ax.grid(True, color="#E6E6E6", linewidth=0.6)
    ax.set_xlim(window.start, window.end)
    ax.set_xticks(time_ticks(window.start, window.end, max(2, int(w // 110))))
    ax.xaxis.set_major_formatter(FuncFormatter(_clock))
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_value(v, unit)))
    stacked = custom.get("stacking", {}).get("mode") == "normal"
    values: list[float] = []
    base: dict[float, float] = {}
    for i, (name, s) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        ys = [v for _, v in s.samples]
        if stacked:
            lower = [base.get(t, 0.0) for t, _ in s.samples]
            upper = [lo + (0.0 if math.isnan(v) else v) for lo, v in zip(lower, ys, strict=True)]
            base.update({t: u for (t, _), u in zip(s.samples, upper, strict=True)})
            ax.fill_between(_times(s), lower, upper, color=colour, alpha=0.35, linewidth=0)
            ax.plot(_times(s), upper, color=colour, linewidth=1.1, label=name)
            values.extend(upper)
        else:
            ax.plot(_times(s), ys, color=colour, linewidth=1.2, label=name)
            values.extend(v for v in ys if not math.isnan(v))
    steps = (
        [(value, colour) for value, colour in thresholds(defaults) if value is not None]
        if custom.get("thresholdsStyle", {}).get("mode") in _THRESHOLD_STYLES
        else []
    )
    for value, colour in steps:
        ax.axhline(value, color=colour, linestyle=(0, (5, 3)), linewidth=1.3, zorder=3)
        values.append(value)
    _y_limits(ax, values, defaults)
    if not series:
        ax.text(
            0.5,
            0.5,
            "No data",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=10,
            color=MUTED,
        )
        detail = no_data_detail(data)
        if detail:
            ax.text(
                0.5,
                0.3,
                detail,
                transform=ax.transAxes,
                ha="center",
                va="center",
                fontsize=SMALL,
                color=MUTED,
                wrap=True,
            )
    if series:
        _legend(canvas, ax, series, columns, lines, (x + 8, y + h - legend_px, w - 16, legend_px))


def _y_limits(ax: Axes, values: Sequence[float], defaults: Mapping[str, Any]) -> None:
    low = defaults.get("min")
    high = defaults.get("max")
    finite = [v for v in values if not math.isnan(v) and not math.isinf(v)]
    top = max(finite, default=1.0)
    bottom = min(finite, default=0.0)
    if low is None:
        low = min(bottom, 0.0) if bottom >= 0 else bottom - 0.1 * abs(bottom)
    if high is None:
        high = top + 0.1 * abs(top - low) if top > low else low + 1
    ax.set_ylim(float(low), float(high))


def _legend(
    canvas: Canvas,
    ax: Axes,
    series: Sequence[tuple[str, Series]],
    columns: int,
    lines: int,
    top: Box,
) -> None:
    """The series names under the graph, in ``lines`` lines from the top left of ``top``."""
    shown = columns * lines
    handles, labels = ax.get_legend_handles_labels()
    if len(series) > shown:
        handles, labels = handles[: shown - 1], labels[: shown - 1]
        labels.append(f"+{len(series) - shown + 1} more")
        handles.append(ax.plot([], [], color="white")[0])
    x, y, w, _ = top
    ax.legend(
        handles,
        [_fit(label, w / columns - 30) for label in labels],
        loc="upper left",
        bbox_to_anchor=(x / canvas.width_px, 1 - y / canvas.height_px),
        bbox_transform=canvas.figure.transFigure,
        ncol=columns,
        fontsize=SMALL,
        frameon=False,
        handlelength=1.2,
        columnspacing=1.0,
        borderaxespad=0.0,
        borderpad=0.0,
        labelspacing=0.25,
    )


# --- single values -------------------------------------------------------------------------


def _split(box: Box, count: int, *, min_width: float = 0.0) -> list[Box]:
    """``count`` cells filling ``box`` left to right, in as many lines as keep cells ``min_width`` wide."""
    x, y, w, h = box
    per_line = max(1, min(count, int(w // min_width) if min_width else count))
    lines = math.ceil(count / per_line) if count else 1
    width, height = w / per_line, h / lines
    return [
        (x + (i % per_line) * width, y + (i // per_line) * height, width, height)
        for i in range(count)
    ]


def draw_stat(canvas: Canvas, box: Box, data: PanelData, window: Window) -> None:
    series = named_series(data)[:4]
    if not series:
        message(canvas, box, "No data", no_data_detail(data))
        return
    steps = thresholds(_defaults(data))
    unit = _unit(data)
    show_name = len(series) > 1
    for (name, s), part in zip(series, _split(box, len(series)), strict=True):
        value = s.last()
        px, py, pw, ph = (part[0] + 2, part[1] + 2, part[2] - 4, part[3] - 4)
        canvas.rect((px, py, pw, ph), facecolor=threshold_color(value, steps), linewidth=0)
        points = [(t, v) for t, v in s.samples if not math.isnan(v)]
        if len(points) > 1:
            spark = canvas.axes(
                (part[0] + 2, part[1] + part[3] * 0.62, part[2] - 4, part[3] * 0.38 - 2)
            )
            spark.set_axis_off()
            spark.fill_between(
                [t for t, _ in points],
                [v for _, v in points],
                alpha=0.25,
                color="white",
                linewidth=0,
            )
            spark.set_xlim(window.start, window.end)
        canvas.text(
            px + pw / 2,
            py + ph * 0.45,
            format_value(value, unit),
            ha="center",
            va="center",
            fontsize=min(22.0, pw / 9),
            color="white",
            fontweight="bold",
        )
        if show_name:
            canvas.text(
                px + pw / 2,
                py + ph * 0.15,
                _fit(name, pw),
                ha="center",
                va="center",
                fontsize=SMALL,
                color="white",
            )


def _gauge(
    ax: Axes,
    value: float | None,
    steps: Sequence[tuple[float | None, str]],
    low: float,
    high: float,
) -> None:
    def angle(v: float) -> float:
        share = 0.0 if high == low else (min(max(v, low), high) - low) / (high - low)
        return 180.0 - 180.0 * share

    ax.add_patch(Wedge((0, 0), 1.0, 0, 180, width=0.25, color="#EDEDED"))
    bounds = [low] + [v for v, _ in steps[1:] if v is not None] + [high]
    for (_, colour), start, end in zip(steps, bounds, bounds[1:], strict=False):
        ax.add_patch(Wedge((0, 0), 1.08, angle(end), angle(start), width=0.05, color=colour))
    if value is not None:
        ax.add_patch(
            Wedge((0, 0), 1.0, angle(value), 180, width=0.25, color=threshold_color(value, steps))
        )
    ax.set_xlim(-1.15, 1.15)
    ax.set_ylim(-0.35, 1.15)
    ax.set_aspect("equal")
    ax.set_axis_off()


def draw_gauge(canvas: Canvas, box: Box, data: PanelData, window: Window) -> None:
    series = sorted(named_series(data), key=lambda item: item[0])[:8]
    if not series:
        message(canvas, box, "No data", no_data_detail(data))
        return
    defaults = _defaults(data)
    steps = thresholds(defaults)
    values = [s.last() for _, s in series]
    low = float(defaults.get("min", 0.0) or 0.0)
    high = defaults.get("max")
    high = float(high) if high is not None else max([v or 0.0 for v in values] + [low + 1])
    unit = _unit(data)
    cells = _split(box, len(series), min_width=max(90.0, box[3] * 0.9))
    for (name, _), value, part in zip(series, values, cells, strict=True):
        ax = canvas.axes((part[0] + 2, part[1], part[2] - 4, part[3] - 14))
        _gauge(ax, value, steps, low, high)
        ax.text(
            0,
            0.05,
            format_value(value, unit),
            ha="center",
            va="bottom",
            fontsize=min(12.0, part[2] / 8, part[3] / 6),
            color=threshold_color(value, steps),
            fontweight="bold",
        )
        canvas.text(
            part[0] + part[2] / 2,
            part[1] + part[3] - 7,
            _fit(name, part[2]),
            ha="center",
            va="center",
            fontsize=SMALL,
            color=TEXT,
        )


def _fit(text: str, width_px: float) -> str:
    """``text`` cut to what fits ``width_px`` at the small font (about 4.5 px a character)."""
    room = max(4, int(width_px // 4.5))
    return text if len(text) <= room else text[: room - 1] + "…"


def bucket_counts(series: Sequence[tuple[str, Series]]) -> list[tuple[str, float | None]]:
    """Cumulative ``le`` buckets as counts per bucket (what Grafana's heatmap format does)."""

    def bound(item: tuple[str, Series]) -> float:
        le = item[1].labels.get("le", "+Inf")
        return math.inf if le in ("+Inf", "Inf") else float(le)

    ordered = sorted(series, key=bound)
    counts: list[tuple[str, float | None]] = []
    previous = 0.0
    for name, s in ordered:
        total = s.last()
        counts.append((name, None if total is None else max(total - previous, 0.0)))
        previous = total if total is not None else previous
    return counts


def draw_bargauge(canvas: Canvas, box: Box, data: PanelData, window: Window) -> None:
    named = named_series(data)
    if not named:
        message(canvas, box, "No data", no_data_detail(data))
        return
    heatmap = any(t.get("format") == "heatmap" for t in data.panel.get("targets", []))
    rows = (
        bucket_counts(named)
        if heatmap
        else sorted(((name, s.last()) for name, s in named), key=lambda item: item[0])
    )
    rows = rows[:12]
    defaults = _defaults(data)
    steps = thresholds(defaults)
    unit = _unit(data)
    x, y, w, h = box
    ax = canvas.axes((x + min(150, w * 0.35), y + 2, w - min(150, w * 0.35) - 70, h - 6))
    values = [v or 0.0 for _, v in rows]
    # Bars stay bar-shaped when there are few of them: one slot per 24 px, filled from the top.
    slots = max(len(rows), int(h // 24))
    positions = [slots - 1 - i for i in range(len(rows))]
    high = defaults.get("max")
    top = float(high) if high is not None else max([*values, 1e-9])
    ax.barh(positions, [top] * len(rows), color="#EDEDED", height=0.7)
    ax.barh(positions, values, color=[threshold_color(v, steps) for _, v in rows], height=0.7)
    ax.set_xlim(float(defaults.get("min", 0.0) or 0.0), top)
    ax.set_ylim(-0.5, slots - 0.5)
    ax.set_yticks(
        positions, [_fit(name, min(150, w * 0.35)) for name, _ in rows], fontsize=SMALL, color=TEXT
    )
    ax.set_xticks([])
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(length=0)
    for pos, (_, value) in zip(positions, rows, strict=True):
        ax.text(
            1.01,
            pos,
            format_value(value, unit),
            transform=ax.get_yaxis_transform(),
            va="center",
            fontsize=SMALL,
            color=threshold_color(value, steps),
        )


def draw_piechart(canvas: Canvas, box: Box, data: PanelData, window: Window) -> None:
    named: list[tuple[str, float]] = []
    for name, s in named_series(data):
        value = s.last()
        if value is not None and value > 0:
            named.append((name, value))
    if not named:
        message(canvas, box, "No data", no_data_detail(data))
        return
    x, y, w, h = box
    size = min(h - 4, w * 0.45)
    ax = canvas.axes((x + 4, y + (h - size) / 2, size, size))
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(named))]
    ax.pie(
        [v for _, v in named],
        colors=colours,
        startangle=90,
        counterclock=False,
        wedgeprops={"width": 0.42, "linewidth": 1, "edgecolor": "white"},
    )
    ax.set_aspect("equal")
    total = sum(v for _, v in named)
    unit = _unit(data)
    left = x + size + 16
    for i, ((name, value), colour) in enumerate(zip(named, colours, strict=True)):
        row = y + 12 + i * 16
        canvas.text(left, row, "■", color=colour, fontsize=NORMAL, va="center")
        line = f"{name}  {format_value(value, unit)}  ({100 * value / total:.0f}%)"
        canvas.text(
            left + 14, row, _fit(line, w - size - 34), fontsize=SMALL, color=TEXT, va="center"
        )


# --- tables ----------------------------------------------------------------------------------


def table_rows(data: PanelData) -> tuple[list[str], list[list[str]], list[float | None]]:
    """The table Grafana shows for an instant table query: columns, cells and each row's value."""
    transformations = data.panel.get("transformations", [])
    organize: Mapping[str, Any] = next(
        (t.get("options", {}) for t in transformations if t.get("id") == "organize"), {}
    )
    hidden = {k for k, v in organize.get("excludeByName", {}).items() if v}
    rename: Mapping[str, str] = organize.get("renameByName", {})
    series = [s for t in data.targets for s in t.series]
    labels = sorted({k for s in series for k in s.labels if k != "__name__"})
    if any("__name__" in s.labels for s in series):
        labels.insert(0, "__name__")
    raw = ["Time", *labels, "Value"]
    columns = [c for c in raw if c not in hidden]
    mappings = _value_mappings(_defaults(data))
    unit = _unit(data)
    rows: list[tuple[list[str], float | None]] = []
    for s in series:
        value = s.last()
        time = (
            datetime.fromtimestamp(s.samples[-1][0], UTC).strftime("%H:%M:%S") if s.samples else ""
        )
        cells = {"Time": time, "Value": _mapped(value, mappings, unit), **s.labels}
        rows.append(([str(cells.get(c, "")) for c in columns], value))
    sort = data.panel.get("options", {}).get("sortBy", [])
    if sort:
        key = sort[0].get("displayName")
        names = [rename.get(c, c) for c in columns]
        if key in names:
            index = names.index(key)
            numeric = raw[raw.index(columns[index])] == "Value"

            def order(row: tuple[list[str], float | None]) -> Any:
                return (row[1] if row[1] is not None else -math.inf) if numeric else row[0][index]

            rows.sort(key=order, reverse=bool(sort[0].get("desc")))
    return [rename.get(c, c) for c in columns], [r for r, _ in rows], [v for _, v in rows]


def _value_mappings(defaults: Mapping[str, Any]) -> dict[str, str]:
    result: dict[str, str] = {}
    for mapping in defaults.get("mappings", []):
        if mapping.get("type") == "value":
            for value, option in mapping.get("options", {}).items():
                result[str(value)] = str(option.get("text", value))
    return result


def _mapped(value: float | None, mappings: Mapping[str, str], unit: str) -> str:
    if value is not None and not math.isnan(value):
        key = f"{value:g}"
        if key in mappings:
            return mappings[key]
    return format_value(value, unit)


def draw_table(canvas: Canvas, box: Box, data: PanelData, window: Window) -> None:
    columns, rows, values = table_rows(data)
    if not rows:
        message(canvas, box, "No data", no_data_detail(data))
        return
    h = box[3]
    fit = max(1, int((h - 22) // 17))
    more = len(rows) - fit
    if more > 0:
        rows, values = rows[: fit - 1], values[: fit - 1]
    ax = canvas.blank(box)
    steps = thresholds(_defaults(data))
    cell = _defaults(data).get("custom", {}).get("cellOptions", {}).get("type", "auto")
    value_column = len(columns) - 1 if columns and columns[-1] not in ("Time",) else -1
    table = ax.table(
        cellText=rows,
        colLabels=columns,
        loc="upper left",
        cellLoc="left",
        colLoc="left",
        bbox=Bbox.from_bounds(0, 1 - (len(rows) + 1) * 17 / h, 1, (len(rows) + 1) * 17 / h),
    )
    table.auto_set_font_size(False)
    table.set_fontsize(SMALL)
    for (row, col), item in table.get_celld().items():
        item.set_edgecolor("#E6E6E6")
        item.set_linewidth(0.5)
        item.get_text().set_color(TEXT)
        if row == 0:
            item.set_facecolor("#F4F5F5")
            item.get_text().set_fontweight("bold")
        elif col == value_column and cell in ("color-text", "color-background"):
            colour = threshold_color(values[row - 1], steps)
            if cell == "color-background":
                item.set_facecolor(colour)
                item.get_text().set_color("white")
            else:
                item.get_text().set_color(colour)
    if more > 0:
        ax.text(0.0, 0.0, f"+{more + 1} more rows", fontsize=SMALL, color=MUTED, va="bottom")


DRAWERS: Mapping[str, Callable[[Canvas, Box, PanelData, Window], None]] = {
    "timeseries": draw_timeseries,
    "stat": draw_stat,
    "gauge": draw_gauge,
    "bargauge": draw_bargauge,
    "piechart": draw_piechart,
    "table": draw_table,
}
