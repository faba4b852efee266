"""A failing integration run leaves no process behind: proven by failing one on purpose.

A pytest subprocess runs two tests on a live stack (Prometheus, Alertmanager,
demo): one fails an assertion, one hangs until pytest-timeout kills it. Both
must fail, and afterwards not one process they started may be alive, whether
found by the pids the stack recorded or by anything mentioning its working
directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.integration.helpers.processes import alive, live_processes_mentioning

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]

FAILING_RUN = textwrap.dedent(
    """
    import json, os, time
    from pathlib import Path

    import pytest

    from tests.integration.helpers.poll import wait_until
    from tests.integration.helpers.stack import running_stack
    from tests.integration.helpers.webhook_receiver import WebhookReceiver

    PROBE = Path(os.environ["MESHWATCH_ORPHAN_PROBE"])


    @pytest.fixture
    def stack(tmp_path):
        with WebhookReceiver() as hooks, running_stack(tmp_path, hooks) as live:
            record = {"workdir": str(live.native.workdir.root), "pids": live.pids()}
            with PROBE.open("a") as probe:
                probe.write(json.dumps(record) + "\\n")
            yield live


    def test_fails_an_assertion(stack):
        assert stack.pids()["demo"] < 0, "deliberate failure with the stack running"


    @pytest.mark.timeout(8)
    def test_hangs_until_the_timeout_kills_it(stack):
        wait_until(lambda: False, timeout=600, what="something that never happens")
    """
)


def test_a_failing_run_leaves_no_process_behind(tmp_path: Path, native_binaries: None) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    test_file = inner / "test_deliberately_failing.py"
    test_file.write_text(FAILING_RUN, encoding="utf-8")
    probe = tmp_path / "started.jsonl"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*command, "--rootdir", str(inner), str(test_file)],
        cwd=REPO_ROOT,
        env={**os.environ, "MESHWATCH_ORPHAN_PROBE": str(probe)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "2 failed" in output, output
    assert "deliberate failure" in output
    assert "Timeout" in output

    started = [json.loads(line) for line in probe.read_text().splitlines()]
    assert len(started) == 2, output
    for record in started:
        assert set(record["pids"]) == {"prometheus", "alertmanager", "demo"}
        survivors = {name: pid for name, pid in record["pids"].items() if alive(pid)}
        assert not survivors, f"still running after the failed run: {survivors}"
        assert not live_processes_mentioning(record["workdir"])
