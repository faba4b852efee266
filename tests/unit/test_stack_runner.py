"""The runner without servers or processes: compose command lines, pid files, the workdir."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from meshwatch.cli import main
from meshwatch.settings import Settings, settings_from_mapping
from meshwatch.stack import render
from meshwatch.stack.runner import (
    ComposeStack,
    NativeStack,
    ProcessRecord,
    StackError,
    Workdir,
    docker_available,
)
from meshwatch.stack.runner.compose import parse_compose_version
from meshwatch.stack.runner.native import find_binary


class Recorder:
    """Stands in for subprocess.run: records each command, answers from a script."""

    def __init__(self, version: str = "2.29.1", up_exit: int = 0) -> None:
        self.commands: list[list[str]] = []
        self.version = version
        self.up_exit = up_exit

    def __call__(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.commands.append(list(command))
        if command[1:3] == ["compose", "version"]:
            return subprocess.CompletedProcess(command, 0 if self.version else 1, self.version, "")
        return subprocess.CompletedProcess(command, self.up_exit if "up" in command else 0, "", "")


def _compose(tmp_path: Path, settings: Settings | None = None, **kwargs: Any) -> ComposeStack:
    return ComposeStack(settings or Settings(), tmp_path / "wd", renderer=render, **kwargs)


# --- compose ----------------------------------------------------------------------


def test_compose_up_command_line(tmp_path: Path) -> None:
    stack = _compose(tmp_path, settings_from_mapping({"stack": {"project": "mw-test"}}))
    stack_dir = str(tmp_path / "wd" / "stack")
    assert stack.up_command(recreate=False, timeout=300) == [
        "docker",
        "compose",
        "--project-name",
        "mw-test",
        "--project-directory",
        stack_dir,
        "--file",
        f"{stack_dir}/docker-compose.yml",
        "up",
        "--detach",
        "--wait",
        "--wait-timeout",
        "300",
        "--build",
        "--remove-orphans",
        "prometheus",
        "alertmanager",
        "tempo",
        "grafana",
        "demo",
        "alert-sink",
    ]
    assert "--force-recreate" in stack.up_command(recreate=True, timeout=300)


def test_compose_down_command_keeps_volumes_unless_asked(tmp_path: Path) -> None:
    stack = _compose(tmp_path)
    assert stack.down_command()[-2:] == ["down", "--remove-orphans"]
    assert stack.down_command(volumes=True)[-3:] == ["down", "--remove-orphans", "--volumes"]


def test_compose_services_without_the_demo_and_the_alert_sink(tmp_path: Path) -> None:
    off = settings_from_mapping({"stack": {"demo": {"enabled": False}, "alert_sink": False}})
    assert _compose(tmp_path, off).services == ["prometheus", "alertmanager", "tempo", "grafana"]
    chosen = _compose(tmp_path, services=["prometheus"])
    assert chosen.up_command(recreate=False, timeout=1)[-1] == "prometheus"


def test_compose_start_reports_a_failed_up(tmp_path: Path) -> None:
    with pytest.raises(StackError, match=r"docker compose up failed \(exit 1\)"):
        _compose(tmp_path, run=Recorder(up_exit=1)).start()
    assert Workdir(tmp_path / "wd").read_mode() is None


@pytest.mark.parametrize(("version", "fragment"), [("2.12.2", "2.12.2"), ("", "not installed")])
def test_compose_needs_a_recent_plugin(tmp_path: Path, version: str, fragment: str) -> None:
    with pytest.raises(StackError, match=r"Compose plugin 2\.20 or later") as info:
        _compose(tmp_path, run=Recorder(version=version)).start()
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("text", "version"),
    [("2.29.1\n", (2, 29)), ("v2.20.0-desktop.1", (2, 20)), ("garbage", None)],
)
def test_parse_compose_version(text: str, version: tuple[int, int] | None) -> None:
    assert parse_compose_version(text) == version


# --- the engine probe ---------------------------------------------------------------


def test_docker_available_without_a_docker_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert docker_available() is False


# --- pid files and process identity -------------------------------------------------


def test_process_record_round_trip_and_stale_files(tmp_path: Path) -> None:
    record = ProcessRecord("prometheus", 123, 123, ("prometheus", "--x"), 456, "/l")
    record.save(tmp_path / "run" / "p.json")
    assert ProcessRecord.load(tmp_path / "run" / "p.json") == record
    (tmp_path / "bad.json").write_text("{not json")
    assert ProcessRecord.load(tmp_path / "bad.json") is None
    assert ProcessRecord.load(tmp_path / "missing.json") is None


def test_find_binary_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackError, match="package 'prometheus-alertmanager'"):
        find_binary("alertmanager")


# --- working directory --------------------------------------------------------------


def test_generate_writes_only_when_something_changed(tmp_path: Path) -> None:
    workdir = Workdir(tmp_path / "wd")
    assert workdir.generate(Settings(), render) is True
    inode = (workdir.stack / "docker-compose.yml").stat().st_ino
    assert workdir.generate(Settings(), render) is False
    assert (workdir.stack / "docker-compose.yml").stat().st_ino == inode
    changed = settings_from_mapping({"stack": {"scrape_interval": "5s"}})
    assert workdir.generate(changed, render) is True


def test_generate_refuses_to_replace_a_directory_it_did_not_write(tmp_path: Path) -> None:
    workdir = Workdir(tmp_path)
    (tmp_path / "stack").mkdir()
    (tmp_path / "stack" / "precious.txt").write_text("user data")
    with pytest.raises(StackError, match="not generated by meshwatch"):
        workdir.generate(Settings(), render)
    assert (tmp_path / "stack" / "precious.txt").read_text() == "user data"


def test_the_generate_command_replaces_only_its_own_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = tmp_path / "project"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("user data")
    assert main(["generate", "--out", str(foreign)]) == 1
    assert "not generated by meshwatch" in capsys.readouterr().err
    assert [p.name for p in foreign.iterdir()] == ["precious.txt"]

    out = tmp_path / "out"
    assert main(["generate", "--out", str(out)]) == 0
    assert main(["generate", "--out", str(out)]) == 0, "its own earlier output is replaced"
    assert (out / "docker-compose.yml").is_file()


def test_workdir_defaults_to_settings_under_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert Workdir.for_settings(Settings()).root == tmp_path / ".meshwatch"
    assert Workdir.for_settings(Settings(), "elsewhere").stack == tmp_path / "elsewhere" / "stack"


# --- commands without anything running ----------------------------------------------


def test_status_and_down_with_nothing_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["status"]) == 1
    assert "nothing was started" in capsys.readouterr().out
    assert main(["down"]) == 0
    assert "nothing was running" in capsys.readouterr().out


def test_a_runner_built_without_a_renderer_can_stop_but_not_start(tmp_path: Path) -> None:
    """Down and status build runners with no renderer; only starting needs one."""
    native = NativeStack(Settings(), tmp_path / "wd")
    assert native.stop() == []
    with pytest.raises(StackError, match="built without a renderer"):
        native.prepare()
    recorder = Recorder()
    with pytest.raises(StackError, match="built without a renderer"):
        ComposeStack(Settings(), tmp_path / "wd", run=recorder).start()
    assert not any("up" in command for command in recorder.commands)
