"""Alertmanager's webhook body (payload version 4), read strictly into frozen values.

The receiver acts on what this module returns, so it accepts only what
Alertmanager really sends and says exactly what is wrong with anything else:
a body that does not parse is answered 400 and nothing happens. Each alert
keeps what a decision needs: its status, labels, annotations, ``startsAt`` and
``fingerprint`` (the pair that makes a decision idempotent, since Alertmanager
re-sends a firing alert every ``repeat_interval`` with the same two values).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

WEBHOOK_VERSION = "4"
Status = Literal["firing", "resolved"]
_STATUSES: tuple[Status, ...] = ("firing", "resolved")
# Alertmanager's fingerprints are 16 hex digits; anything much longer is not one.
_MAX_FINGERPRINT = 64


class PayloadError(ValueError):
    """A body that is not an Alertmanager webhook notification; the message says why."""


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert of a notification, as the receiver decides on it."""

    status: Status
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str
    fingerprint: str

    @property
    def name(self) -> str:
        """The ``alertname`` label ("" when an alert has none)."""
        return self.labels.get("alertname", "")

    @property
    def key(self) -> tuple[str, str]:
        """What identifies one firing of one alert across Alertmanager's re-sends."""
        return (self.fingerprint, self.starts_at)


@dataclass(frozen=True, slots=True)
class Notification:
    """A webhook body: the receiver it was sent to and its alerts."""

    receiver: str
    status: Status
    group_key: str
    alerts: tuple[Alert, ...]


def _status(value: object, where: str) -> Status:
    for status in _STATUSES:
        if value == status:
            return status
    raise PayloadError(f"{where} must be 'firing' or 'resolved', got {value!r}")


def _strings(value: object, where: str) -> Mapping[str, str]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise PayloadError(f"{where} must be an object of strings")
    return MappingProxyType(dict(value))


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise PayloadError(f"{where} must be a string, got {type(value).__name__}")
    return value


def _alert(index: int, value: object) -> Alert:
    where = f"alerts[{index}]"
    if not isinstance(value, dict):
        raise PayloadError(f"{where} must be an object")
    fingerprint = _text(value.get("fingerprint"), f"{where}.fingerprint")
    if not fingerprint or len(fingerprint) > _MAX_FINGERPRINT:
        raise PayloadError(f"{where}.fingerprint must be 1 to {_MAX_FINGERPRINT} characters")
    return Alert(
        status=_status(value.get("status"), f"{where}.status"),
        labels=_strings(value.get("labels"), f"{where}.labels"),
        annotations=_strings(value.get("annotations"), f"{where}.annotations"),
        starts_at=_text(value.get("startsAt"), f"{where}.startsAt"),
        fingerprint=fingerprint,
    )


def parse(body: bytes) -> Notification:
    """The notification in ``body``; :class:`PayloadError` naming the first problem."""
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
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("alerts must be a list")
    return Notification(
        receiver=_text(payload.get("receiver", ""), "receiver"),
        status=_status(payload.get("status"), "status"),
        group_key=_text(payload.get("groupKey", ""), "groupKey"),
        alerts=tuple(_alert(i, alert) for i, alert in enumerate(alerts)),
    )
