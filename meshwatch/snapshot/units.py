"""Values as Grafana shows them: formatted by the panel's unit, coloured by its thresholds."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

# Grafana's named colours (its default palette), for the names the dashboards use.
COLORS: Mapping[str, str] = {
    "green": "#56A64B",
    "orange": "#FF780A",
    "red": "#E02F44",
    "yellow": "#E0B400",
    "blue": "#3274D9",
    "purple": "#A352CC",
    "text": "#464C54",
}
# Series colours of Grafana's classic palette, in its order.
PALETTE = ("#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A9", "#705DA0")

_SI = ((1e9, "G"), (1e6, "M"), (1e3, "k"))
_BYTES = ((1024.0**3, "GiB"), (1024.0**2, "MiB"), (1024.0, "KiB"))
_RATE_SUFFIX = {"ops": " ops/s", "reqps": " req/s"}
_CURRENCY = {"USD": "$", "EUR": "€", "GBP": "£"}


def color(name: str) -> str:
    """A Grafana colour name (or a ``#rrggbb`` it already is) as a matplotlib colour."""
    return COLORS.get(name, name)


def _short(value: float) -> str:
    for scale, suffix in _SI:
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    if value == 0 or abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def _duration(seconds: float) -> str:
    magnitude = abs(seconds)
    if magnitude == 0:
        return "0 s"
    if magnitude < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if magnitude < 1:
        return f"{seconds * 1e3:.3g} ms"
    if magnitude < 120:
        return f"{seconds:.3g} s"
    if magnitude < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def format_value(value: float | None, unit: str) -> str:
    """``value`` in ``unit`` (a Grafana unit id) the way a panel prints it."""
    if value is None or math.isnan(value):
        return "No data"
    if unit == "percentunit":
        return f"{value * 100:.3g}%"
    if unit == "percent":
        return f"{value:.3g}%"
    if unit == "s":
        return _duration(value)
    if unit == "ms":
        return _duration(value / 1000)
    if unit.startswith("currency"):
        symbol = _CURRENCY.get(unit[len("currency") :], unit[len("currency") :] + " ")
        return ("-" if value < 0 else "") + symbol + _short(abs(value))
    if unit in _RATE_SUFFIX:
        return _short(value) + _RATE_SUFFIX[unit]
    if unit in ("Bps", "bytes"):
        suffix = "/s" if unit == "Bps" else ""
        for scale, name in _BYTES:
            if abs(value) >= scale:
                return f"{value / scale:.3g} {name}{suffix}"
        return f"{value:.3g} B{suffix}"
    return _short(value)


def thresholds(field_defaults: Mapping[str, Any]) -> list[tuple[float | None, str]]:
    """The panel's threshold steps as (value, colour), the base step (value None) first."""
    steps: Sequence[Mapping[str, Any]] = field_defaults.get("thresholds", {}).get("steps", [])
    return [(step.get("value"), color(str(step.get("color", "green")))) for step in steps]


def threshold_color(value: float | None, steps: Sequence[tuple[float | None, str]]) -> str:
    """The colour of the highest step ``value`` reaches (Grafana's absolute thresholds)."""
    chosen = steps[0][1] if steps else COLORS["green"]
    if value is None:
        return "#8E8E8E"
    for step, colour in steps:
        if step is not None and value >= step:
            chosen = colour
    return chosen
