"""Background delivery at the edges of a process: interpreter exit and fork.

Integration tier: each case runs a small program in its own interpreter (a
fork of the test process, or its exit, would take pytest with it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from meshwatch.instrumentation.audit import AuditReader

pytestmark = pytest.mark.integration

_PRELUDE = """
import json, os, sys, threading
from hypervisor import ExecutionRing, RingElevationManager
from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.integrations.agent_hypervisor import instrument

bus = HypervisorEventBus()
manager = RingElevationManager()
handle = instrument(manager, bus=bus)

def grant(agent):
    return manager.request_elevation(
        agent, "s1", ExecutionRing.RING_3_SANDBOX, ExecutionRing.RING_2_STANDARD, trust_score=0.9
    )
"""


def _run(program: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_PRELUDE) + textwrap.dedent(program)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_events_still_queued_at_interpreter_exit_are_delivered() -> None:
    """A script that never closes its handle still gets every event out before it exits."""
    done = _run(
        """
        bus.subscribe(None, lambda event: print(event.event_type.value, event.agent_did, flush=True))
        for n in range(20):
            grant(f"did:mesh:{n}")
        # no flush(), no close(): the process ends here
        """
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == [f"ring.elevated did:mesh:{n}" for n in range(20)]


def test_at_exit_the_queue_is_drained_before_the_audit_trail_flushes(tmp_path: Path) -> None:
    """Exit handlers run last-registered first: the audit trail's must run after delivery's."""
    db = tmp_path / "audit.db"
    done = _run(
        f"""
        from meshwatch.instrumentation import AuditTrail
        AuditTrail({str(db)!r}).attach(bus)
        for n in range(20):
            grant(f"did:mesh:{{n}}")
        # neither the handle nor the trail is closed: the process ends here
        """
    )
    assert done.returncode == 0, done.stderr
    with AuditReader(db) as reader:
        assert reader.count() == 20


def test_a_forked_child_delivers_its_own_events_with_a_worker_of_its_own() -> None:
    done = _run(
        """
        grant("did:mesh:parent")
        assert handle.flush()
        pid = os.fork()
        if pid == 0:
            grant("did:mesh:child")
            delivered = handle.flush(5)
            worker = handle._delivery.thread
            report = {
                "delivered": delivered,
                "agents": [e.agent_did for e in bus.all_events],
                "worker_alive": worker is not None and worker.is_alive(),
            }
            print(json.dumps(report), flush=True)
            handle.close()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        grant("did:mesh:parent-after")
        assert handle.flush(5)
        print(json.dumps({"parent": [e.agent_did for e in bus.all_events]}), flush=True)
        sys.exit(os.waitstatus_to_exitcode(status))
        """
    )
    assert done.returncode == 0, done.stderr
    child, parent = (json.loads(line) for line in done.stdout.splitlines())
    assert child == {
        "delivered": True,
        "agents": ["did:mesh:parent", "did:mesh:child"],
        "worker_alive": True,
    }
    assert parent == {"parent": ["did:mesh:parent", "did:mesh:parent-after"]}
