"""The container tier's gate: it skips only when no Docker engine answers, and says why.

These run everywhere (no engine needed): a fake ``docker`` on PATH plays an
engine that answers, one that refuses, and one that hangs.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from tests.integration.containers import conftest as containers

pytestmark = pytest.mark.integration


def _fake_docker(directory: Path, body: str, monkeypatch: pytest.MonkeyPatch) -> None:
    script = directory / "docker"
    script.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(directory))


def test_an_engine_that_answers_lets_the_tier_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_docker(tmp_path, 'echo "27.3.1"', monkeypatch)
    assert containers.docker_unavailable_reason() is None


def test_an_engine_that_refuses_is_named_in_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_docker(tmp_path, 'echo "Cannot connect to the Docker daemon" >&2; exit 1', monkeypatch)
    reason = containers.docker_unavailable_reason()
    assert reason is not None and "Cannot connect to the Docker daemon" in reason


def test_an_engine_that_hangs_is_given_up_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleep = shutil.which("sleep")
    assert sleep is not None
    _fake_docker(tmp_path, f"exec {sleep} 30", monkeypatch)
    monkeypatch.setattr(containers, "DOCKER_INFO_TIMEOUT", 0.5)
    reason = containers.docker_unavailable_reason()
    assert reason is not None and "did not answer" in reason


def test_no_docker_cli_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert containers.docker_unavailable_reason() == "no docker CLI on PATH"
