"""Alertmanager's webhook body (payload version 4): the envelope and the maps inside it.

Both receivers answer 400 to a body that is not a notification, so both read it
strictly and say exactly what is wrong. This module checks what they agree on;
each then keeps the fields it needs from the checked values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

WEBHOOK_VERSION = "4"
Status = Literal["firing", "resolved"]
STATUSES: tuple[Status, ...] = ("firing", "resolved")


class PayloadError(ValueError):
    """A body that is not an Alertmanager webhook notification; the message says why."""


def status(value: object, where: str) -> Status:
    """``value`` as a notification's or an alert's status."""
    for known in STATUSES:
        if value == known:
            return known
    raise PayloadError(f"{where} must be 'firing' or 'resolved', got {value!r}")


def string_map(value: object, where: str) -> dict[str, str]:
    """A label or annotation map (absent is empty); anything but strings to strings is refused."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise PayloadError(f"{where} must be an object of strings")
    return dict(value)


def alert_object(index: int, value: object) -> Mapping[str, Any]:
    """Alert ``index`` of a notification: an object whose status is checked."""
    where = f"alerts[{index}]"
    if not isinstance(value, dict):
        raise PayloadError(f"{where} must be an object")
    status(value.get("status"), f"{where}.status")
    return value


def envelope(body: bytes) -> tuple[Mapping[str, Any], list[Any]]:
    """The notification in ``body`` and its list of alerts, each still to be read.

    Checks that the body is a JSON object of Alertmanager's webhook version,
    with a status and a list of alerts.
    """
    try:
        payload: Any = json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise PayloadError(f"body is not JSON: {exc}") from None
    except RecursionError:
        raise PayloadError("body is nested too deeply") from None
    if not isinstance(payload, dict):
        raise PayloadError("body must be a JSON object")
    if payload.get("version") != WEBHOOK_VERSION:
        raise PayloadError(
            f"version must be {WEBHOOK_VERSION!r} (Alertmanager's webhook format), "
            f"got {payload.get('version')!r}"
        )
    status(payload.get("status"), "status")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("alerts must be a list")
    return payload, alerts


__all__ = [
    "STATUSES",
    "WEBHOOK_VERSION",
    "PayloadError",
    "Status",
    "alert_object",
    "envelope",
    "status",
    "string_map",
]
