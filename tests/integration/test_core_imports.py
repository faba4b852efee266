"""The core is zero-dependency: importing it loads neither prometheus_client nor OpenTelemetry.

Runs in a fresh interpreter, because this test process has long since
imported both (other tests use them); a child process makes it an integration
test. The public API check is in ``tests/unit/test_public_api.py``.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import meshwatch.instrumentation

pytestmark = pytest.mark.integration

# The edge adapters are the only modules allowed to import the client libraries.
ADAPTERS = {"prometheus", "otel", "genai"}
CORE_MODULES = ["meshwatch.instrumentation"] + [
    f"meshwatch.instrumentation.{info.name}"
    for info in pkgutil.iter_modules(meshwatch.instrumentation.__path__)
    if info.name not in ADAPTERS
]


def _leak_check(modules: list[str]) -> subprocess.CompletedProcess[str]:
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules\n"
        "                if m.split('.')[0] in ('prometheus_client', 'opentelemetry'))\n"
        "assert not leaked, leaked\n"
        "print('clean')\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_core_modules_import_neither_prometheus_client_nor_opentelemetry() -> None:
    assert "meshwatch.instrumentation.ring_metrics" in CORE_MODULES
    result = _leak_check(CORE_MODULES)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"


def test_the_check_notices_an_adapter() -> None:
    result = _leak_check([*CORE_MODULES, "meshwatch.instrumentation.prometheus"])
    assert result.returncode != 0
    assert "prometheus_client" in result.stderr
