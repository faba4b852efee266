"""The envelope both Alertmanager webhook endpoints check, in-process.

The alert sink (``tests/unit/test_alert_sink_parsing.py``) and the
remediation receiver (``tests/unit/test_remediation.py``) test what each keeps;
this is what they share: ``meshwatch/webhook/payload.py``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from meshwatch.remediation import PayloadError as RemediationPayloadError
from meshwatch.remediation import parse
from meshwatch.stack.alert_sink import PayloadError as SinkPayloadError
from meshwatch.stack.alert_sink import parse_notification
from meshwatch.webhook.payload import PayloadError, alert_object, envelope, status, string_map
from tests.integration.helpers.notifications import FIRING


def _body(**changes: Any) -> bytes:
    payload = copy.deepcopy(FIRING)
    payload.update(changes)
    return json.dumps(payload).encode()


def test_a_notification_gives_its_object_and_alerts() -> None:
    payload, alerts = envelope(_body())
    assert payload["status"] == "firing"
    assert alerts == FIRING["alerts"]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"{", "body is not JSON"),
        (b"\xff", "body is not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"[]", "must be a JSON object"),
        (_body(version="3"), "version must be '4'"),
        (_body(status="pending"), "status must be 'firing' or 'resolved', got 'pending'"),
        (_body(alerts={}), "alerts must be a list"),
    ],
)
def test_anything_else_names_its_first_problem(body: bytes, why: str) -> None:
    with pytest.raises(PayloadError, match=why.replace("(", r"\(").replace("[", r"\[")):
        envelope(body)


def test_an_alert_must_be_an_object_with_a_status() -> None:
    assert alert_object(0, {"status": "resolved"}) == {"status": "resolved"}
    with pytest.raises(PayloadError, match=r"alerts\[2\] must be an object"):
        alert_object(2, "firing")
    with pytest.raises(PayloadError, match=r"alerts\[1\]\.status must be"):
        alert_object(1, {"status": None})


def test_label_maps_are_strings_to_strings_and_absent_is_empty() -> None:
    assert string_map(None, "labels") == {}
    assert string_map({"a": "b"}, "labels") == {"a": "b"}
    for bad in ({"a": 1}, ["a"], "a=b"):
        with pytest.raises(PayloadError, match="labels must be an object of strings"):
            string_map(bad, "labels")


def test_a_status_is_one_of_two() -> None:
    assert (status("firing", "s"), status("resolved", "s")) == ("firing", "resolved")
    with pytest.raises(PayloadError, match="s must be 'firing' or 'resolved', got 'FIRING'"):
        status("FIRING", "s")


def test_both_endpoints_raise_the_shared_error_with_the_same_message() -> None:
    """One class and one wording, so a user reading either log sees the same problem."""
    assert SinkPayloadError is RemediationPayloadError is PayloadError
    alert = {"status": "firing", "labels": {"alertname": 3}, "fingerprint": "f", "startsAt": "t"}
    body = _body(alerts=[alert])
    with pytest.raises(PayloadError) as sink:
        parse_notification("critical", body, "now")
    with pytest.raises(PayloadError) as remediation:
        parse(body)
    assert str(sink.value) == str(remediation.value)
    assert str(sink.value) == "alerts[0].labels must be an object of strings"
