"""The native runner that `make up` uses: up, status and down on random loopback ports.

Each test proves it left no process behind twice: by the pids and process
groups the runner recorded, and by scanning /proc for anything whose command
line mentions the test's working directory (which every native process has in
its arguments). That holds after a clean ``down`` and after a start that fails.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshwatch.cli import main
from meshwatch.rendering import render_all
from meshwatch.settings import load_settings, settings_from_mapping
from meshwatch.stack.prometheus_config import JOB_ALERTMANAGER, JOB_DEMO, JOB_PROMETHEUS
from meshwatch.stack.runner import NativeStack, ProcessRecord, StackError
from meshwatch.stack.runner.state import group_members
from tests.integration.helpers.net import LOOPBACK, free_ports, free_stack_ports
from tests.integration.helpers.poll import wait_until
from tests.integration.helpers.processes import (
    alive,
    kill_leftovers,
    live_processes_mentioning,
)
from tests.integration.helpers.prom import PrometheusAPI

pytestmark = pytest.mark.integration

START_TIMEOUT = 60.0


def _stack_mapping(workdir: Path, *, demo: bool) -> dict[str, Any]:
    ports = free_stack_ports()
    return {
        "stack": {
            "bind_address": LOOPBACK,
            "ports": ports,
            "scrape_interval": "1s",
            "evaluation_interval": "1s",
            "workdir": str(workdir),
            "demo": {"enabled": demo},
        }
    }


@pytest.fixture
def workdir(
    tmp_path: Path, prometheus_bin: str, alertmanager_bin: str, promtool: str, amtool: str
) -> Iterator[Path]:
    """A working directory; afterwards nothing mentioning it may still run."""
    directory = tmp_path / "work"
    yield directory
    leftovers = live_processes_mentioning(str(directory))
    kill_leftovers([p.pid for p in leftovers])
    assert not leftovers, f"processes left behind: {leftovers}"


def _assert_gone(records: dict[str, ProcessRecord]) -> None:
    for record in records.values():
        assert not alive(record.pid), f"{record.name} (pid {record.pid}) still runs"
        assert group_members(record.pgid) == [], f"{record.name}'s process group still has members"


def _targets_up(prometheus: PrometheusAPI, jobs: set[str]) -> bool:
    health = {t["labels"]["job"]: t["health"] for t in prometheus.targets()}
    return all(health.get(job) == "up" for job in jobs)


def test_start_status_restart_and_stop(workdir: Path) -> None:
    settings = settings_from_mapping(_stack_mapping(workdir, demo=False))
    stack = NativeStack(settings, renderer=render_all)
    try:
        statuses = stack.start(timeout=START_TIMEOUT)
        assert [(s.name, s.ready) for s in statuses] == [
            ("prometheus", True),
            ("alert-sink", True),
            ("alertmanager", True),
        ]
        records = stack.records()
        prometheus = PrometheusAPI(stack.url("prometheus"))
        wait_until(
            lambda: _targets_up(prometheus, {JOB_PROMETHEUS, JOB_ALERTMANAGER}),
            timeout=30,
            what="Prometheus and Alertmanager targets up",
        )
        assert prometheus.rule_groups(), "the generated rule files are loaded"
        wait_until(
            lambda: [a["url"] for a in prometheus.alertmanagers()],
            timeout=30,
            what="Prometheus to discover Alertmanager",
        )

        # Running start again starts nothing twice.
        stack.start(timeout=START_TIMEOUT)
        assert {n: r.pid for n, r in stack.records().items()} == {
            n: r.pid for n, r in records.items()
        }

        # A component that died is started again; the others are left alone.
        stack.signal("prometheus", signal.SIGKILL)
        wait_until(lambda: stack.running("prometheus") is None, timeout=10, what="SIGKILL")
        stack.start(timeout=START_TIMEOUT)
        after = stack.records()
        assert after["alertmanager"].pid == records["alertmanager"].pid
        assert after["prometheus"].pid != records["prometheus"].pid
        records = after
    finally:
        stopped = stack.stop()
    assert stopped == ["alertmanager", "alert-sink", "prometheus"]
    _assert_gone(records)
    assert not any(stack.workdir.run.glob("*.json")), "pid files and the mode file are removed"
    assert [s.ready for s in stack.status()] == [False, False, False]


def test_a_regenerated_config_is_reloaded_not_restarted(workdir: Path) -> None:
    mapping = _stack_mapping(workdir, demo=False)
    with NativeStack(settings_from_mapping(mapping), renderer=render_all) as stack:
        before = {n: r.pid for n, r in stack.records().items()}
        mapping["stack"]["agent_targets"] = ["127.0.0.1:1"]
        changed = NativeStack(settings_from_mapping(mapping), renderer=render_all)
        changed.start(timeout=START_TIMEOUT)
        assert {n: r.pid for n, r in changed.records().items()} == before
        prometheus = PrometheusAPI(stack.url("prometheus"))
        wait_until(
            lambda: "agents" in {t["labels"]["job"] for t in prometheus.targets()},
            timeout=30,
            what="the reloaded config's new scrape job",
        )
        records = stack.records()
    _assert_gone(records)


def test_a_port_change_restarts_the_component_on_its_new_port(workdir: Path) -> None:
    mapping = _stack_mapping(workdir, demo=False)
    with NativeStack(settings_from_mapping(mapping), renderer=render_all) as stack:
        before = {n: r.pid for n, r in stack.records().items()}
        (new_port,) = free_ports(1)
        mapping["stack"]["ports"]["alertmanager"] = new_port
        moved = NativeStack(settings_from_mapping(mapping), renderer=render_all)
        statuses = moved.start(timeout=START_TIMEOUT)
        assert all(s.ready for s in statuses), statuses
        after = {n: r.pid for n, r in moved.records().items()}
        assert after["alertmanager"] != before["alertmanager"], "restarted"
        assert after["prometheus"] == before["prometheus"], "reloaded, not restarted"
        assert moved.url("alertmanager").endswith(f":{new_port}")
        prometheus = PrometheusAPI(moved.url("prometheus"))
        wait_until(
            lambda: any(str(new_port) in a["url"] for a in prometheus.alertmanagers()),
            timeout=30,
            what="Prometheus to send to Alertmanager's new port",
        )
        records = moved.records()
        moved.stop()
    _assert_gone(records)


def test_cli_up_status_down(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "meshwatch.yaml"
    config.write_text(yaml.safe_dump(_stack_mapping(workdir, demo=False)))
    args = ["--config", str(config)]
    try:
        assert main(["up", "--mode", "native", *args]) == 0
        out = capsys.readouterr().out
        settings = load_settings(config)
        assert "native mode" in out and "Grafana and Tempo need Docker" in out
        assert str(workdir / "stack" / "grafana" / "dashboards") in out
        records = NativeStack(settings, workdir).records()
        assert set(records) == {"prometheus", "alert-sink", "alertmanager"}
        for record in records.values():
            assert f"http://{LOOPBACK}:" in out and record.name in out
        sink_url = f"http://{LOOPBACK}:{settings.stack.ports.alert_sink}/notifications"
        assert sink_url in out, "up prints where to read the notifications"
        assert str(workdir / "logs" / "alert-notifications.jsonl") in out

        assert main(["up", "--mode", "native", *args]) == 0, "a second up is harmless"
        assert {n: r.pid for n, r in NativeStack(settings, workdir).records().items()} == {
            n: r.pid for n, r in records.items()
        }
        capsys.readouterr()

        assert main(["status", *args]) == 0
        assert capsys.readouterr().out.count(" ready") == 3

        NativeStack(settings, workdir).signal("alertmanager", signal.SIGKILL)
        wait_until(lambda: not alive(records["alertmanager"].pid), timeout=10, what="SIGKILL")
        assert main(["status", *args]) == 1
        assert "not running" in capsys.readouterr().out
    finally:
        assert main(["down", *args]) == 0
    assert "stopped" in capsys.readouterr().out
    _assert_gone(records)
    assert main(["status", *args]) == 1


def test_a_taken_port_fails_the_start_and_stops_what_it_started(workdir: Path) -> None:
    mapping = _stack_mapping(workdir, demo=False)
    blocker = socket.socket()
    blocker.bind((LOOPBACK, mapping["stack"]["ports"]["alertmanager"]))
    blocker.listen()
    stack = NativeStack(settings_from_mapping(mapping), renderer=render_all)
    try:
        with pytest.raises(StackError, match=r"needed by alertmanager, is already in use"):
            stack.start(timeout=START_TIMEOUT)
    finally:
        blocker.close()
    assert stack.records() == {}
    assert live_processes_mentioning(str(workdir)) == [], "Prometheus was stopped again"


def test_a_component_that_exits_during_start_up_is_reported_with_its_log(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake = fake_bin / "prometheus-alertmanager"
    fake.write_text("#!/bin/sh\necho 'alertmanager: cannot open storage' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    stack = NativeStack(
        settings_from_mapping(_stack_mapping(workdir, demo=False)), renderer=render_all
    )
    with pytest.raises(StackError, match="alertmanager exited during start-up") as info:
        stack.start(timeout=START_TIMEOUT)
    assert "cannot open storage" in str(info.value)
    assert stack.records() == {}
    assert live_processes_mentioning(str(workdir)) == []


def test_the_demo_runs_and_is_scraped(workdir: Path) -> None:
    settings = settings_from_mapping(_stack_mapping(workdir, demo=True))
    with NativeStack(settings, renderer=render_all) as stack:
        assert [s.name for s in stack.status() if s.ready] == [
            "prometheus",
            "alert-sink",
            "alertmanager",
            "demo",
        ]
        prometheus = PrometheusAPI(stack.url("prometheus"))
        wait_until(
            lambda: _targets_up(prometheus, {JOB_PROMETHEUS, JOB_ALERTMANAGER, JOB_DEMO}),
            timeout=30,
            what="the demo target up",
        )
        records = stack.records()
    _assert_gone(records)
