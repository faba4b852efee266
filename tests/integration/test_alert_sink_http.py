"""The built-in alert sink: real HTTP requests to a real server on a free loopback port.

Integration tier: every test here serves on a loopback port or starts the
``meshwatch alert-sink`` command. Parsing and the file's tail are tested
in-process in ``tests/unit/test_alert_sink_parsing.py``.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshwatch.cli import main
from meshwatch.stack.alert_sink import AlertSink, read_tail
from tests.integration.helpers.notifications import FIRING

pytestmark = pytest.mark.integration


class Client:
    """HTTP requests to one sink, answering (status, decoded JSON body)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "", parts.port or 80

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        return response.status, json.loads(data) if data else None

    def post(self, path: str, payload: Any) -> tuple[int, Any]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.request("POST", path, body, {"Content-Type": "application/json"})

    def notifications(self, limit: int = 20) -> list[dict[str, Any]]:
        status, body = self.request("GET", f"/notifications?limit={limit}")
        assert status == 200, body
        return body["notifications"]


@pytest.fixture
def out() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def sink(tmp_path: Path, out: io.StringIO) -> Iterator[AlertSink]:
    with AlertSink(tmp_path / "logs" / "notes.jsonl", port=0, max_body=64 * 1024, out=out) as s:
        yield s


@pytest.fixture
def client(sink: AlertSink) -> Client:
    return Client(sink.url)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_notification_lands_in_the_file_in_notifications_and_in_the_log(
    sink: AlertSink, client: Client, out: io.StringIO
) -> None:
    assert client.request("GET", "/-/ready")[0] == 200
    assert client.post("/critical", FIRING) == (200, {"alerts": 1, "status": "recorded"})

    [line] = _lines(sink.log_path)
    assert line["receiver"] == "critical"
    assert line["status"] == "firing"
    assert line["groupKey"] == FIRING["groupKey"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["received_at"])
    assert line["alerts"] == [
        {
            "alertname": "SagaEscalated",
            "severity": "critical",
            "status": "firing",
            "labels": FIRING["alerts"][0]["labels"],
            "summary": "A saga run by did:mesh:publisher was escalated to a human",
            "runbook_url": "https://example.org/runbooks/SagaEscalated.md",
            "startsAt": "2026-01-01T10:00:00.000Z",
            "endsAt": "0001-01-01T00:00:00Z",
        }
    ]
    assert client.notifications() == [line]
    assert out.getvalue().endswith(
        "/critical FIRING SagaEscalated [critical] agent_did=did:mesh:publisher: "
        "A saga run by did:mesh:publisher was escalated to a human\n"
    )


def test_notifications_answers_the_newest_n_oldest_first(sink: AlertSink, client: Client) -> None:
    for receiver in ("critical", "warning", "critical"):
        resolved = {**FIRING, "status": "resolved", "receiver": receiver}
        assert client.post(f"/{receiver}", resolved)[0] == 200
    assert [n["receiver"] for n in client.notifications(limit=2)] == ["warning", "critical"]
    assert len(client.notifications(limit=1000)) == 3


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1001"])
def test_a_bad_limit_is_refused(client: Client, limit: str) -> None:
    status, body = client.request("GET", f"/notifications?limit={limit}")
    assert status == 400 and "limit" in body["error"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b'{"version": "4", "alerts": [', "not JSON", id="truncated-json"),
        pytest.param(b"\xff\xfe\x00garbage", "not JSON", id="not-utf8"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "nested", id="deeply-nested"),
        pytest.param(b'["a list"]', "JSON object", id="not-an-object"),
        pytest.param(
            json.dumps({**FIRING, "version": "3"}).encode(), "version must be '4'", id="version"
        ),
        pytest.param(json.dumps({**FIRING, "status": "ok"}).encode(), "status", id="status"),
        pytest.param(json.dumps({**FIRING, "alerts": {}}).encode(), "alerts must", id="alerts"),
        pytest.param(
            json.dumps(
                {**FIRING, "alerts": [{**FIRING["alerts"][0], "labels": {"a": 1}}]}
            ).encode(),
            "alerts[0].labels",
            id="label-values",
        ),
    ],
)
def test_a_malformed_body_gets_400_is_logged_and_the_server_keeps_serving(
    sink: AlertSink, client: Client, out: io.StringIO, body: bytes, reason: str
) -> None:
    sink.max_body = max(sink.max_body, len(body))
    status, answer = client.post("/critical", body)
    assert status == 400
    assert reason in answer["error"]
    assert f"rejected POST /critical from 127.0.0.1: HTTP 400: {answer['error']}" in out.getvalue()
    assert sink.log_path.read_text() == "", "nothing malformed is recorded"
    assert client.post("/critical", FIRING)[0] == 200, "the next notification is served"
    assert len(client.notifications()) == 1


