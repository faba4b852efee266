"""Building the demo's command line loads the command line, not the demo.

The stack, the Kubernetes target and the runners import
``meshwatch.demo.command_line`` for the demo's argv. Importing them must not
load the demo's runner and fleet, nor OpenTelemetry (which only the running
demo needs). Runs in a fresh interpreter, because this test process has long
since imported all of it; a child process makes it an integration test.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

IMPORTERS = [
    "meshwatch.stack",
    "meshwatch.stack.compose",
    "meshwatch.stack.runner.native",
    "meshwatch.kubernetes",
    "meshwatch.demo.command_line",
]
# The demo's running parts, and the library only they (and the adapters) need.
HEAVY = ("meshwatch.demo.runner", "meshwatch.demo.world", "meshwatch.demo.agents", "opentelemetry")


def _loaded(modules: list[str]) -> list[str]:
    """Which of HEAVY importing ``modules`` in a fresh interpreter loads."""
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"heavy = {HEAVY!r}\n"
        "print(' '.join(sorted(m for m in sys.modules\n"
        "                      if any(m == h or m.startswith(h + '.') for h in heavy))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_the_stack_loads_the_demos_command_line_without_the_demo() -> None:
    assert _loaded(IMPORTERS) == []


def test_the_check_sees_the_demo_when_it_is_loaded() -> None:
    loaded = _loaded(["meshwatch.demo.runner"])
    assert "meshwatch.demo.runner" in loaded and "opentelemetry" in loaded
