"""Expand alert annotation templates in Python, exactly as Prometheus does.

The promtool cases expect each alert's annotations word for word, so the
expected text is computed here from the rule's template, the labels the case
expects and the value its input series produce. This is an independent
implementation of the small template subset meshwatch's rules use (labels and
the ``humanize*`` functions, ported from Prometheus' ``template.go``):
promtool expands the same template with Go, and any difference (a wrong label
name, a unit formatted differently) fails the case. Anything outside the
subset raises, so a rule cannot use a template the tests cannot check.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

_ACTION = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_SMALL_PREFIXES = ("m", "u", "n", "p", "f", "a", "z", "y")
_LARGE_PREFIXES = ("k", "M", "G", "T", "P", "E", "Z", "Y")


def _g4(value: float) -> str:
    """Go's ``%.4g`` (the same rules as C's, which Python follows), with Go's spelling of NaN/Inf."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.4g}"


def humanize(value: float) -> str:
    """Prometheus' ``humanize``: 4 significant digits with an SI prefix (``1.5k``, ``250m``)."""
    if value == 0 or math.isnan(value) or math.isinf(value):
        return _g4(value)
    prefix = ""
    if abs(value) >= 1:
        for candidate in _LARGE_PREFIXES:
            if abs(value) < 1000:
                break
            prefix, value = candidate, value / 1000
    else:
        for candidate in _SMALL_PREFIXES:
            if abs(value) >= 1:
                break
            prefix, value = candidate, value * 1000
    return f"{_g4(value)}{prefix}"


def humanize_percentage(value: float) -> str:
    """Prometheus' ``humanizePercentage``: a ratio as a percentage, 4 significant digits."""
    return f"{_g4(value * 100)}%"


def humanize_duration(value: float) -> str:
    """Prometheus' ``humanizeDuration``: ``1d 2h 3m 4s``, or ``1.5s`` / ``250ms`` under a minute."""
    if math.isnan(value) or math.isinf(value):
        return _g4(value)
    if value == 0:
        return f"{_g4(value)}s"
    if abs(value) >= 1:
        sign = "-" if value < 0 else ""
        value = abs(value)
        whole = int(value)
        seconds, minutes = whole % 60, (whole // 60) % 60
        hours, days = (whole // 3600) % 24, whole // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(value)}s"
    prefix = ""
    for candidate in _SMALL_PREFIXES:
        if abs(value) >= 1:
            break
        prefix, value = candidate, value * 1000
    return f"{_g4(value)}{prefix}s"


FUNCTIONS: Mapping[str, Callable[[float], str]] = {
    "humanize": humanize,
    "humanizePercentage": humanize_percentage,
    "humanizeDuration": humanize_duration,
}


def expand(template: str, labels: Mapping[str, str], value: float) -> str:
    """``template`` with ``{{ $labels.x }}`` and ``{{ $value | fn }}`` replaced.

    Raises ``ValueError`` for a label the alert does not carry (Prometheus
    would silently print nothing) and for any action outside the subset.
    """

    def action(match: re.Match[str]) -> str:
        text = match.group(1)
        label = re.fullmatch(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)", text)
        if label:
            name = label.group(1)
            if name not in labels:
                raise ValueError(f"template uses $labels.{name}, which the alert does not carry")
            return labels[name]
        piped = re.fullmatch(r"\$value\s*\|\s*(\w+)", text)
        if piped and piped.group(1) in FUNCTIONS:
            return FUNCTIONS[piped.group(1)](value)
        raise ValueError(f"unsupported template action {{{{ {text} }}}}")

    return _ACTION.sub(action, template)
