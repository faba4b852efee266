"""Payload sizes: what an event's payload costs in memory, and capping the ones too big.

The bus keeps its newest events, and so their payloads, in memory; a count
alone does not bound that (3,000 events with 1 MB payloads hold 3 GB). So each
payload is measured once (a flat one, strings and numbers, when its event is
built, by the same rules as :func:`payload_bytes`; any other by the bus that
first emits it), the bus truncates one that is larger than its cap, and keeps a
byte budget as well as a count.

The measure is an estimate, cheap and bounded in work: the length of every
string and bytes value, 8 bytes per container slot and per number, and
``sys.getsizeof`` for anything else (an array that owns its buffer reports it).
The walk stops as soon as it passes the limit it was given, so a huge payload
costs no more to measure than one just over the cap, and a cyclic one ends.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from meshwatch.instrumentation.events import HypervisorEvent

DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024
# What a capped payload keeps of each value: values up to this size survive
# (ids, counts, small fields), bigger ones become a marker.
KEEP_VALUE_BYTES = 1024
TRUNCATED_KEY = "_truncated_bytes"

_SCALARS = frozenset({int, float, bool, type(None)})
_MAX_NODES = 1_000_000  # a walk visits at most this many values (cycles end too)
_MEASURE_LIMIT = 2**40  # "measure it all", for the one-off size of a payload being cut
_CONTAINERS = (dict, list, tuple, set, frozenset)


def payload_bytes(payload: Mapping[str, Any], limit: int) -> int:
    """Estimated bytes ``payload`` holds; any value above ``limit`` means "over the limit"."""
    size = 0
    for key, value in payload.items():
        size += _key_bytes(key, limit - size)
        kind = type(value)
        if kind is str:
            size += len(value)
        elif kind in _SCALARS:
            size += 8
        else:
            size += _deep_bytes(value, limit - size)
        if size > limit:
            return size
    return size


def _key_bytes(key: object, limit: int) -> int:
    """A payload key's estimate: its len(), as an event counts it when it measures a flat payload.

    A key without a len() (an int) is measured like a value, instead of
    failing the emit.
    """
    try:
        return len(key)  # type: ignore[arg-type]
    except TypeError:
        return _deep_bytes(key, limit)


def _deep_bytes(value: object, limit: int) -> int:
    """The estimate for one non-scalar value, walking containers until past ``limit``."""
    size = nodes = 0
    stack = [value]
    while stack and nodes < _MAX_NODES:
        nodes += 1
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bytes or kind is bytearray:
            size += len(item)  # type: ignore[arg-type]
        elif kind in _SCALARS:
            size += 8
        elif isinstance(item, _CONTAINERS):
            if isinstance(item, dict):
                size += 16 * len(item)
                stack.extend(item.keys())
                stack.extend(item.values())
            else:
                size += 8 * len(item)
                stack.extend(item)
        else:
            try:
                size += sys.getsizeof(item)
            except Exception:  # a foreign object's __sizeof__ may raise
                size += 64
        if size > limit:
            break
    return size


def capped(event: HypervisorEvent, max_bytes: int) -> HypervisorEvent:
    """``event`` with its payload cut to about ``max_bytes`` (call it when the payload is over).

    Values up to :data:`KEEP_VALUE_BYTES` are kept (so the ids and small fields
    that collectors and queries read survive), larger ones become
    ``"<truncated: ~N bytes>"``, and ``_truncated_bytes`` holds the estimate of
    the whole. If the kept values still exceed ``max_bytes`` only that count
    remains. Same id, time, type and identifiers: it is the same event, smaller.
    """
    size = payload_bytes(event.payload, _MEASURE_LIMIT)
    kept: dict[str, Any] = {TRUNCATED_KEY: size}
    total = 0
    for key, value in event.payload.items():
        value_size = payload_bytes({key: value}, _MEASURE_LIMIT)
        if value_size > KEEP_VALUE_BYTES:
            kept[key] = f"<truncated: ~{value_size} bytes>"
            total += _key_bytes(key, _MEASURE_LIMIT) + 40  # the key and the marker
        else:
            kept[key] = value
            total += value_size
    if total > max_bytes:
        kept = {TRUNCATED_KEY: size}
    return HypervisorEvent(
        event.event_type,
        event.session_id,
        event.agent_did,
        event.causal_trace_id,
        kept,
        event.event_id,
        event.timestamp,
    )


__all__ = [
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "KEEP_VALUE_BYTES",
    "TRUNCATED_KEY",
    "capped",
    "payload_bytes",
]
