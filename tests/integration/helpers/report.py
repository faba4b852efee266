"""What integration tests add to pytest's terminal summary (things checked elsewhere)."""

from __future__ import annotations

import pytest

#: Dashboard panels this tier cannot check (fed by Tempo or drawn by Grafana alone).
NOT_CHECKABLE_PANELS = pytest.StashKey[list[str]]()
#: Recording rules that compare against history older than a test stack.
NOT_CHECKABLE_RULES = pytest.StashKey[list[str]]()

_SECTIONS = (
    (
        NOT_CHECKABLE_PANELS,
        "dashboard panels not checkable natively (the container tier runs them)",
    ),
    (NOT_CHECKABLE_RULES, "recording rules needing more history than a test stack has"),
)


def terminal_summary(config: pytest.Config, reporter: pytest.TerminalReporter) -> None:
    """Print what no native test could check, so the report says so, not only the code."""
    for key, title in _SECTIONS:
        lines = config.stash.get(key, [])
        if lines:
            reporter.section(title)
            for line in lines:
                reporter.write_line(f"  {line}")
