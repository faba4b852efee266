"""The alert sink's parsing and file reading, in-process (its HTTP server: tests/integration)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshwatch.cli import main
from meshwatch.stack.alert_sink import PayloadError, parse_notification, read_tail
from tests.integration.helpers.notifications import FIRING


def test_read_tail_reads_only_what_it_needs_across_blocks(tmp_path: Path) -> None:
    log = tmp_path / "notes.jsonl"
    log.write_text("".join(json.dumps({"n": i, "pad": "x" * 50}) + "\n" for i in range(500)))
    assert [r["n"] for r in read_tail(log, 3, block=64)] == [497, 498, 499]
    assert len(read_tail(log, 1000, block=64)) == 500
    assert read_tail(tmp_path / "missing.jsonl", 5) == []


def test_parse_notification_keeps_the_fields_a_reader_needs() -> None:
    record = parse_notification("warning", json.dumps(FIRING).encode(), "t")
    assert set(record) == {
        "received_at",
        "receiver",
        "status",
        "groupKey",
        "truncatedAlerts",
        "alerts",
    }
    with pytest.raises(PayloadError, match="alerts\\[0\\] must be an object"):
        parse_notification("warning", json.dumps({**FIRING, "alerts": [1]}).encode(), "t")


def test_the_command_reports_an_unusable_log_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["alert-sink", "--port", "0", "--log", str(tmp_path)]) == 1
    assert f"cannot start on {tmp_path}" in capsys.readouterr().err
