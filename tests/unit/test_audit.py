"""The audit trail: persisted off the emitting thread, survives restarts and crashes, indexed queries."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from meshwatch.cli import main
from meshwatch.instrumentation.audit import (
    AuditDatabaseError,
    AuditFilter,
    AuditReader,
    AuditTrail,
    normalise_trace_id,
)
from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.instrumentation.catalogue import (
    AUDIT_EVENTS_DROPPED,
    AUDIT_EVENTS_WRITTEN,
    AUDIT_QUEUE_DEPTH,
)
from meshwatch.instrumentation.drops import event_drops
from meshwatch.instrumentation.events import EventType, HypervisorEvent
from meshwatch.instrumentation.stores import MetricSource
from meshwatch.instrumentation.trace import CausalTraceId
from tests.integration.helpers.poll import wait_until

T0 = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
# Parks the writer: it only wakes on a full batch or after an hour.
PARKED = {"batch_size": 1_000_000, "flush_interval": 3600.0}
# Never waits for room: a full queue drops at once (the writer is parked, so nothing races).
NO_WAIT = {**PARKED, "block_timeout": 0}


def event(
    i: int,
    *,
    agent: str = "did:mesh:a",
    kind: EventType = EventType.RING_ASSIGNED,
    session: str = "s1",
    trace: CausalTraceId | None = None,
    at: datetime | None = None,
    payload: dict | None = None,
) -> HypervisorEvent:
    return HypervisorEvent(
        event_type=kind,
        agent_did=agent,
        session_id=session,
        causal_trace_id=trace,
        payload={"i": i} if payload is None else payload,
        timestamp=at or T0 + timedelta(seconds=i),
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
def trail(db: Path) -> Iterator[AuditTrail]:
    trail = AuditTrail(db)
    yield trail
    trail.close()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- writing, restarting, querying --------------------------------------------------------


def test_events_on_the_bus_survive_a_restart_and_query_back_newest_first(db: Path) -> None:
    bus = HypervisorEventBus()
    trace = CausalTraceId()
    with AuditTrail(db) as trail:
        trail.attach(bus)
        for i in range(5):
            bus.emit(event(i, agent="did:mesh:a" if i % 2 else "did:mesh:b", trace=trace))
    assert not trail.flush(), "a closed trail has nothing to flush"

    with AuditReader(db) as reader:
        records = reader.query()
        assert [r.payload["i"] for r in records] == [4, 3, 2, 1, 0]
        newest = records[0]
        assert newest.to_dict() == {
            **event(4, trace=trace).to_dict(),
            "event_id": newest.event_id,
            "agent_did": "did:mesh:b",
            "trace_id": trace.trace_id_hex32,
        }
        assert newest.to_event().event_type is EventType.RING_ASSIGNED
        assert [r.payload["i"] for r in reader.query(AuditFilter(agent_did="did:mesh:a"))] == [3, 1]

    with AuditTrail(db) as reopened:  # appending after a restart keeps the old rows
        reopened.record(event(5))
    assert AuditReader(db).count() == 6


def test_every_filter_limit_and_offset(trail: AuditTrail) -> None:
    traced = CausalTraceId()
    for i in range(20):
        trail.record(
            event(
                i,
                agent=f"did:mesh:{i % 2}",
                kind=EventType.RING_BREACH_DETECTED if i % 5 == 0 else EventType.RING_ASSIGNED,
                session=f"s{i % 4}",
                trace=traced.child() if i >= 15 else None,
            )
        )
    assert trail.flush(10)

    def ids(limit: int = 100, offset: int = 0, **filters: object) -> list[int]:
        where = AuditFilter(**filters)  # type: ignore[arg-type]
        return [r.payload["i"] for r in trail.reader.query(where, limit=limit, offset=offset)]

    assert ids(agent_did="did:mesh:1", limit=3) == [19, 17, 15]
    assert ids(event_type=EventType.RING_BREACH_DETECTED) == [15, 10, 5, 0]
    assert ids(event_type="ring.breach_detected", offset=1, limit=2) == [10, 5]
    assert ids(session_id="s2") == [18, 14, 10, 6, 2]
    assert ids(trace_id=traced.trace_id_hex32) == [19, 18, 17, 16, 15]
    assert ids(trace_id=traced.trace_id) == [19, 18, 17, 16, 15], "the 12-hex form works too"
    assert ids(trace_id=traced.child().full_id, limit=1) == [19]
    assert ids(since=T0 + timedelta(seconds=17)) == [19, 18, 17]
    assert ids(since=T0 + timedelta(seconds=3), until=T0 + timedelta(seconds=5)) == [4, 3]
    assert ids(until=(T0 + timedelta(seconds=2)).timestamp()) == [1, 0]
    assert ids(since=datetime(2025, 1, 15, 10, 0, 18)) == [19, 18], "naive means UTC"
    assert ids(agent_did="did:mesh:0", event_type="ring.breach_detected") == [10, 0]
    assert ids(agent_did="did:mesh:0", event_type="ring.breach_detected", session_id="s0") == [0]
    assert ids(limit=0) == []
    assert trail.reader.count(AuditFilter(agent_did="did:mesh:0")) == 10
    with pytest.raises(ValueError, match="limit"):
        trail.reader.query(limit=-1)
    with pytest.raises(ValueError, match="not a trace id"):
        AuditFilter(trace_id="xyz")


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "events_by_time"),
        ({"agent_did": "did:mesh:a"}, "events_by_agent"),
        ({"event_type": "ring.assigned"}, "events_by_type"),
        ({"session_id": "s1"}, "events_by_session"),
        ({"trace_id": "0" * 20 + "a" * 12}, "events_by_trace"),
        ({"since": T0, "until": T0 + timedelta(hours=1)}, "events_by_time"),
        ({"agent_did": "did:mesh:a", "since": T0}, "events_by_agent"),
    ],
    ids=["all", "agent", "type", "session", "trace", "time-range", "agent-since"],
)
def test_queries_walk_an_index_and_never_sort(trail: AuditTrail, filters: dict, index: str) -> None:
    plan = " | ".join(trail.reader.query_plan(AuditFilter(**filters)))
    assert f"USING INDEX {index}" in plan
    assert "TEMP B-TREE" not in plan, "newest-first comes from the index order"


def test_payloads_json_cannot_hold_are_stored_stringified(trail: AuditTrail) -> None:
    trail.record(event(0, payload={"when": T0, "tags": {"x"}, "nan": float("nan"), "ok": 1}))
    assert trail.flush(10)
    (record,) = trail.reader.query()
    assert record.payload == {"when": T0.isoformat(), "tags": ["x"], "nan": "nan", "ok": 1}


# --- never on the emitting thread, never blocking ------------------------------------------


def test_record_only_queues_the_writer_thread_persists(db: Path) -> None:
    with AuditTrail(db, **PARKED) as trail:
        for i in range(10):
            trail.record(event(i))
        assert trail.reader.count() == 0, "nothing was written on the emitting thread"
        assert trail.queue_depth == 10
        assert trail.flush(10)
        assert trail.reader.count() == 10 and trail.written == 10 and trail.queue_depth == 0


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_the_event_that_completes_a_batch_wakes_the_parked_writer(
    db: Path, batch_size: int
) -> None:
    # record() only appends below a threshold; the batch_size-th event must still wake
    # the writer (its flush_interval is an hour, so nothing else would).
    with AuditTrail(db, batch_size=batch_size, flush_interval=3600.0) as trail:
        for i in range(batch_size - 1):
            trail.record(event(i))
        assert trail.queue_depth == batch_size - 1 and trail.written == 0
        trail.record(event(batch_size - 1))
        wait_until(lambda: trail.written == batch_size, timeout=30, what="the batch written")
        assert trail.queue_depth == 0


def test_with_no_block_timeout_a_full_queue_drops_and_counts_and_close_flushes_the_rest(
    db: Path,
) -> None:
    trail = AuditTrail(db, queue_size=5, **NO_WAIT)
    started = time.perf_counter()
    for i in range(12):
        trail.record(event(i))
    assert time.perf_counter() - started < 5, "record never waits for the writer"
    assert trail.dropped("queue_full") == 7
    trail.close()
    assert trail.written == 5
    assert [r.payload["i"] for r in AuditReader(db).query()] == [4, 3, 2, 1, 0]
    trail.record(event(99))
    assert trail.dropped("closed") == 1


@contextmanager
def writes_blocked(db: Path) -> Iterator[None]:
    """Another connection holds the write lock: the writer's next BEGIN waits (a stuck disk)."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def test_a_burst_far_beyond_the_queue_loses_nothing(db: Path) -> None:
    bus = HypervisorEventBus(max_events=100)
    burst = 30_000
    with AuditTrail(db, queue_size=64, batch_size=16).attach(bus) as trail:
        for i in range(burst):
            bus.emit(event(i))
    assert trail.dropped("queue_full") == 0
    assert trail.written == burst
    reader = AuditReader(db)
    assert reader.count() == burst
    assert [r.payload["i"] for r in reader.query(limit=3)] == [burst - 1, burst - 2, burst - 3]


