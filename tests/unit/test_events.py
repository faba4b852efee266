"""Event types and the immutable event value."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from meshwatch.instrumentation import CausalTraceId, EventCategory, EventType, HypervisorEvent
from meshwatch.instrumentation.events import ReadOnlyPayload, trace_of

TUTORIAL_NAMED = [
    "SESSION_CREATED",
    "SESSION_TERMINATED",
    "SESSION_ARCHIVED",
    "RING_ASSIGNED",
    "RING_ELEVATED",
    "RING_DEMOTED",
    "RING_ELEVATION_EXPIRED",
    "RING_BREACH_DETECTED",
    "VOUCH_CREATED",
    "SLASH_EXECUTED",
    "QUARANTINE_ENTERED",
    "SAGA_CREATED",
    "SAGA_STEP_STARTED",
    "SAGA_STEP_COMMITTED",
    "SAGA_STEP_FAILED",
    "SAGA_COMPENSATING",
    "SAGA_COMPLETED",
    "SAGA_ESCALATED",
    "VFS_WRITE",
    "VFS_SNAPSHOT",
    "VFS_CONFLICT",
    "RATE_LIMITED",
    "AGENT_KILLED",
    "IDENTITY_VERIFIED",
    "AUDIT_DELTA_CAPTURED",
    "AUDIT_COMMITTED",
    "BEHAVIOR_DRIFT",
    "HISTORY_VERIFIED",
]
# The tutorial's table: category -> how many event types it has.
TUTORIAL_COUNTS = {
    "session": 5,
    "ring": 5,
    "liability": 6,
    "saga": 10,
    "vfs": 5,
    "security": 4,
    "audit": 3,
    "verification": 2,
}


def test_at_least_forty_types_in_the_eight_categories() -> None:
    assert len(EventType) >= 40
    assert {c.value for c in EventCategory} == set(TUTORIAL_COUNTS)
    for category, count in TUTORIAL_COUNTS.items():
        assert len(EventType.in_category(category)) >= count, category


@pytest.mark.parametrize("name", TUTORIAL_NAMED)
def test_every_type_the_tutorial_names_exists(name: str) -> None:
    assert EventType[name].category.value == EventType[name].value.split(".")[0]


@pytest.mark.parametrize("event_type", list(EventType), ids=lambda t: t.name)
def test_values_are_category_dot_name(event_type: EventType) -> None:
    category, _, name = event_type.value.partition(".")
    assert re.fullmatch(r"[a-z]+", category)
    assert re.fullmatch(r"[a-z_]+", name)
    assert event_type.category is EventCategory(category)
    assert event_type.name.lower().endswith(name)


def test_documented_values() -> None:
    assert EventType.RING_BREACH_DETECTED.value == "ring.breach_detected"
    assert EventType.SLASH_EXECUTED.value == "liability.slash_executed"
    assert EventType.SAGA_STEP_COMMITTED.value == "saga.step_committed"
    assert EventType.RATE_LIMITED.category is EventCategory.SECURITY
    assert EventType("ring.assigned") is EventType.RING_ASSIGNED
    assert len({t.value for t in EventType}) == len(EventType)


def test_auto_fields() -> None:
    before = datetime.now(UTC)
    event = HypervisorEvent(EventType.VFS_WRITE)
    after = datetime.now(UTC)
    assert re.fullmatch(r"[0-9a-f]{16}", event.event_id)
    assert event.timestamp.tzinfo is UTC
    assert before <= event.timestamp <= after
    assert event.payload == {}
    assert (event.session_id, event.agent_did, event.causal_trace_id) == (None, None, None)
    assert len({HypervisorEvent(EventType.VFS_WRITE).event_id for _ in range(1000)}) == 1000


def test_event_is_frozen_and_payload_read_only() -> None:
    source = {"ring": 3}
    event = HypervisorEvent(EventType.RING_ASSIGNED, payload=source)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.agent_did = "did:x"  # type: ignore[misc]
    for mutate in (
        lambda p: p.__setitem__("ring", 0),
        lambda p: p.__delitem__("ring"),
        lambda p: p.update(ring=0),
        lambda p: p.pop("ring"),
        lambda p: p.popitem(),
        lambda p: p.clear(),
        lambda p: p.setdefault("x", 1),
    ):
        with pytest.raises(TypeError, match="read-only"):
            mutate(event.payload)
    source["ring"] = 0  # the event holds a copy
    assert event.payload["ring"] == 3
    assert event.payload == {"ring": 3}
    assert str(event.payload) == "{'ring': 3}"


def test_payload_copy_survives_pickle_copy_and_reuse() -> None:
    event = HypervisorEvent(EventType.AUDIT_COMMITTED, payload={"a": [1, 2]}, agent_did="did:a")
    assert pickle.loads(pickle.dumps(event)) == event
    assert copy.deepcopy(event) == event
    assert type(copy.deepcopy(event).payload) is ReadOnlyPayload
    again = HypervisorEvent(EventType.AUDIT_COMMITTED, payload=event.payload)
    assert again.payload is event.payload  # already immutable: not copied again
    replaced = dataclasses.replace(event, agent_did="did:b")
    assert replaced.agent_did == "did:b"
    assert replaced.payload == event.payload


def test_to_dict_is_json_and_round_trips() -> None:
    trace = CausalTraceId()
    event = HypervisorEvent(
        event_type=EventType.SLASH_EXECUTED,
        session_id="session-042",
        agent_did="did:mesh:rogue-agent",
        causal_trace_id=trace,
        payload={"severity": "critical", "stake_slashed": 150},
    )
    d = event.to_dict()
    assert d["event_type"] == "liability.slash_executed"
    assert d["causal_trace_id"] == trace.full_id
    assert datetime.fromisoformat(d["timestamp"]) == event.timestamp
    assert d["timestamp"].endswith("+00:00")
    assert HypervisorEvent.from_dict(json.loads(json.dumps(d))) == event
    assert trace_of(event) == trace


def test_timestamps_are_normalised_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2025, 1, 15, 12, 30, tzinfo=plus_two)
    event = HypervisorEvent(EventType.VFS_SNAPSHOT, timestamp=local)
    assert event.timestamp == local
    assert event.timestamp.tzinfo is UTC
    assert event.to_dict()["timestamp"] == "2025-01-15T10:30:00+00:00"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"timestamp": datetime(2025, 1, 15)}, ValueError),  # naive
        ({"timestamp": "2025-01-15"}, ValueError),
        ({"session_id": 42}, TypeError),
        ({"agent_did": ["did"]}, TypeError),
        ({"causal_trace_id": 7}, TypeError),
        ({"payload": [("a", 1)]}, TypeError),
        ({"payload": "text"}, TypeError),
        ({"event_id": 5}, TypeError),
    ],
)
def test_bad_constructor_arguments_fail_at_construction(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        HypervisorEvent(EventType.VFS_WRITE, **kwargs)


def test_event_type_given_as_value_string_is_coerced() -> None:
    assert HypervisorEvent("ring.demoted").event_type is EventType.RING_DEMOTED  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        HypervisorEvent("ring.nope")  # type: ignore[arg-type]


def test_trace_of_tolerates_free_form_trace_strings() -> None:
    assert trace_of(HypervisorEvent(EventType.VFS_WRITE, causal_trace_id="abc123/def456")) is None
    assert trace_of(HypervisorEvent(EventType.VFS_WRITE)) is None


def test_events_are_hashable_without_their_payload() -> None:
    event = HypervisorEvent(EventType.VFS_WRITE, payload={"k": [1]})
    assert {event: 1}[event] == 1


def test_any_mapping_payload_is_copied_read_only() -> None:
    from types import MappingProxyType

    source = {"a": 1}
    event = HypervisorEvent(EventType.VFS_WRITE, payload=MappingProxyType(source))
    source["a"] = 2
    assert type(event.payload) is ReadOnlyPayload
    assert event.payload == {"a": 1}
    assert HypervisorEvent(EventType.VFS_WRITE, payload=None).payload == {}


def test_parent_event_id_links_an_event_to_the_one_it_follows_from() -> None:
    kill = HypervisorEvent(EventType.AGENT_KILLED, agent_did="did:mesh:a")
    handoff = HypervisorEvent(EventType.SAGA_HANDOFF, parent_event_id=kill.event_id)
    assert handoff.parent_event_id == kill.event_id
    assert HypervisorEvent.from_dict(handoff.to_dict()) == handoff
    assert "parent_event_id" not in kill.to_dict(), "absent when unset: the dict keeps its shape"
    with pytest.raises(TypeError, match="parent_event_id"):
        HypervisorEvent(EventType.SAGA_HANDOFF, parent_event_id=7)  # type: ignore[arg-type]


def test_the_event_types_upstream_has_are_all_here() -> None:
    """Every upstream event type value has a meshwatch twin (mirror() relies on it)."""
    # The agent-hypervisor extra is part of the test install (Makefile EXTRAS): a missing
    # package must fail here, not skip the one check mirror() relies on.
    from hypervisor.observability import event_bus as upstream

    assert {t.value for t in upstream.EventType} <= {t.value for t in EventType}


def test_the_lazily_formatted_id_and_time_read_the_same_every_time_and_in_every_copy() -> None:
    event = HypervisorEvent(EventType.RING_ELEVATED, "s", "did:a", payload={"to_ring": 1})
    event_id, timestamp = event.event_id, event.timestamp
    copies = [
        pickle.loads(pickle.dumps(event)),
        copy.copy(event),
        copy.deepcopy(event),
        dataclasses.replace(event, agent_did="did:b"),
        HypervisorEvent.from_dict(json.loads(json.dumps(event.to_dict()))),
    ]
    for again in (event, *copies):
        assert (again.event_id, again.timestamp) == (event_id, timestamp)
    assert hash(event) == hash(copies[0]) and event == copies[0]
    assert f"event_id='{event_id}'" in repr(event)
    assert event.to_dict()["event_id"] == event_id


def test_auto_timestamp_is_the_microsecond_datetime_now_would_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Floor to the microsecond (as datetime.now does), exactly, across the whole range."""
    import random

    from meshwatch.instrumentation import events

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    rng = random.Random(12)
    samples = [rng.randrange(0, 4_102_444_800 * 10**9) for _ in range(5_000)]
    samples += [1_736_937_000_123_456_999, 1_736_937_000_999_999_999, 10**9 - 1]
    for ns in samples:
        monkeypatch.setattr(events, "_time_ns", lambda ns=ns: ns)
        event = HypervisorEvent(EventType.VFS_WRITE)
        expected = epoch + timedelta(microseconds=ns // 1000)
        assert event.timestamp == expected, ns
        assert events.event_microseconds(event) == ns // 1000
        assert events.event_seconds(event) == expected.timestamp()


def test_time_helpers_read_given_timestamps_too() -> None:
    from meshwatch.instrumentation.events import event_microseconds, event_seconds

    at = datetime(2025, 1, 15, 12, 30, 0, 250_001, tzinfo=timezone(timedelta(hours=2)))
    event = HypervisorEvent(EventType.VFS_WRITE, timestamp=at)
    assert event_seconds(event) == at.timestamp()
    assert event_microseconds(event) == 1_736_937_000_250_001


def test_ids_are_unique_across_threads() -> None:
    import threading

    ids: list[list[str]] = [[] for _ in range(4)]

    def work(mine: list[str]) -> None:
        for _ in range(5_000):
            mine.append(HypervisorEvent(EventType.VFS_WRITE).event_id)

    threads = [threading.Thread(target=work, args=(mine,)) for mine in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for mine in ids for i in mine]
    assert len(set(every)) == len(every) == 20_000
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in every)