def test_an_oversized_body_is_refused_unread(
    sink: AlertSink, client: Client, out: io.StringIO
) -> None:
    conn = http.client.HTTPConnection(client.host, client.port, timeout=10)
    try:
        # Announce a body over the limit and send none of it: the answer must not wait for it.
        conn.putrequest("POST", "/critical")
        conn.putheader("Content-Length", str(sink.max_body + 1))
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413
        assert "over" in json.loads(response.read())["error"]
    finally:
        conn.close()
    assert "HTTP 413" in out.getvalue()
    assert sink.log_path.read_text() == ""
    assert client.post("/critical", FIRING)[0] == 200


def test_a_body_without_a_length_is_refused(client: Client) -> None:
    with socket.create_connection((client.host, client.port), timeout=10) as sock:
        sock.sendall(b"POST /critical HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        answer = sock.makefile("rb").readline()
    assert answer.split()[1] == b"411"


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/"), ("POST", "/a/b"), ("POST", "/../x"), ("GET", "/critical")]
)
def test_other_paths_are_404(client: Client, method: str, path: str) -> None:
    body = json.dumps(FIRING).encode() if method == "POST" else None
    assert client.request(method, path, body)[0] == 404


def test_concurrent_notifications_are_whole_lines(sink: AlertSink, client: Client) -> None:
    def send(i: int) -> None:
        alert = {**FIRING["alerts"][0], "labels": {"alertname": f"A{i}", "severity": "warning"}}
        assert client.post("/warning", {**FIRING, "alerts": [alert] * 20})[0] == 200

    threads = [threading.Thread(target=send, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    lines = _lines(sink.log_path)
    assert sorted(line["alerts"][0]["alertname"] for line in lines) == sorted(
        f"A{i}" for i in range(16)
    )


def test_a_restarted_sink_serves_the_history_in_its_file(tmp_path: Path, out: io.StringIO) -> None:
    log = tmp_path / "notes.jsonl"
    with AlertSink(log, port=0, out=out) as first:
        for _ in range(3):
            assert Client(first.url).post("/critical", FIRING)[0] == 200
    with log.open("a") as handle:
        handle.write('{"cut short by a cra')  # a crash mid-write must not break the next start
    with AlertSink(log, port=0, keep=2, out=out) as second:
        assert len(Client(second.url).notifications(limit=2)) == 2
        assert Client(second.url).post("/warning", FIRING)[0] == 200
        assert [n["receiver"] for n in Client(second.url).notifications(limit=2)] == [
            "critical",
            "warning",
        ]
    receivers = [r["receiver"] for r in read_tail(log, 10)]
    assert receivers == ["critical", "critical", "critical", "warning"], "the cut line is skipped"


# --- the command ------------------------------------------------------------------


def _start_command(log: Path) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "meshwatch", "alert-sink", "--port", "0", "--log", str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert child.stdout is not None
    first = child.stdout.readline()
    match = re.search(r"listening on (http://\S+),", first)
    if match is None:
        child.kill()
        child.wait()
        raise AssertionError(f"unexpected first line: {first!r}")
    return child, match.group(1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_command_serves_until_a_signal_then_stops_cleanly(
    tmp_path: Path, sig: signal.Signals
) -> None:
    log = tmp_path / "logs" / "alert-notifications.jsonl"
    child, url = _start_command(log)
    try:
        assert Client(url).post("/critical", FIRING)[0] == 200
        child.send_signal(sig)
        output, _ = child.communicate(timeout=15)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0
    assert "FIRING SagaEscalated [critical]" in output
    assert output.rstrip().endswith("meshwatch alert-sink: stopped")
    assert len(_lines(log)) == 1


def test_the_command_reports_a_taken_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        code = main(["alert-sink", "--port", str(port), "--log", str(tmp_path / "n.jsonl")])
    assert code == 1
    assert f"cannot start on 127.0.0.1:{port}" in capsys.readouterr().err


def test_a_notification_that_cannot_be_stored_gets_500_so_alertmanager_retries(
    sink: AlertSink, client: Client, out: io.StringIO
) -> None:
    sink._file.close()
    sink._file = sink.log_path.open(encoding="utf-8")  # writes fail: a full or read-only disk
    status, body = client.post("/critical", FIRING)
    assert status == 500 and "cannot write" in body["error"]
    assert "HTTP 500" in out.getvalue()
    assert client.notifications() == [], "only what was stored is served"


# --- fuzzing: any body is answered 2xx or 4xx, never 5xx, and the sink keeps serving ------

_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)  # lone surrogates and control characters included
    | st.sampled_from(["4", "firing", "resolved", "critical", "alertname", "\n", "\ud800"])
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["status", "labels", "annotations", "alerts", "version", "startsAt"])
            | st.text(max_size=6),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)