def test_several_emitting_threads_in_a_burst_lose_nothing(db: Path) -> None:
    per_thread, threads = 5_000, 4
    with AuditTrail(db, queue_size=32, batch_size=8) as trail:
        workers = [
            threading.Thread(
                target=lambda t=t: [
                    trail.record(event(t * per_thread + i)) for i in range(per_thread)
                ]
            )
            for t in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
    assert trail.dropped("queue_full") == 0 and trail.written == per_thread * threads
    assert AuditReader(db).count() == per_thread * threads


def test_a_stuck_writer_costs_one_block_timeout_then_drops_are_counted_at_once(db: Path) -> None:
    AuditTrail(db).close()
    trail = AuditTrail(db, queue_size=4, batch_size=1, block_timeout=0.5)
    try:
        with writes_blocked(db):
            trail.record(event(0))  # the writer takes it and waits on the lock
            wait_until(lambda: trail.queue_depth == 0, timeout=30, what="the writer to take it")
            for i in range(1, 5):
                trail.record(event(i))  # fills the queue; no wait
            started = time.monotonic()
            trail.record(event(5))  # waits block_timeout, then is dropped
            assert trail.dropped("queue_full") == 1
            assert time.monotonic() - started >= 0.5, "it waited for room first"
            started = time.monotonic()
            for i in range(6, 106):
                trail.record(event(i))
            assert trail.dropped("queue_full") == 101
            assert time.monotonic() - started < 50 * 0.5, "a stalled trail drops without waiting"
        assert trail.flush(60), "the writer recovers once the lock is released"
        trail.record(event(106))  # room again: accepted
    finally:
        trail.close()
    assert trail.written == 6, "0..4 and 106"
    assert trail.written + trail.dropped("queue_full") == 107


def test_large_payloads_are_stored_truncated_and_counted(db: Path) -> None:
    before = event_drops("audit", "payload_truncated")
    with AuditTrail(db, max_payload_bytes=4096) as trail:
        trail.record(event(0, payload={"saga_id": "s-1", "blob": "x" * 100_000, "n": 3}))
        trail.record(event(1, payload={"many": list(range(5_000))}))
        trail.record(event(2, payload={"small": "y" * 100}))
    newest, middle, oldest = AuditReader(db).query()
    assert oldest.payload == {
        "_truncated_bytes": len(json.dumps({"saga_id": "s-1", "blob": "x" * 100_000, "n": 3})),
        "saga_id": "s-1",
        "blob": "<truncated: 100002 bytes>",
        "n": 3,
    }
    assert middle.payload["many"].startswith("<truncated: ")
    assert newest.payload == {"small": "y" * 100}
    assert event_drops("audit", "payload_truncated") - before == 2
    with pytest.raises(ValueError, match="max_payload_bytes"):
        AuditTrail(db, max_payload_bytes=0)


def test_detach_stops_recording(trail: AuditTrail) -> None:
    bus = HypervisorEventBus()
    trail.attach(bus)
    bus.emit(event(0))
    trail.detach()
    bus.emit(event(1))
    assert trail.flush(10)
    assert trail.reader.count() == 1


def test_it_is_a_metric_source(db: Path) -> None:
    with AuditTrail(db, queue_size=1, **NO_WAIT) as trail:
        trail.record(event(0))
        trail.record(event(1))
        families = {f.metric: f.samples for f in trail.metric_families()}
        assert isinstance(trail, MetricSource)
        assert families[AUDIT_QUEUE_DEPTH] == {(): 1.0}
        assert families[AUDIT_EVENTS_DROPPED] == {("queue_full",): 1.0}
        assert trail.flush(10)
        families = {f.metric: f.samples for f in trail.metric_families()}
        assert families[AUDIT_EVENTS_WRITTEN] == {(): 1.0}
        assert families[AUDIT_QUEUE_DEPTH] == {(): 0.0}


# --- retention ----------------------------------------------------------------------------


def test_retention_by_row_count(db: Path) -> None:
    with AuditTrail(db, max_rows=10, batch_size=7) as trail:
        for i in range(25):
            trail.record(event(i))
    reader = AuditReader(db)
    assert reader.count() == 10
    assert [r.payload["i"] for r in reader.query(limit=1)] == [24]


def test_retention_by_age(db: Path) -> None:
    now = datetime.now(UTC)
    with AuditTrail(db, max_age=timedelta(hours=1)) as trail:
        trail.record(event(0, at=now - timedelta(hours=3)))
        trail.record(event(1, at=now - timedelta(minutes=59)))
        trail.record(event(2, at=now))
    assert [r.payload["i"] for r in AuditReader(db).query()] == [2, 1]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"queue_size": 0},
        {"batch_size": True},
        {"flush_interval": 0},
        {"max_age": -1},
        {"max_rows": 0},
        {"synchronous": "OFF"},
    ],
    ids=["queue_size", "batch_size", "flush_interval", "max_age", "max_rows", "synchronous"],
)
def test_bad_settings_are_rejected_up_front(db: Path, kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        AuditTrail(db, **kwargs)
    assert not db.exists(), "nothing is created for a trail that cannot start"


# --- corrupt and foreign files ---------------------------------------------------------------


def test_a_corrupt_file_is_refused_by_name_and_left_untouched(db: Path) -> None:
    db.write_bytes(b"this is not a database, but it is someone's file\n" * 100)
    before = sha(db)
    with pytest.raises(AuditDatabaseError, match="not a meshwatch audit database") as info:
        AuditTrail(db)
    assert str(db) in str(info.value) and info.value.path == db
    with pytest.raises(AuditDatabaseError):
        AuditReader(db)
    assert sha(db) == before
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]