def test_a_forked_child_gets_new_serials_while_old_events_keep_their_ids() -> None:
    """What os.register_at_fork runs in a child: a new random serial start, same salt."""
    from meshwatch.instrumentation import events

    before = HypervisorEvent(EventType.VFS_WRITE)
    its_id = before.event_id
    parents_next = events._next_serial
    events._restart_serials()
    assert events._next_serial is not parents_next
    assert before.event_id == its_id, "an event made before the fork keeps its id"
    assert abs(events._next_serial() - parents_next()) > 1_000_000, "a new random start"


def test_an_auto_id_and_time_share_one_int_and_a_given_one_keeps_its_own_slot() -> None:
    """Every mix of given and auto id and time reads back what was given, or fresh values."""
    from meshwatch.instrumentation import events

    at = datetime(2025, 1, 15, 10, 30, 0, 5, tzinfo=UTC)
    both = HypervisorEvent(EventType.VFS_WRITE)
    with pytest.raises(AttributeError):
        both._timestamp  # noqa: B018 - packed into the id's int, nothing stored apart
    given_id = HypervisorEvent(EventType.VFS_WRITE, event_id="feedfacecafebeef")
    given_time = HypervisorEvent(EventType.VFS_WRITE, timestamp=at)
    given_both = HypervisorEvent(EventType.VFS_WRITE, event_id="x", timestamp=at)
    assert given_id.event_id == "feedfacecafebeef"
    assert given_id.timestamp.tzinfo is UTC and abs(
        given_id.timestamp - both.timestamp
    ) < timedelta(seconds=60)
    assert given_time.timestamp == at and re.fullmatch(r"[0-9a-f]{16}", given_time.event_id)
    assert (given_both.event_id, given_both.timestamp) == ("x", at)
    assert len({e.event_id for e in (both, given_id, given_time)}) == 3
    assert events.event_microseconds(given_time) == events.event_microseconds(given_both)


def test_the_clocks_first_microsecond_packs_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from meshwatch.instrumentation import events

    monkeypatch.setattr(events, "_time_ns", lambda: 999)
    event = HypervisorEvent(EventType.VFS_WRITE)
    assert event.timestamp == datetime(1970, 1, 1, tzinfo=UTC)
    assert events.event_seconds(event) == 0.0
    assert re.fullmatch(r"[0-9a-f]{16}", event.event_id)


def test_a_subclass_builds_reads_and_stays_frozen() -> None:
    """__new__'s class swap needs the same layout; a subclass with a __dict__ gets a copy."""

    class Tagged(HypervisorEvent):
        pass

    event = Tagged(EventType.RING_ASSIGNED, "s", "did:a", payload={"ring": 3})
    assert type(event) is Tagged and isinstance(event, HypervisorEvent)
    assert (event.session_id, event.agent_did, event.payload) == ("s", "did:a", {"ring": 3})
    assert re.fullmatch(r"[0-9a-f]{16}", event.event_id) and event.timestamp.tzinfo is UTC
    assert event.event_id == event.event_id and event == copy.deepcopy(event)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.agent_did = "did:b"  # type: ignore[misc]
