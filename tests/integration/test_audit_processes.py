"""The audit trail across process boundaries: an interpreter that exits, a writer SIGKILLed mid-burst.

Integration tier: each test runs the trail in a child process (a fresh
interpreter, a multiprocessing spawn). Everything else about the trail is
tested in-process in ``tests/unit/test_audit.py``, whose event factory the
children import.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from meshwatch.instrumentation.audit import AuditReader, AuditTrail
from tests.unit.test_audit import T0, event

pytestmark = pytest.mark.integration


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


def test_interpreter_exit_flushes_a_trail_that_was_never_closed(db: Path) -> None:
    code = (
        "import sys\n"
        "from tests.unit.test_audit import event, PARKED\n"
        "from meshwatch.instrumentation.audit import AuditTrail\n"
        "trail = AuditTrail(sys.argv[1], **PARKED)\n"
        "for i in range(500):\n"
        "    trail.record(event(i))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(db)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert AuditReader(db).count() == 500


KILL_BATCH = 50
KILL_QUEUE = 200


def _emit_until_killed(path: str, emitted, dropped, written, ready) -> None:  # type: ignore[no-untyped-def]
    """Child process: emit numbered events as fast as possible until SIGKILLed.

    After each record() it publishes how many events it handed over, how many
    the full queue dropped, and how many the trail counts as committed.
    """
    trail = AuditTrail(path, queue_size=KILL_QUEUE, batch_size=KILL_BATCH, flush_interval=0.05)
    i = 0
    while True:
        trail.record(event(i, at=T0 + timedelta(microseconds=i)))
        i += 1
        emitted.value = i
        dropped.value = trail.dropped("queue_full")
        written.value = trail.written
        if written.value >= 5 * KILL_BATCH:
            ready.set()


def test_a_killed_writer_loses_at_most_the_queue_and_one_batch(db: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    emitted, dropped, written = (ctx.RawValue("q", 0) for _ in range(3))
    ready = ctx.Event()
    child = ctx.Process(target=_emit_until_killed, args=(str(db), emitted, dropped, written, ready))
    child.start()
    try:
        assert ready.wait(120), "the child never got going"
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
    finally:
        if child.is_alive():
            child.kill()
            child.join()
    assert child.exitcode == -signal.SIGKILL

    AuditTrail(db).close()  # it opens (and closes) cleanly after the crash
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        numbers = [
            json.loads(p)["i"] for (p,) in conn.execute("SELECT payload FROM events ORDER BY seq")
        ]
    finally:
        conn.close()
    assert integrity == "ok"
    assert len(numbers) >= written.value, "every event counted as written survived the kill"
    assert all(a < b for a, b in itertools.pairwise(numbers)), "committed in order"
    accepted = emitted.value - dropped.value
    # The child may die between publishing ``emitted`` and ``dropped``: one event of slack.
    assert accepted - len(numbers) <= KILL_QUEUE + KILL_BATCH + 1
