"""Everything meshwatch generates from one settings object: rules, dashboards and the stack.

It sits above the three generators and below what writes their output
(``meshwatch generate``, and the runners, which take :func:`render_all` as
their renderer instead of importing it), so the flow stays one way.
"""

from __future__ import annotations

from pathlib import Path

from meshwatch import alerts, dashboards, stack
from meshwatch.generated import GeneratedFile, check_unique
from meshwatch.settings import Settings


def render_all(settings: Settings, out_dir: Path | None = None) -> list[GeneratedFile]:
    """Every generated file, from the one settings object.

    ``out_dir`` is the current output, if any: the stack generator reuses the
    Grafana password it wrote there before, so regenerating does not lock the
    user out.
    """
    return check_unique(
        [
            *alerts.render(settings),
            *dashboards.render(settings),
            *stack.render(settings, previous=out_dir),
        ]
    )


__all__ = ["render_all"]
