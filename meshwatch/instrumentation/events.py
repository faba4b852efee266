"""Typed, immutable hypervisor events: what every component emits on the bus.

An event is a frozen value: its payload is copied into a read-only mapping at
construction, so a subscriber cannot change what another subscriber (or the
audit trail) sees, and the emitter cannot change it afterwards either.

Construction is on the agent's hot path, so the auto fields are cheap and
stored compactly, and formatted only when read. The event id is a serial
number from a per-process counter with a random start, spread over 64 bits by
a per-process salt (not a UUID: ``uuid4`` costs several times more, and ids
only need to be unique within a retention window); 16 hex characters when
read. The timestamp is the integer nanoseconds of ``time.time_ns()``; when
read, a UTC ``datetime`` truncated to the microsecond (what
``datetime.now(UTC)`` gives).
"""

from __future__ import annotations

import copy
import enum
import itertools
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from meshwatch.instrumentation.trace import CausalTraceId


class EventCategory(enum.StrEnum):
    """The eight families of hypervisor events (the part of a value before the dot)."""

    SESSION = "session"
    RING = "ring"
    LIABILITY = "liability"
    SAGA = "saga"
    VFS = "vfs"
    SECURITY = "security"
    AUDIT = "audit"
    VERIFICATION = "verification"


class EventType(enum.StrEnum):
    """Every event the hypervisor emits; values are ``<category>.<name>``."""

    # Session lifecycle
    SESSION_CREATED = "session.created"
    SESSION_JOINED = "session.joined"
    SESSION_ACTIVATED = "session.activated"
    SESSION_TERMINATED = "session.terminated"
    SESSION_ARCHIVED = "session.archived"
    # Execution rings (privilege levels, 0 = root .. 3 = sandbox)
    RING_ASSIGNED = "ring.assigned"
    RING_ELEVATED = "ring.elevated"
    RING_DEMOTED = "ring.demoted"
    RING_ELEVATION_EXPIRED = "ring.elevation_expired"
    RING_BREACH_DETECTED = "ring.breach_detected"
    # A refused elevation request (with its reason): a security signal of its own
    RING_ELEVATION_DENIED = "ring.elevation_denied"
    # The breach detector's per-agent circuit breaker
    RING_BREAKER_TRIPPED = "ring.breaker_tripped"
    RING_BREAKER_RESET = "ring.breaker_reset"
    # Liability: vouching, slashing, quarantine
    VOUCH_CREATED = "liability.vouch_created"
    VOUCH_RELEASED = "liability.vouch_released"
    SLASH_EXECUTED = "liability.slash_executed"
    FAULT_ATTRIBUTED = "liability.fault_attributed"
    QUARANTINE_ENTERED = "liability.quarantine_entered"
    QUARANTINE_RELEASED = "liability.quarantine_released"
    # Sagas (multi-step transactions with compensation)
    SAGA_CREATED = "saga.created"
    SAGA_STEP_STARTED = "saga.step_started"
    SAGA_STEP_COMMITTED = "saga.step_committed"
    SAGA_STEP_FAILED = "saga.step_failed"
    SAGA_COMPENSATING = "saga.compensating"
    SAGA_COMPLETED = "saga.completed"
    SAGA_FAILED = "saga.failed"
    SAGA_ESCALATED = "saga.escalated"
    SAGA_FANOUT_STARTED = "saga.fanout_started"
    SAGA_FANOUT_RESOLVED = "saga.fanout_resolved"
    SAGA_CHECKPOINT_SAVED = "saga.checkpoint_saved"
    # Virtual file system
    VFS_WRITE = "vfs.write"
    VFS_DELETE = "vfs.delete"
    VFS_SNAPSHOT = "vfs.snapshot"
    VFS_RESTORE = "vfs.restore"
    VFS_CONFLICT = "vfs.conflict"
    # Security
    RATE_LIMITED = "security.rate_limited"
    AGENT_KILLED = "security.agent_killed"
    # An in-flight saga step of a killed agent, handed to a substitute or compensated
    SAGA_HANDOFF = "security.saga_handoff"
    IDENTITY_VERIFIED = "security.identity_verified"
    IDENTITY_REJECTED = "security.identity_rejected"
    # A remediation decision on an alert (meshwatch.remediation): acted, dry run or refused
    REMEDIATION_DECIDED = "security.remediation_decided"
    # Audit trail
    AUDIT_DELTA_CAPTURED = "audit.delta_captured"
    AUDIT_COMMITTED = "audit.committed"
    AUDIT_EXPORTED = "audit.exported"
    AUDIT_GC_COLLECTED = "audit.gc_collected"
    # Verification
    BEHAVIOR_DRIFT = "verification.behavior_drift"
    HISTORY_VERIFIED = "verification.history_verified"

    @property
    def category(self) -> EventCategory:
        """The family this event belongs to, e.g. ``EventCategory.RING``."""
        return _CATEGORY[self]

    @classmethod
    def in_category(cls, category: EventCategory | str) -> tuple[EventType, ...]:
        """All event types of one category, in declaration order."""
        wanted = EventCategory(category)
        return tuple(t for t in cls if _CATEGORY[t] is wanted)