def test_another_applications_sqlite_database_is_refused_and_left_untouched(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE events (x)")
    conn.execute("INSERT INTO events VALUES (1)")
    conn.commit()
    conn.close()
    before = sha(db)
    with pytest.raises(AuditDatabaseError, match="application_id"):
        AuditTrail(db)
    assert sha(db) == before


def test_a_database_from_a_newer_meshwatch_is_refused(db: Path) -> None:
    AuditTrail(db).close()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = sha(db)
    with pytest.raises(AuditDatabaseError, match="newer meshwatch"):
        AuditTrail(db)
    assert sha(db) == before


def test_missing_files_and_directories(tmp_path: Path) -> None:
    with pytest.raises(AuditDatabaseError, match="no audit database"):
        AuditReader(tmp_path / "absent.db")
    with pytest.raises(AuditDatabaseError, match="cannot open"):
        AuditTrail(tmp_path / "no" / "such" / "dir.db")
    with pytest.raises(AuditDatabaseError, match="not a file"):
        AuditTrail(tmp_path)


def test_a_database_with_damaged_pages_is_refused_at_open_by_name(db: Path) -> None:
    with AuditTrail(db) as trail:
        for i in range(3_000):
            trail.record(event(i, payload={"text": f"{i}" * 50}))
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 20 * page
    data[10 * page : 12 * page] = b"\xa5" * (2 * page)  # two pages in the middle
    db.write_bytes(bytes(data))
    before = sha(db)
    with pytest.raises(AuditDatabaseError, match="corrupt meshwatch audit database") as info:
        AuditTrail(db)
    assert info.value.path == db and str(db) in str(info.value)
    assert sha(db) == before
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]


