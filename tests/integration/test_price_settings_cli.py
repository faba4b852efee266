"""``meshwatch generate`` with a wrong LLM price: one line naming the key, exit 2, nothing written.

Integration tier: it runs the real command line (``python -m meshwatch``) in a
child process, so the exit code and stderr are the user's. The price settings
themselves are tested in-process in ``tests/unit/llm/test_price_settings.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_the_cli_reports_a_wrong_price_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "meshwatch.yaml"
    config.write_text("genai:\n  prices:\n    model-a: {output: -3}\n")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "meshwatch", "generate", "--out", str(out), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "genai.prices.model-a.output" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
