"""A dashboard's panels on its grid, as one PNG.

The grid is Grafana's: 24 columns, rows 30 px high. Each panel gets its
``gridPos`` box with a title; row headers are section titles across the width.
The image is reduced to a small palette before it is written, so pictures of
a whole dashboard stay small enough to commit.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime

from matplotlib.figure import Figure
from PIL import Image

from meshwatch.snapshot.collect import PanelData, Window
from meshwatch.snapshot.draw import DRAWERS, MUTED, NORMAL, SMALL, TEXT, Canvas, message

COLUMN_PX = 50.0
ROW_PX = 30.0
GAP_PX = 6.0
HEADER_PX = 48.0
TITLE_PX = 20.0
DPI = 100
PAGE = "#F4F5F5"
PALETTE_COLOURS = 96


def _box(panel: PanelData) -> tuple[float, float, float, float]:
    pos = panel.panel.get("gridPos", {})
    return (
        pos.get("x", 0) * COLUMN_PX + GAP_PX / 2,
        HEADER_PX + pos.get("y", 0) * ROW_PX + GAP_PX / 2,
        pos.get("w", 24) * COLUMN_PX - GAP_PX,
        pos.get("h", 8) * ROW_PX - GAP_PX,
    )


def _frame(canvas: Canvas, panel: PanelData) -> tuple[float, float, float, float]:
    x, y, w, h = _box(panel)
    canvas.rect((x, y, w, h), facecolor="white", edgecolor="#DCDCDC", linewidth=0.8)
    canvas.text(
        x + 8,
        y + 2 + TITLE_PX / 2,
        panel.title[: int(w // 6)],
        fontsize=NORMAL,
        fontweight="bold",
        color=TEXT,
        va="center",
    )
    return (x + 6, y + TITLE_PX + 4, w - 12, h - TITLE_PX - 8)


def render_png(title: str, panels: Sequence[PanelData], window: Window, source: str) -> bytes:
    """The dashboard ``title`` with every panel drawn from its data, as PNG bytes."""
    bottom = max(
        (
            p.panel.get("gridPos", {}).get("y", 0) + p.panel.get("gridPos", {}).get("h", 0)
            for p in panels
        ),
        default=1,
    )
    width = 24 * COLUMN_PX
    height = HEADER_PX + bottom * ROW_PX + GAP_PX
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor=PAGE)
    canvas = Canvas(figure, width, height)
    canvas.text(GAP_PX, 16, title, fontsize=13, fontweight="bold", color=TEXT, va="center")
    end = datetime.fromtimestamp(window.end, UTC).strftime("%Y-%m-%d %H:%M UTC")
    canvas.text(
        GAP_PX,
        36,
        f"last {window.range_seconds / 60:g} min to {end}, from {source} "
        "(drawn by meshwatch snapshot, not Grafana)",
        fontsize=SMALL,
        color=MUTED,
        va="center",
    )
    for panel in panels:
        if panel.kind == "row":
            x, y, _, _ = _box(panel)
            canvas.text(
                x,
                y + (ROW_PX - GAP_PX) / 2,
                panel.title,
                fontsize=10.5,
                fontweight="bold",
                color=TEXT,
                va="center",
            )
            continue
        content = _frame(canvas, panel)
        if panel.kind == "not-drawable":
            message(canvas, content, "Not drawable here", panel.not_drawable or "")
            continue
        drawer = DRAWERS.get(str(panel.panel.get("type")))
        if drawer is None:
            message(
                canvas,
                content,
                "Not drawable here",
                f"no snapshot drawing for {panel.panel.get('type')} panels",
            )
            continue
        drawer(canvas, content, panel, window)
    raw = io.BytesIO()
    figure.savefig(raw, format="png", dpi=DPI, facecolor=PAGE)
    image = Image.open(io.BytesIO(raw.getvalue())).convert("RGB")
    small = io.BytesIO()
    image.quantize(colors=PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT).save(
        small, format="PNG", optimize=True
    )
    return small.getvalue()
