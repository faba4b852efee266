"""What integration tests add to pytest's terminal summary (things checked elsewhere)."""

from __future__ import annotations

import pytest

#: Dashboard panels this tier cannot check (fed by Tempo or drawn by Grafana alone).
NOT_CHECKABLE_PANELS = pytest.StashKey[list[str]]()


def terminal_summary(config: pytest.Config, terminalreporter: object) -> None:
    """Print the panels no native test could check, so the report says so, not only the code."""
    panels = config.stash.get(NOT_CHECKABLE_PANELS, [])
    if not panels:
        return
    writer = terminalreporter  # a _pytest.terminal.TerminalReporter
    writer.section("dashboard panels not checkable natively (the container tier checks them)")  # type: ignore[attr-defined]
    for panel in panels:
        writer.write_line(f"  {panel}")  # type: ignore[attr-defined]
