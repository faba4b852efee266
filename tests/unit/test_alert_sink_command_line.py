"""The alert sink's flags are spelled once: what the stack runs the sink with, its parser reads back."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from meshwatch.cli import main
from meshwatch.settings import settings_from_mapping
from meshwatch.stack import alert_sink_command_line
from meshwatch.stack.alert_sink import NOTIFICATIONS_FILE
from meshwatch.stack.compose import ALERT_SINK_DATA, CONTAINER_PORTS, alert_sink_command
from meshwatch.stack.ports import ALERT_SINK
from meshwatch.stack.runner.native import NativeStack


def _parse(argv: list[str]) -> argparse.Namespace:
    """``argv`` read by the sink's own parser, as ``meshwatch alert-sink`` reads it."""
    parser = argparse.ArgumentParser(exit_on_error=False)
    alert_sink_command_line.add_arguments(parser, default_log=Path("default.jsonl"))
    assert argv[0] == alert_sink_command_line.COMMAND
    return parser.parse_args(argv[1:])


def test_the_argv_parses_back_to_what_it_was_built_from() -> None:
    args = _parse(alert_sink_command_line.argv(port=9123, addr="::", log=Path("/data/n.jsonl")))
    assert (args.port, args.addr, args.log) == (9123, "::", "/data/n.jsonl")


def test_the_compose_service_listens_on_the_network_and_logs_to_its_volume() -> None:
    args = _parse(alert_sink_command())
    assert (args.port, args.addr) == (CONTAINER_PORTS[ALERT_SINK], "0.0.0.0")
    assert args.log == f"{ALERT_SINK_DATA}/{NOTIFICATIONS_FILE}"


def test_the_native_runner_runs_it_on_its_port_and_bind_address(tmp_path: Path) -> None:
    settings = settings_from_mapping(
        {"stack": {"bind_address": "::", "ports": {"alert_sink": 19199}}}
    )
    stack = NativeStack(settings, tmp_path / "work")
    argv = stack._argv(ALERT_SINK)
    assert argv[1:3] == ["-m", "meshwatch"]
    args = _parse(argv[3:])
    assert (args.port, args.addr) == (19199, "::")
    assert args.log == str(stack.workdir.notifications_file)


def test_unset_options_keep_the_command_defaults() -> None:
    args = _parse([alert_sink_command_line.COMMAND])
    assert (args.addr, args.log) == ("127.0.0.1", "default.jsonl")


@pytest.mark.parametrize(
    ("port", "why"),
    [
        ("70000", "must be 0 to 65535, got 70000"),
        ("-1", "must be 0 to 65535"),
        ("http", "not a port"),
    ],
)
def test_a_bad_port_is_one_line_and_exit_2(
    port: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before the flags had a type, 70000 reached bind() and raised OverflowError unhandled."""
    with pytest.raises(SystemExit) as stopped:
        main([alert_sink_command_line.COMMAND, "--port", port])
    assert stopped.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("meshwatch alert-sink: argument --port: ") and why in lines[0]