def test_a_closed_trail_leaves_only_its_database_and_a_query_creates_nothing(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with AuditTrail(db) as trail:
        trail.record(event(0))
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name], "no -wal or -shm left"
    before = sha(db)
    assert main(["audit", "query", "--db", str(db), "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    with AuditReader(db) as reader:
        assert reader.count() == 1
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]
    assert sha(db) == before


def test_a_live_trail_can_be_queried_while_it_writes(db: Path) -> None:
    with AuditTrail(db) as trail:
        trail.record(event(0))
        assert trail.flush(30)
        with AuditReader(db) as reader:  # -wal exists: an ordinary read-only open sees it
            assert reader.count() == 1
            trail.record(event(1))
            assert trail.flush(30)
            assert reader.count() == 2


def test_the_file_is_sqlite_in_wal_mode_marked_as_ours(db: Path) -> None:
    AuditTrail(db).close()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x4D534857
    conn.close()


def test_trace_id_spellings() -> None:
    trace = CausalTraceId()
    expected = trace.trace_id_hex32
    for spelling in (trace.trace_id, expected, trace.full_id, trace.to_traceparent().upper()):
        assert normalise_trace_id(spelling) == expected


# --- the CLI ---------------------------------------------------------------------------------------


def test_cli_query_as_table_and_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = CausalTraceId()
    with AuditTrail(db) as trail:
        for i in range(3):
            trail.record(event(i, agent=f"did:mesh:{i}", trace=trace))
    assert main(["audit", "query", "--db", str(db), "--json", "--limit", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["payload"]["i"] for line in lines] == [2, 1]

    assert main(["audit", "query", "--db", str(db), "--agent", "did:mesh:1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["TIME", "TYPE", "AGENT", "SESSION", "TRACE", "PAYLOAD"]
    assert len(out) == 2 and "did:mesh:1" in out[1] and '{"i": 1}' in out[1]

    since = (T0 + timedelta(seconds=1)).isoformat()
    assert main(["audit", "query", "--db", str(db), "--since", since, "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["audit", "query", "--db", str(db), "--trace", trace.trace_id, "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_cli_filters_by_type_session_until_and_offset(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with AuditTrail(db) as trail:
        for i in range(6):
            kind = EventType.RING_BREACH_DETECTED if i % 2 else EventType.RING_ASSIGNED
            trail.record(event(i, kind=kind, session=f"s{i % 3}"))

    def found(*argv: str) -> list[int]:
        assert main(["audit", "query", "--db", str(db), "--json", *argv]) == 0
        return [json.loads(x)["payload"]["i"] for x in capsys.readouterr().out.splitlines()]

    assert found("--type", "ring.breach_detected") == [5, 3, 1]
    assert found("--session", "s0") == [3, 0]
    assert found("--until", (T0 + timedelta(seconds=2)).isoformat()) == [1, 0]
    assert found("--offset", "4") == [1, 0]
    assert main(["audit", "query", "--db", str(db), "--session", "nope"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "no stored events match" in captured.err


def test_cli_relative_since(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with AuditTrail(db) as trail:
        trail.record(event(0, at=datetime.now(UTC) - timedelta(hours=2)))
        trail.record(event(1, at=datetime.now(UTC) - timedelta(minutes=5)))
    assert main(["audit", "query", "--db", str(db), "--since", "1h", "--json"]) == 0
    assert [json.loads(x)["payload"]["i"] for x in capsys.readouterr().out.splitlines()] == [1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "yesterday"], "--since"),
        (["--trace", "nope"], "not a trace id"),
        (["--limit", "-3"], "limit"),
        (["--limit", "9" * 30], "limit is too large"),
        (["--offset", "9" * 30], "offset is too large"),
        (["--since", "99999999999999d"], "--since '99999999999999d': that is too long ago"),
        (["--since", f"{'9' * 400}s"], "that is too long ago"),
        (["--until", "12345678901234567w"], "--until"),
        (["--type", "ring.nope"], "--type 'ring.nope': not an event type"),
    ],
    ids=[
        "since",
        "trace",
        "limit",
        "limit-overflow",
        "offset-overflow",
        "since-overflow",
        "since-inf",
        "until-overflow",
        "type",
    ],
)
def test_cli_bad_arguments_are_one_line_errors(
    db: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    AuditTrail(db).close()
    assert main(["audit", "query", "--db", str(db), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_cli_corrupt_database_is_a_one_line_error(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db.write_bytes(b"garbage" * 1000)
    before = sha(db)
    assert main(["audit", "query", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert str(db) in err and "Traceback" not in err
    assert sha(db) == before