_CATEGORY: dict[EventType, EventCategory] = {
    t: EventCategory(t.value.partition(".")[0]) for t in EventType
}


class ReadOnlyPayload(dict[str, Any]):
    """An event's payload: a dict copy whose mutating methods raise TypeError.

    A dict subclass rather than ``MappingProxyType`` so it prints, compares and
    serialises (``json.dumps``) exactly like the dict it was built from, and
    costs one copy instead of a copy plus a proxy. The copy is shallow: values
    are shared with the mapping the event was built from.
    """

    __slots__ = ()

    def _read_only(self, *args: object, **kwargs: object) -> Any:
        raise TypeError("an event payload is read-only; build a new event instead")

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __reduce__(self) -> tuple[type[ReadOnlyPayload], tuple[dict[str, Any]]]:
        # pickle/copy would otherwise rebuild it item by item through __setitem__
        return (type(self), (dict(self),))

    def __copy__(self) -> ReadOnlyPayload:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ReadOnlyPayload:
        return type(self)(copy.deepcopy(dict(self), memo))


_EMPTY_PAYLOAD = ReadOnlyPayload()
# An event's payload size before a bus measured it: the payload holds a value other
# than a string or a number (a list, a nested dict), whose walk a bus bounds by its own
# cap. Larger than any cap a bus accepts, so the bus's one "over the cap?" test
# catches it too.
UNMEASURED = 2**62
_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ID_MASK = 2**64 - 1
# Auto event ids are serial numbers, spread over 64 bits by XOR with this salt
# when read. The salt is drawn once per process and never changes, so an id
# reads the same for the event's whole life (in a forked child too).
_ID_SALT = random.getrandbits(64)
_time_ns = time.time_ns
_from_timestamp = datetime.fromtimestamp


def _serials() -> Callable[[], int]:
    """A fresh serial-number source starting at a random 59-bit number.

    A random start makes two processes' serials (and so ids) overlap only with
    odds of about events/2**59; below 2**60 every serial is a 32-byte int.
    ``itertools.count``'s ``__next__`` is one C call, atomic under the GIL.
    """
    return itertools.count(random.getrandbits(59)).__next__


_next_serial = _serials()


def _restart_serials() -> None:
    """In a forked child: new serials, or parent and child would hand out the same ids."""
    global _next_serial
    _next_serial = _serials()


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere there is no fork to guard against
    os.register_at_fork(after_in_child=_restart_serials)


def _read_event_id(event: HypervisorEvent) -> str:
    """``event_id``: as given, or the auto serial formatted as 16 hex characters."""
    value = event._event_id
    if isinstance(value, str):
        return value
    return f"{(value & _ID_MASK) ^ _ID_SALT:016x}"


def _stored_time(event: HypervisorEvent) -> int | datetime:
    """The stored time: auto microseconds (an int) or the given UTC datetime.

    An event whose id and time are both auto (nearly all) holds them in one
    int, ``nanoseconds << 64 | serial``: one 44-byte int instead of two of 32,
    and one slot write. The clock's nanoseconds are packed as they come (a
    division on every construction costs more, about 2% of a ring event's
    create and emit, than 8 bytes an event) and truncated to microseconds here,
    so every reader sees the microsecond ``datetime.now(UTC)`` would have.
    Otherwise ``_timestamp`` holds the time, in microseconds.
    """
    value = event._event_id
    if isinstance(value, int) and value > _ID_MASK:
        return (value >> 64) // 1000
    try:
        return event._timestamp
    except AttributeError:  # packed, at the clock's first nanosecond (1970-01-01T00:00:00Z)
        return 0


def _read_timestamp(event: HypervisorEvent) -> datetime:
    """``timestamp``: as given (in UTC), or the auto microseconds as a UTC datetime.

    ``us / 1e6`` is within 0.12 us of the exact value and ``fromtimestamp``
    rounds to the nearest microsecond, so this is exactly the microsecond
    stored: what ``datetime.now(UTC)`` would have read at construction.
    """
    value = _stored_time(event)
    if isinstance(value, int):
        return _from_timestamp(value / 1e6, UTC)
    return value


