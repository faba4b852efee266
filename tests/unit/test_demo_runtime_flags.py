"""The demo's --runtime agent-hypervisor flag checks, in-process (the live fleet: tests/integration)."""

from __future__ import annotations

import pytest

from meshwatch.cli import main


def test_backdating_is_refused_on_the_real_runtime(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "demo",
            "--runtime",
            "agent-hypervisor",
            "--scenario",
            "incident",
            "--elevation-backdate",
            "10",
        ]
    )
    assert code == 2
    assert "--elevation-backdate: not for --runtime agent-hypervisor" in capsys.readouterr().err
