"""The remediation receiver over HTTP: the token, the bounds, and any bytes never a 5xx.

A real :class:`RemediationReceiver` on a random loopback port, spoken to with
``http.client`` as Alertmanager would. Its action is a user-defined one that
records its calls, so "nothing happened" is an observed fact.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshwatch.remediation import (
    RemediationError,
    RemediationReceiver,
    Remediator,
    read_token,
    start_remediation,
)
from meshwatch.settings import RemediationPolicy, RemediationSettings
from tests.unit.test_remediation import Recording, alert, body

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token-for-tests"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n", encoding="utf-8")
    return path


def _settings(token_file: Path, **overrides: Any) -> RemediationSettings:
    values: dict[str, Any] = {
        "dry_run": False,
        "token_file": str(token_file),
        "policies": (
            RemediationPolicy(alert="HighRingBreachRate", action="pause_agent", agents=("*",)),
        ),
        "max_body_bytes": 4096,
        "request_timeout_seconds": 1.0,
    }
    values.update(overrides)
    return RemediationSettings(**values)


@pytest.fixture
def served(token_file: Path) -> Iterator[tuple[RemediationReceiver, Recording]]:
    action = Recording()
    receiver = start_remediation(_settings(token_file), [action], port=0)
    try:
        yield receiver, action
    finally:
        receiver.stop()


def post(
    receiver: RemediationReceiver, data: bytes, *, token: str | None = TOKEN
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request("POST", "/alerts", body=data, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def requests_by_code(receiver: RemediationReceiver) -> dict[str, float]:
    family = next(f for f in receiver.metric_families() if f.metric.name.endswith("requests_total"))
    return {key[0]: value for key, value in family.samples.items()}  # type: ignore[misc]


def test_an_alertmanager_notification_acts_and_answers_the_decisions(
    served: tuple[RemediationReceiver, Recording],
) -> None:
    receiver, action = served
    status, answer = post(receiver, body(alert()))
    assert status == 200
    assert [d["result"] for d in answer["decisions"]] == ["acted"]
    assert len(action.calls) == 1


@pytest.mark.parametrize(
    "token", [None, "wrong", TOKEN + "x", ""], ids=["missing", "wrong", "longer", "empty"]
)
def test_a_missing_or_wrong_token_is_401_counted_and_does_nothing(
    served: tuple[RemediationReceiver, Recording], token: str | None
) -> None:
    receiver, action = served
    status, _ = post(receiver, body(alert()), token=token)
    assert status == 401
    assert action.calls == []
    assert requests_by_code(receiver)["401"] == 1


def test_a_malformed_body_is_400_and_nothing_happens(
    served: tuple[RemediationReceiver, Recording],
) -> None:
    receiver, action = served
    status, answer = post(receiver, b'{"version": "4", "status": "firing", "alerts": [1]}')
    assert status == 400 and "alerts[0]" in answer["error"]
    assert action.calls == []


def test_a_body_over_the_limit_is_refused_unread(
    served: tuple[RemediationReceiver, Recording],
) -> None:
    receiver, action = served
    status, _ = post(receiver, b" " * 5000)
    assert status == 413 and action.calls == []


def test_a_client_that_trickles_its_body_is_cut_off_at_the_request_timeout(
    served: tuple[RemediationReceiver, Recording],
) -> None:
    receiver, _ = served
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=5) as sock:
        sock.sendall(
            b"POST /alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + TOKEN.encode()
            + b"\r\nContent-Length: 100\r\n\r\n{"
        )
        # Without the server's 1 s bound this recv would hit the client's own 5 s timeout.
        answer = sock.recv(4096)
    assert answer.split(b" ", 2)[1] == b"408", answer


def test_an_unreadable_or_empty_token_file_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(RemediationError, match="cannot read remediation token file"):
        read_token(tmp_path / "absent")
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    with pytest.raises(RemediationError, match="is empty"):
        read_token(tmp_path / "empty")


def test_a_policy_with_an_unregistered_action_stops_the_start(token_file: Path) -> None:
    remediator = Remediator(
        _settings(token_file, policies=(RemediationPolicy(alert="X", action="nope"),)), []
    )
    with pytest.raises(RemediationError, match="not registered: nope"):
        RemediationReceiver(remediator, read_token(token_file), port=0)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
_near_notifications = st.fixed_dictionaries(
    {
        "version": st.sampled_from(["4", 4, "3"]),
        "status": st.sampled_from(["firing", "resolved", "x"]),
    },
    optional={"alerts": st.lists(_json, max_size=3), "receiver": _json, "groupKey": _json},
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.binary(max_size=600)
    | _json.map(lambda v: json.dumps(v).encode())
    | _near_notifications.map(lambda v: json.dumps(v).encode())
)
def test_any_body_gets_2xx_or_4xx_never_a_5xx_and_never_an_action(
    served: tuple[RemediationReceiver, Recording], data: bytes
) -> None:
    receiver, action = served
    status, _ = post(receiver, data)
    assert 200 <= status < 500
    assert action.calls == []