_ALERT = st.fixed_dictionaries(
    {"status": st.sampled_from(["firing", "resolved"])},
    optional={
        "labels": st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=3) | _JSON,
        "annotations": st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=3),
        "startsAt": _JSON,
        "endsAt": _JSON,
    },
)
_NOTIFICATION = st.fixed_dictionaries(
    {
        "version": st.sampled_from(["4", "4", "3", 4]),
        "status": st.sampled_from(["firing", "resolved", "unknown"]),
        "alerts": st.lists(_ALERT | _JSON, max_size=3),
    },
    optional={"groupKey": _JSON, "truncatedAlerts": _JSON},
)


def _as_body(document: object) -> bytes:
    return json.dumps(document).encode()


@pytest.fixture(scope="module")
def fuzzed_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AlertSink, Client]]:
    # Strict UTF-8, as stdout is: a line that cannot be encoded would fail here too.
    log = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    path = tmp_path_factory.mktemp("fuzz") / "notes.jsonl"
    with AlertSink(path, port=0, max_body=64 * 1024, out=log) as running:
        yield running, Client(running.url)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=300)
    | _JSON.map(_as_body)
    | _NOTIFICATION.map(_as_body)
    | st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
def test_any_body_is_answered_2xx_or_4xx_and_the_sink_keeps_serving(
    fuzzed_sink: tuple[AlertSink, Client], body: bytes
) -> None:
    _, client = fuzzed_sink
    conn = http.client.HTTPConnection(client.host, client.port, timeout=10)
    try:
        conn.request("POST", "/critical", body=body, headers={"Content-Type": "application/json"})
        status = conn.getresponse().status
    finally:
        conn.close()
    assert 200 <= status < 500, f"HTTP {status} for {body[:80]!r}"
    assert client.request("GET", "/-/ready")[0] == 200


def test_a_label_with_a_newline_or_a_lone_surrogate_is_logged_on_one_line(
    tmp_path: Path,
) -> None:
    log = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    notification = json.loads(json.dumps(FIRING))
    notification["alerts"][0]["labels"]["agent_did"] = "did:mesh:a\nFIRING Fake [critical]\ud800"
    with AlertSink(tmp_path / "n.jsonl", port=0, out=log) as running:
        status, _ = Client(running.url).post("/critical", notification)
        log.flush()
        lines = log.buffer.getvalue().decode("utf-8").splitlines()  # type: ignore[attr-defined]
    assert status == 200
    (line,) = [x for x in lines if "SagaEscalated" in x]
    assert "agent_did=did:mesh:a\\nFIRING Fake [critical]\\ud800" in line
