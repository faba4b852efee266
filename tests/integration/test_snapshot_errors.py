"""``meshwatch snapshot`` against a port where no Prometheus answers: one line, exit 2, nothing touched.

Integration tier: the command connects to a loopback port. The pictures
themselves are drawn in-process in ``tests/unit/test_snapshot.py``; the run
against a live stack is ``tests/integration/test_snapshot.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshwatch.cli import main
from tests.integration.helpers.net import LOOPBACK, free_port

pytestmark = pytest.mark.integration


def test_no_prometheus_there_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://{LOOPBACK}:{free_port()}"
    assert main(["snapshot", "--prometheus", url, "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("meshwatch snapshot: no Prometheus API at") and "\n" not in err


def test_an_out_directory_of_something_else_is_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "todo.txt").write_text("keep me", encoding="utf-8")
    url = f"http://{LOOPBACK}:{free_port()}"
    assert main(["snapshot", "--prometheus", url, "--out", str(mine)]) == 2
    assert "holds no earlier snapshot" in capsys.readouterr().err
    assert (mine / "todo.txt").read_text(encoding="utf-8") == "keep me"
    a_file = tmp_path / "file"
    a_file.write_text("x", encoding="utf-8")
    assert main(["snapshot", "--prometheus", url, "--out", str(a_file)]) == 2
    assert "is not a directory" in capsys.readouterr().err
