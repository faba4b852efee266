"""Audit schema 2: ``parent_event_id`` is stored, and schema 1 files keep working.

``data/audit-v1.db`` is a real schema 1 trail, written by the schema 1 code
(meshwatch at a0ec63b, before this change): an ``AuditTrail`` recorded a
session, a breach, a kill (event id ``00000000000000k1``) and one saga handoff
whose ``parent_event_id`` was the kill's, which schema 1 had no column for;
then ``VACUUM`` compacted it. The file was made with::

    git archive a0ec63b meshwatch | tar -x -C /tmp/v1
    PYTHONPATH=/tmp/v1 python -c '...AuditTrail(out).record(e) for the four events; close()'
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meshwatch.cli import main
from meshwatch.instrumentation.audit import (
    SCHEMA_VERSION,
    AuditDatabaseError,
    AuditFilter,
    AuditReader,
    AuditTrail,
)
from meshwatch.instrumentation.events import EventType, HypervisorEvent

V1_FILE = Path(__file__).parent / "data" / "audit-v1.db"
KILL = "00000000000000k1"
V1_EVENTS = [
    ("security.saga_handoff", "00000000000000h1"),
    ("security.agent_killed", KILL),
    ("ring.breach_detected", "00000000000000b1"),
    ("session.created", "00000000000000a1"),
]


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    copy = tmp_path / "audit.db"
    shutil.copyfile(V1_FILE, copy)
    return copy


def _version(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def _columns(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        return [row[1] for row in conn.execute("PRAGMA table_info(events)")]
    finally:
        conn.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _handoff(at: datetime, parent: str) -> HypervisorEvent:
    return HypervisorEvent(
        EventType.SAGA_HANDOFF,
        session_id="session-2",
        agent_did="did:mesh:rogue",
        payload={"saga_id": "saga-2", "step_id": "step-1", "status": "handed_off"},
        timestamp=at,
        parent_event_id=parent,
    )


def test_the_fixture_is_a_schema_1_file() -> None:
    assert SCHEMA_VERSION == 2
    assert _version(V1_FILE) == 1
    assert "parent_event_id" not in _columns(V1_FILE)


def test_a_reader_reads_a_v1_file_as_it_is_and_changes_nothing(v1: Path) -> None:
    before = _digest(v1)
    with AuditReader(v1) as reader:
        records = reader.query()
        assert [(r.event_type, r.event_id) for r in records] == V1_EVENTS
        assert all(r.parent_event_id is None for r in records), "schema 1 kept no parents"
        assert "parent_event_id" not in records[0].to_dict()
        assert reader.query(AuditFilter(parent_event_id=KILL)) == []
        assert reader.count(AuditFilter(parent_event_id=KILL)) == 0
    assert _version(v1) == 1 and _digest(v1) == before, "read-only: not upgraded, not touched"
    assert sorted(p.name for p in v1.parent.iterdir()) == ["audit.db"], "nothing created beside it"


def test_a_writer_upgrades_a_v1_file_in_place_and_keeps_every_row(v1: Path) -> None:
    trail = AuditTrail(v1)
    try:
        later = datetime(2026, 1, 6, tzinfo=UTC)
        kill = HypervisorEvent(EventType.AGENT_KILLED, agent_did="did:mesh:rogue", timestamp=later)
        trail.record(kill)
        trail.record(_handoff(later, kill.event_id))
        assert trail.flush(10)
    finally:
        trail.close()
    assert _version(v1) == 2 and "parent_event_id" in _columns(v1)
    with AuditReader(v1) as reader:
        records = reader.query()
        assert [(r.event_type, r.event_id) for r in records[2:]] == V1_EVENTS, "old rows kept"
        assert all(r.parent_event_id is None for r in records[2:])
        (child,) = reader.query(AuditFilter(parent_event_id=kill.event_id))
        assert child.event_type == "security.saga_handoff" and child.to_event().parent_event_id
        assert child.to_dict()["parent_event_id"] == kill.event_id
        plan = reader.query_plan(AuditFilter(parent_event_id=kill.event_id))
        assert any("events_by_parent" in step for step in plan), plan


def test_a_failed_upgrade_leaves_the_file_at_schema_1(v1: Path) -> None:
    # Something in the way of the upgrade's index: its transaction must roll back whole.
    conn = sqlite3.connect(v1)
    conn.execute("CREATE INDEX events_by_parent ON events (event_id)")
    conn.close()
    with pytest.raises(AuditDatabaseError, match="cannot upgrade the audit database from schema 1"):
        AuditTrail(v1)
    assert _version(v1) == 1
    assert "parent_event_id" not in _columns(v1), "the column added in the same transaction is gone"
    with AuditReader(v1) as reader:
        assert [(r.event_type, r.event_id) for r in reader.query()] == V1_EVENTS


def test_a_new_trail_stores_parents_and_the_cli_shows_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "audit.db"
    at = datetime(2026, 1, 6, tzinfo=UTC)
    kill = HypervisorEvent(EventType.AGENT_KILLED, agent_did="did:mesh:rogue", timestamp=at)
    with AuditTrail(db) as trail:
        trail.record(kill)
        trail.record(_handoff(at, kill.event_id))
    assert _version(db) == 2
    assert main(["audit", "query", "--db", str(db)]) == 0
    header, handoff, killed = capsys.readouterr().out.splitlines()
    assert header.split()[:3] == ["TIME", "ID", "PARENT"]
    assert handoff.split()[2:4] == [kill.event_id, "security.saga_handoff"]
    assert killed.split()[1:4] == [kill.event_id, "-", "security.agent_killed"]
    assert main(["audit", "query", "--db", str(db), "--parent", kill.event_id, "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert f'"parent_event_id": "{kill.event_id}"' in line


def test_the_cli_table_has_no_id_columns_when_nothing_has_a_parent(
    v1: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "query", "--db", str(v1), "--limit", "1"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.split() == ["TIME", "TYPE", "AGENT", "SESSION", "TRACE", "PAYLOAD"]
