"""Alertmanager's webhook body (payload version 4), read strictly into frozen values.

The receiver acts on what this module returns, so it accepts only what
Alertmanager really sends and says exactly what is wrong with anything else:
a body that does not parse is answered 400 and nothing happens. Each alert
keeps what a decision needs: its status, labels, annotations, ``startsAt`` and
``fingerprint`` (the pair that makes a decision idempotent, since Alertmanager
re-sends a firing alert every ``repeat_interval`` with the same two values).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from meshwatch.webhook.payload import (
    PayloadError,
    Status,
    alert_object,
    envelope,
    status,
    string_map,
)

# Alertmanager's fingerprints are 16 hex digits; anything much longer is not one.
_MAX_FINGERPRINT = 64


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


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise PayloadError(f"{where} must be a string, got {type(value).__name__}")
    return value


def _frozen(value: object, where: str) -> Mapping[str, str]:
    return MappingProxyType(string_map(value, where))


def _alert(index: int, value: object) -> Alert:
    alert = alert_object(index, value)
    where = f"alerts[{index}]"
    fingerprint = _text(alert.get("fingerprint"), f"{where}.fingerprint")
    if not fingerprint or len(fingerprint) > _MAX_FINGERPRINT:
        raise PayloadError(f"{where}.fingerprint must be 1 to {_MAX_FINGERPRINT} characters")
    return Alert(
        status=status(alert.get("status"), f"{where}.status"),
        labels=_frozen(alert.get("labels"), f"{where}.labels"),
        annotations=_frozen(alert.get("annotations"), f"{where}.annotations"),
        starts_at=_text(alert.get("startsAt"), f"{where}.startsAt"),
        fingerprint=fingerprint,
    )


def parse(body: bytes) -> Notification:
    """The notification in ``body``; :class:`PayloadError` naming the first problem."""
    payload, alerts = envelope(body)
    return Notification(
        receiver=_text(payload.get("receiver", ""), "receiver"),
        status=status(payload.get("status"), "status"),
        group_key=_text(payload.get("groupKey", ""), "groupKey"),
        alerts=tuple(_alert(i, alert) for i, alert in enumerate(alerts)),
    )


__all__ = ["Alert", "Notification", "PayloadError", "parse"]