def event_microseconds(event: HypervisorEvent) -> int:
    """The event's time as whole microseconds since the epoch, without building a datetime.

    What the collectors and the bus's time queries compare and subtract: the
    auto timestamp is stored in this form, so reading it costs nothing.
    """
    value = _stored_time(event)
    if isinstance(value, int):
        return value
    return (value - _EPOCH) // _US


def event_seconds(event: HypervisorEvent) -> float:
    """The event's time as epoch seconds (``event.timestamp.timestamp()``, cheaper).

    The collectors call it on the emit path, so the packed case (auto id and
    time, nearly every event) is read here directly rather than through
    :func:`_stored_time`: one call instead of two.
    """
    value = event._event_id
    if type(value) is int and value > _ID_MASK:
        return (value >> 64) // 1000 / 1e6
    stored = _stored_time(event)
    if isinstance(stored, int):
        return stored / 1e6
    return stored.timestamp()


class _EventSlots:
    """A :class:`HypervisorEvent`'s storage, writable: what ``__new__`` fills in.

    Why a separate class: a frozen class overrides ``__setattr__``, so its own
    constructor can only write a slot through the slot's descriptor, a call
    of ~60 ns each. ``HypervisorEvent.__new__`` instead builds one of these
    (whose plain attribute stores cost ~5 ns) and then makes it a
    ``HypervisorEvent`` by assigning ``__class__`` once (the layouts are the
    same: the subclass adds no slots). ~300 ns less per event.
    """

    __slots__ = (
        "_event_id",
        "_payload_size",
        "_timestamp",
        "agent_did",
        "causal_trace_id",
        "event_type",
        "parent_event_id",
        "payload",
        "session_id",
    )

    event_type: EventType
    session_id: str | None
    agent_did: str | None
    causal_trace_id: str | None
    payload: Mapping[str, Any]
    parent_event_id: str | None
    # Auto id and time formatted only when read (see HypervisorEvent, _stored_time).
    _event_id: int | str
    _timestamp: int | datetime
    # The payload's size estimate (payloads.payload_bytes), or UNMEASURED. Measured at
    # construction, so every bus that keeps the event reads it where it would measure
    # (its byte budget adds it at emit and takes it back at eviction) and none keeps a
    # size per event of its own: a deque of sizes beside the log cost two deque calls per
    # emit, about 2% of a ring event's create and emit. A bus records the size it
    # measured for an UNMEASURED payload here, through record_payload_size.
    _payload_size: int


_new_slots = object.__new__


