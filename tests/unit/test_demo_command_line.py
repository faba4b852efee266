"""The demo's flags are spelled once: what the stack runs the demo with, its parser reads back."""

from __future__ import annotations

import argparse

from meshwatch.demo import command_line
from meshwatch.settings import Duration, Settings
from meshwatch.settings.stack import DemoSettings


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command_line.add_arguments(parser)
    assert argv[0] == "demo"
    return parser.parse_args(argv[1:])


def test_the_argv_the_stack_runs_parses_back_to_the_settings() -> None:
    demo = DemoSettings(
        seed=7,
        scenario="incident",
        duration=Duration("90s"),
        incident_duration=Duration("30s"),
    )
    args = _parse(
        command_line.argv(
            demo,
            metrics_port=8123,
            addr="0.0.0.0",
            otlp_endpoint="http://tempo:4318",
            audit_dir="/data/audit",
        )
    )
    assert (args.seed, args.scenario, args.metrics_port, args.addr) == (
        7,
        "incident",
        8123,
        "0.0.0.0",
    )
    assert (args.duration, args.incident_duration) == (90.0, 30.0)
    assert (args.otlp_endpoint, args.audit_dir) == ("http://tempo:4318", "/data/audit")


def test_unset_options_keep_the_command_defaults() -> None:
    args = _parse(command_line.argv(Settings().stack.demo, metrics_port=0))
    assert args.addr == "127.0.0.1" and args.otlp_endpoint is None and args.audit_dir is None
    assert args.duration is None and args.incident_duration is None
