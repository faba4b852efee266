"""The runner against real processes: pid identity, group kills, the engine probe, status probes.

Integration tier: these tests start processes (``sleep``, a fake ``docker``
script, a child interpreter) or probe loopback ports. The runner's command
lines, pid files and working directory are unit tests in
``tests/unit/test_stack_runner.py``, whose compose recorder they share.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from meshwatch.cli import main
from meshwatch.settings import Settings
from meshwatch.stack import render
from meshwatch.stack.runner import NativeStack, ProcessRecord, Workdir, docker_available
from meshwatch.stack.runner.state import group_members, is_ours, pid_alive, start_ticks
from tests.integration.helpers.net import free_port
from tests.integration.helpers.poll import wait_until
from tests.unit.test_stack_runner import Recorder, _compose

pytestmark = pytest.mark.integration


def test_compose_start_generates_then_waits_and_recreates_only_after_a_change(
    tmp_path: Path,
) -> None:
    run = Recorder()
    stack = _compose(tmp_path, run=run)
    statuses = stack.start(timeout=120)
    ups = [c for c in run.commands if "up" in c]
    assert len(ups) == 1 and "--force-recreate" in ups[0] and "--wait" in ups[0]
    assert (tmp_path / "wd" / "stack" / "docker-compose.yml").is_file()
    assert Workdir(tmp_path / "wd").read_mode() == {
        "mode": "compose",
        "project": "meshwatch",
        "services": ["prometheus", "alertmanager", "tempo", "grafana", "demo", "alert-sink"],
    }
    assert [s.name for s in statuses] == [
        "prometheus",
        "alertmanager",
        "tempo",
        "grafana",
        "demo",
        "alert-sink",
    ]
    stack.start(timeout=120)
    second_up = [c for c in run.commands if "up" in c][-1]
    assert "--force-recreate" not in second_up, "nothing changed, nothing recreated"


def test_compose_stop_runs_down_and_forgets_the_mode(tmp_path: Path) -> None:
    run = Recorder()
    stack = _compose(tmp_path, run=run)
    stack.start()
    stack.stop(volumes=True)
    assert run.commands[-1][-3:] == ["down", "--remove-orphans", "--volumes"]
    assert Workdir(tmp_path / "wd").read_mode() is None


def _fake_docker(bin_dir: Path, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "docker"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)


HUNG_DOCKER_SECONDS = 30


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('echo "28.2.2"', True),
        ('echo "Cannot connect to the Docker daemon" >&2; exit 1', False),
        (f"exec sleep {HUNG_DOCKER_SECONDS}", False),
    ],
    ids=["answers", "no-engine", "hangs"],
)
def test_docker_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, expected: bool
) -> None:
    _fake_docker(tmp_path / "bin", body)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    started = time.monotonic()
    assert docker_available(timeout=0.5) is expected
    # Not a speed figure: a probe that waited for the hung docker would take all of
    # its 30 s; one bounded by its timeout is back long before, however loaded the machine.
    assert time.monotonic() - started < HUNG_DOCKER_SECONDS / 2, "the probe is bounded"


@pytest.fixture
def sleeper() -> Any:
    """A process in its own session, killed at the end whatever happens."""
    child = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield child
    if child.poll() is None:
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def test_identity_needs_the_same_start_time(sleeper: subprocess.Popen[bytes]) -> None:
    ticks = start_ticks(sleeper.pid)
    assert ticks is not None
    ours = ProcessRecord("x", sleeper.pid, sleeper.pid, ("sleep",), ticks, "")
    assert is_ours(ours)
    reused = ProcessRecord("x", sleeper.pid, sleeper.pid, ("sleep",), ticks + 1, "")
    assert not is_ours(reused)
    assert group_members(sleeper.pid) == [sleeper.pid]


def test_a_zombie_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        # Exited but not yet reaped (nobody has waited for it): a zombie, not alive.
        wait_until(lambda: not pid_alive(child.pid), timeout=30, interval=0.02, what="exit")
    finally:
        child.kill()
        child.wait()


def test_stop_never_signals_a_process_that_reused_a_recorded_pid(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    stack = NativeStack(Settings(), tmp_path / "wd", renderer=render)
    ticks = start_ticks(sleeper.pid)
    assert ticks is not None
    path = stack.workdir.pid_file("prometheus")
    ProcessRecord("prometheus", sleeper.pid, sleeper.pid, ("prometheus",), ticks - 1, "").save(path)
    assert stack.running("prometheus") is None
    assert stack.stop() == []
    assert sleeper.poll() is None, "someone else's process was left alone"
    assert not path.exists(), "the stale pid file is gone"


def test_stop_kills_the_whole_group_of_a_recorded_process(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    stack = NativeStack(Settings(), tmp_path / "wd", renderer=render)
    ticks = start_ticks(sleeper.pid)
    ProcessRecord("demo", sleeper.pid, sleeper.pid, ("sleep",), ticks, "").save(
        stack.workdir.pid_file("demo")
    )
    assert stack.stop(["demo"], timeout=5) == ["demo"]
    assert sleeper.wait(timeout=5) == -signal.SIGTERM
    assert group_members(sleeper.pid) == []


def test_status_in_compose_mode_probes_the_services_up_started(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()  # nothing listens there
    config = tmp_path / "meshwatch.yaml"
    config.write_text(f"stack:\n  ports:\n    prometheus: {port}\n")
    Workdir(tmp_path).write_mode("compose", project="meshwatch", services=["prometheus"])
    assert main(["status", "--workdir", str(tmp_path), "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "compose mode (project meshwatch)" in out
    assert "prometheus" in out and "grafana" not in out