@dataclass(frozen=True, init=False)
class HypervisorEvent(_EventSlots):
    """One immutable event.

    ``payload`` may be given as any mapping and is stored as a
    :class:`ReadOnlyPayload` copy (``event.payload["x"]`` works, assignment
    raises). ``causal_trace_id``
    accepts a :class:`~meshwatch.instrumentation.trace.CausalTraceId` or its
    ``full_id`` string and is stored as the string. ``timestamp`` must be
    timezone-aware if given; it is normalised to UTC. Events compare by value
    (all fields, so two emits of "the same" event differ by id) and hash
    without the payload.

    ``parent_event_id`` names the event this one follows from (upstream's
    field of the same name): a killed agent's handoffs point at the kill, a
    saga's steps at its creation.

    Identifiers must be strings (or None); anything else raises TypeError here,
    at construction, rather than corrupting the bus's indexes later.

    Construction is on the emit hot path, so the two auto fields are stored
    in their cheapest form and formatted only when read: ``event_id`` as a
    serial number (16 hex characters when read, the same on every read),
    ``timestamp`` as the integer nanoseconds of ``time.time_ns()`` (the
    ``datetime``, to the microsecond, when read; :func:`event_seconds` reads
    it without one).
    When both are auto they share one int (``nanoseconds << 64 | serial``).
    The constructor is ``__new__``, written by hand (see :class:`_EventSlots`).
    """

    __slots__ = ()

    event_type: EventType
    session_id: str | None
    agent_did: str | None
    causal_trace_id: str | None
    payload: Mapping[str, Any]
    # Read through properties (set on the class below) from _event_id/_timestamp.
    event_id: str
    timestamp: datetime
    parent_event_id: str | None

    def __new__(
        cls,
        event_type: EventType,
        session_id: str | None = None,
        agent_did: str | None = None,
        causal_trace_id: str | CausalTraceId | None = None,
        payload: Mapping[str, Any] | None = None,
        event_id: str | None = None,
        timestamp: datetime | None = None,
        parent_event_id: str | None = None,
    ) -> HypervisorEvent:
        if type(event_type) is not EventType:
            event_type = EventType(event_type)
        if type(session_id) is not str and session_id is not None:  # a str (usual) costs one test
            raise TypeError(f"HypervisorEvent.session_id must be a str or None, got {session_id!r}")
        if type(agent_did) is not str and agent_did is not None:  # a str (usual) costs one test
            raise TypeError(f"HypervisorEvent.agent_did must be a str or None, got {agent_did!r}")
        if type(causal_trace_id) is not str and causal_trace_id is not None:
            if not isinstance(causal_trace_id, CausalTraceId):
                raise TypeError(
                    "HypervisorEvent.causal_trace_id must be a str, CausalTraceId or None, "
                    f"got {causal_trace_id!r}"
                )
            causal_trace_id = causal_trace_id.full_id
        if not payload:
            if payload is not None and not isinstance(payload, Mapping):
                raise TypeError(f"HypervisorEvent.payload must be a mapping, got {payload!r}")
            payload = _EMPTY_PAYLOAD
            size = 0
        else:
            if type(payload) is dict:  # the common case, without an ABC isinstance check
                payload = ReadOnlyPayload(payload)
            elif type(payload) is not ReadOnlyPayload:  # one is already an immutable copy
                if not isinstance(payload, Mapping):
                    raise TypeError(f"HypervisorEvent.payload must be a mapping, got {payload!r}")
                payload = ReadOnlyPayload(payload)
            # The size estimate of payloads.payload_bytes for a flat payload (strings and
            # numbers, the usual kind), measured once here (see _EventSlots); any other
            # value is left to the bus's bounded walk.
            size = 0
            try:
                for key, value in payload.items():
                    kind = type(value)
                    if kind is str:
                        size += len(key) + len(value)
                    elif kind is int or kind is float or kind is bool or value is None:
                        size += len(key) + 8
                    else:
                        size = UNMEASURED
                        break
            except TypeError:  # a key without a len(): the bus's walk says so when emitted
                size = UNMEASURED
        if parent_event_id is not None and type(parent_event_id) is not str:
            raise TypeError(
                f"HypervisorEvent.parent_event_id must be a str or None, got {parent_event_id!r}"
            )
        self = _new_slots(_EventSlots)
        if event_id is None and timestamp is None:
            # Both auto (nearly every event): one int, see _stored_time; _timestamp unset.
            self._event_id = _time_ns() << 64 | _next_serial()
        else:
            _set_given_id_and_time(self, event_id, timestamp)
        self.event_type = event_type
        self.session_id = session_id
        self.agent_did = agent_did
        self.causal_trace_id = causal_trace_id
        self.payload = payload
        self.parent_event_id = parent_event_id
        self._payload_size = size
        if cls is HypervisorEvent:
            self.__class__ = cls  # frozen from here on
            return self  # type: ignore[return-value]  # it is one now (typing.cast is a call)
        return _as_subclass(self, cls)

    def __hash__(self) -> int:
        # Every field but the payload (a dict is unhashable), as the dataclass would.
        return hash(
            (
                self.event_type,
                self.session_id,
                self.agent_did,
                self.causal_trace_id,
                self.event_id,
                self.timestamp,
                self.parent_event_id,
            )
        )

    def __reduce__(self) -> tuple[type[HypervisorEvent], tuple[Any, ...]]:
        # pickle and copy rebuild the event through __init__, with the fields as read,
        # so a copy (in any process) has the same id and time.
        return (
            type(self),
            (
                self.event_type,
                self.session_id,
                self.agent_did,
                self.causal_trace_id,
                self.payload,
                self.event_id,
                self.timestamp,
                self.parent_event_id,
            ),
        )

    @property
    def category(self) -> EventCategory:
        """Shortcut for ``event.event_type.category``."""
        return _CATEGORY[self.event_type]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict (as far as the payload's values are).

        ``event_type`` is the value string (``"ring.assigned"``), ``timestamp``
        ISO 8601 with its ``+00:00`` offset, ``payload`` a plain dict copy.
        ``parent_event_id`` is present only when set, so the dicts of events
        without one (and the audit trail's records, which do not store it)
        keep their shape.
        """
        data = {
            "event_id": self.event_id,
            "event_type": self.event_type.value,
            "timestamp": self.timestamp.isoformat(),
            "session_id": self.session_id,
            "agent_did": self.agent_did,
            "causal_trace_id": self.causal_trace_id,
            "payload": dict(self.payload),
        }
        if self.parent_event_id is not None:
            data["parent_event_id"] = self.parent_event_id
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HypervisorEvent:
        """Rebuild an event from :meth:`to_dict` output (for replaying an audit log)."""
        return cls(
            event_type=EventType(data["event_type"]),
            session_id=data.get("session_id"),
            agent_did=data.get("agent_did"),
            causal_trace_id=data.get("causal_trace_id"),
            payload=data.get("payload") or {},
            event_id=data["event_id"],
            timestamp=datetime.fromisoformat(data["timestamp"]),
            parent_event_id=data.get("parent_event_id"),
        )


def _set_given_id_and_time(
    event: _EventSlots, event_id: str | None, timestamp: datetime | None
) -> None:
    """``__new__`` for an event given its id, its time or both: each in its own slot."""
    if event_id is None:
        event._event_id = _next_serial()
    elif type(event_id) is str:
        event._event_id = event_id
    else:
        raise TypeError(f"HypervisorEvent.event_id must be a str, got {event_id!r}")
    if timestamp is None:
        event._timestamp = _time_ns() // 1000
    elif getattr(timestamp, "tzinfo", None) is UTC:
        event._timestamp = timestamp
    else:
        if not isinstance(timestamp, datetime) or timestamp.utcoffset() is None:
            raise ValueError(
                f"HypervisorEvent.timestamp must be a timezone-aware datetime, got {timestamp!r}"
            )
        event._timestamp = timestamp.astimezone(UTC)


_PAYLOAD_SIZE = vars(_EventSlots)["_payload_size"]


def record_payload_size(event: HypervisorEvent, size: int) -> None:
    """Record on ``event`` the payload size a bus measured for it (it was UNMEASURED).

    Through the slot's descriptor, as the event is frozen to everyone else.
    The size is the payload's, whatever the bus: a second bus that keeps the
    event reads it instead of walking the payload again.
    """
    _PAYLOAD_SIZE.__set__(event, size)


def _as_subclass(built: _EventSlots, cls: type[HypervisorEvent]) -> HypervisorEvent:
    """A subclass's instance of the event ``built`` (whose layout may differ: a __dict__).

    The subclass's own ``__setattr__`` is frozen too, so the slots are copied
    through their descriptors: the slow way, off the hot path.
    """
    event = object.__new__(cls)
    for name in _EventSlots.__slots__:
        slot = vars(_EventSlots)[name]
        try:
            value = slot.__get__(built)
        except AttributeError:  # _timestamp, unset when packed into the id
            continue
        slot.__set__(event, value)
    return event


def payload_id(payload: Mapping[str, Any], key: str) -> str | None:
    """An identifier from an event payload: a non-empty str, or an int as text, else None.

    Emitters spell ids as strings or numbers (``saga_id=7``); both must name the
    same saga in every collector, and anything else (None, "", a dict) is no id.
    """
    value = payload.get(key)
    if type(value) is str:
        return value or None
    if type(value) is int:
        return str(value)
    return None


def saga_id_of(event: HypervisorEvent) -> str | None:
    """The saga an event belongs to: its payload's ``saga_id``, else its causal trace id.

    Upstream's span exporter falls back to the causal trace id when a saga
    event carries no ``saga_id``; meshwatch's saga collectors do the same, so
    the same events make the same sagas in both.
    """
    saga_id = payload_id(event.payload, "saga_id")
    return saga_id if saga_id is not None else event.causal_trace_id or None


def step_action_of(payload: Mapping[str, Any]) -> str | None:
    """A saga step's action: ``step_action``, or its upstream synonym ``action``."""
    action = payload_id(payload, "step_action")
    return action if action is not None else payload_id(payload, "action")


def trace_of(event: HypervisorEvent) -> CausalTraceId | None:
    """The event's causal trace id parsed, or None when absent or malformed."""
    if event.causal_trace_id is None:
        return None
    try:
        return CausalTraceId.from_string(event.causal_trace_id)
    except ValueError:
        return None


# The two lazily formatted fields. Set after the dataclass is made, so that it sees
# them as plain fields (dataclasses.replace, repr and == read them through these).
for _name, _read in (("event_id", _read_event_id), ("timestamp", _read_timestamp)):
    setattr(HypervisorEvent, _name, property(_read, doc=_read.__doc__))
del _name, _read


__all__ = [
    "EventCategory",
    "EventType",
    "HypervisorEvent",
    "ReadOnlyPayload",
    "event_microseconds",
    "event_seconds",
    "payload_id",
    "saga_id_of",
    "step_action_of",
    "trace_of",
]
