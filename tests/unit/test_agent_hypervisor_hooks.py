"""The hook wrappers compiled with the original's own parameters: the call upstream would get."""

from __future__ import annotations

import asyncio
import gc
import inspect
from types import MethodType
from typing import Any

import pytest
from hypervisor import ExecutionRing, RingElevationManager
from hypervisor.saga.orchestrator import SagaOrchestrator
from hypervisor.saga.state_machine import Saga, SagaState, SagaStateError, StepState

from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.instrumentation.events import EventType
from meshwatch.integrations.agent_hypervisor import SYNC, Instrumentation, instrument
from meshwatch.integrations.agent_hypervisor.hooks import Hooks

AGENT = "did:mesh:analyst"
SENTINEL = object()
COMPILED = "<meshwatch hook of "


class Recorder:
    """A plain class to hook: what each method received, exactly."""

    def plain(self, a: Any, b: Any = SENTINEL, *, c: Any = SENTINEL) -> tuple[Any, Any, Any]:
        return a, b, c

    def star(self, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        return args, kwargs

    def fails(self, a: Any) -> None:
        raise LookupError(a)

    def clashing(self, _mw_result: Any) -> Any:
        return _mw_result


def _calls(hooks: Hooks, obj: Any, name: str) -> list[tuple[Any, ...]]:
    seen: list[tuple[Any, ...]] = []

    def after(result: Any, args: Any, kwargs: Any, look: Any) -> None:
        seen.append(("after", result, args, kwargs))

    def on_error(exc: BaseException, args: Any, kwargs: Any) -> None:
        seen.append(("error", type(exc), args, kwargs))

    hooks.wrap(obj, name, after=after, on_error=on_error)
    return seen


def test_plain_parameters_get_a_compiled_wrapper_that_passes_the_same_objects() -> None:
    obj, hooks = Recorder(), Hooks()
    seen = _calls(hooks, obj, "plain")
    assert obj.plain.__code__.co_filename.startswith(COMPILED), "the compiled wrapper is used"
    assert inspect.signature(obj.plain) == inspect.signature(Recorder().plain)
    a, b, c = obj.plain(1)
    assert (a, b is SENTINEL, c is SENTINEL) == (1, True, True), "the defaults themselves"
    assert obj.plain(a=1, b=2, c=3) == (1, 2, 3), "by keyword too"
    assert seen[-1] == ("after", (1, 2, 3), (1, 2), {"c": 3})
    assert seen[0][2][1] is SENTINEL and seen[0][3]["c"] is SENTINEL
    hooks.remove_all()
    assert "plain" not in vars(obj)


def test_wrong_arguments_fail_as_upstreams_call_would() -> None:
    hooked, plain = Recorder(), Recorder()
    seen = _calls(Hooks(), hooked, "plain")
    orchestrator = SagaOrchestrator()
    saga = orchestrator.create_saga("s1")
    hooks = Hooks()
    hooks.wrap_state(saga, "transition", lambda *args: None, None)
    unhooked = SagaOrchestrator().create_saga("s1")
    wrong: tuple[tuple[tuple[Any, ...], dict[str, Any]], ...] = (
        ((), {}),
        ((1, 2, 3), {}),
        ((1,), {"d": 4}),
        ((1,), {"a": 1}),
    )
    for good, bad in ((plain.plain, hooked.plain), (unhooked.transition, saga.transition)):
        for args, kwargs in wrong:
            with pytest.raises(TypeError) as expected:
                good(*args, **kwargs)
            with pytest.raises(TypeError) as got:
                bad(*args, **kwargs)
            assert str(got.value) == str(expected.value)
    assert seen == [], "a call that never reached upstream is not reported"


def test_upstreams_exceptions_pass_unchanged_and_on_error_sees_them() -> None:
    obj = Recorder()
    seen = _calls(Hooks(), obj, "fails")
    with pytest.raises(LookupError, match="x") as raised:
        obj.fails("x")
    assert raised.value.args == ("x",)
    assert seen == [("error", LookupError, ("x",), {})]


@pytest.mark.parametrize("name", ["star", "clashing"])
def test_other_signatures_keep_the_generic_wrapper(name: str) -> None:
    obj = Recorder()
    seen = _calls(Hooks(), obj, name)
    method = getattr(obj, name)
    assert not method.__code__.co_filename.startswith(COMPILED)
    if name == "star":
        assert method(1, k=2) == ((1,), {"k": 2})
        assert seen == [("after", ((1,), {"k": 2}), (1,), {"k": 2})]
    else:
        assert method(_mw_result=5) == 5
        assert seen == [("after", 5, (), {"_mw_result": 5})]


class Machine:
    """A state machine whose transition takes any arguments: its hook is the generic one."""

    def __init__(self) -> None:
        self.state = "idle"

    def transition(self, *args: Any, **kwargs: Any) -> Any:
        self.state = kwargs.get("to", args[0] if args else self.state)
        return args, kwargs


def test_a_state_machine_with_any_parameters_gets_the_generic_state_hook() -> None:
    machine, hooks = Machine(), Hooks()
    moves: list[tuple[Any, Any, Any]] = []
    hooks.wrap_state(machine, "transition", lambda ctx, obj, old, new: moves.append((ctx, old, new)), "c")  # fmt: skip
    assert not machine.transition.__code__.co_filename.startswith(COMPILED)
    assert machine.transition("running") == (("running",), {})
    assert machine.transition(to="running") == ((), {"to": "running"})  # no move: not reported
    assert machine.transition(to="done") == ((), {"to": "done"})
    assert moves == [("c", "idle", "running"), ("c", "running", "done")]
    hooks.remove_all()
    assert "transition" not in vars(machine)


def test_the_runtimes_hooks_are_compiled_and_still_report(bus: HypervisorEventBus) -> None:
    manager, orchestrator = RingElevationManager(), SagaOrchestrator()
    with instrument(manager, orchestrator, bus=bus, delivery=SYNC):
        saga = orchestrator.create_saga("s1")
        step = orchestrator.add_step(saga.saga_id, "a", AGENT, "/a")
        for hooked in (manager.request_elevation, manager.revoke_elevation, step.transition):
            assert hooked.__code__.co_filename.startswith(COMPILED)
        grant = manager.request_elevation(
            agent_did=AGENT,
            session_id="s1",
            current_ring=ExecutionRing.RING_3_SANDBOX,
            target_ring=ExecutionRing.RING_2_STANDARD,
            trust_score=0.9,
        )
        manager.revoke_elevation(elevation_id=grant.elevation_id)
        with pytest.raises(
            TypeError, match=r"^RingElevationManager\.request_elevation\(\) missing"
        ):
            manager.request_elevation(AGENT)  # type: ignore[call-arg]
    kinds = [e.event_type for e in bus.all_events]
    assert kinds == [EventType.SAGA_CREATED, EventType.RING_ELEVATED, EventType.RING_DEMOTED]
    assert bus.all_events[1].payload["elevation_id"] == grant.elevation_id


async def _ok() -> str:
    return "ok"


def _instrumented_orchestrator(bus: HypervisorEventBus) -> tuple[SagaOrchestrator, Instrumentation]:
    """A saga orchestrator instrumented onto ``bus``, its events delivered at once (SYNC)."""
    orchestrator = SagaOrchestrator()
    return orchestrator, instrument(orchestrator, bus=bus, delivery=SYNC)


def _foreign(*args: Any) -> str:
    """What a user might put in a hook's place: not meshwatch's, so never removed by it."""
    return "foreign"


def test_a_kept_wrapper_still_works_after_the_unhook_and_removes_nothing_foreign(
    bus: HypervisorEventBus,
) -> None:
    orchestrator, handle = _instrumented_orchestrator(bus)
    saga = orchestrator.create_saga("s1")
    step = orchestrator.add_step(saga.saga_id, "a", AGENT, "/a", undo_api="/undo")
    kept_saga, kept_step = saga.transition, step.transition  # the hooks themselves
    asyncio.run(orchestrator.execute_step(saga.saga_id, step.step_id, _ok))
    kept_saga(SagaState.COMPLETED)  # a kept hook ends the saga: it takes its own hooks off
    assert "transition" not in vars(saga) and "transition" not in vars(step)
    assert saga.transition.__func__ is Saga.transition and saga.transition.__self__ is saga
    step.transition = _foreign  # type: ignore[method-assign]
    kept_step(StepState.COMPENSATING)  # by hand: upstream moves it, through the kept hook
    assert step.state is StepState.COMPENSATING
    kept_step(StepState.COMPENSATED)  # an end state: the kept hook would unhook its own
    assert step.state is StepState.COMPENSATED
    assert vars(step)["transition"] is _foreign, "the user's attribute stays"
    with pytest.raises(SagaStateError, match="Invalid saga transition"):
        kept_saga(SagaState.FAILED)  # upstream's refusal, unchanged
    handle.close()
    assert vars(step)["transition"] is _foreign
    assert "transition" not in vars(saga)
    assert [e.event_type for e in bus.all_events] == [
        EventType.SAGA_CREATED,
        EventType.SAGA_STEP_STARTED,
        EventType.SAGA_STEP_COMMITTED,
        EventType.SAGA_COMPLETED,
        EventType.SAGA_STEP_STARTED,  # the compensation, seen through the kept hook
        EventType.SAGA_COMPENSATING,
    ]
    assert handle.hook_errors == {}


def _at_a_reused_id(orchestrator: SagaOrchestrator) -> tuple[Saga, MethodType]:
    """An ended (so unhooked) saga, and a user's bound method at the id its freed hook had.

    Memory freed is soon reused for an object of the same size; how soon
    depends on the allocator's pools, so this tries a few sagas.
    """
    for _ in range(100):
        saga = orchestrator.create_saga("s1")
        hook_id = id(vars(saga)["transition"])
        saga.transition(SagaState.FAILED)
        spare = []
        for _ in range(1000):
            candidate = MethodType(_foreign, saga)
            if id(candidate) == hook_id:
                return saga, candidate
            spare.append(candidate)
    raise AssertionError("no freed hook's id was reused: the corner is untested")


def test_close_after_an_unhook_removes_only_its_own_hooks_even_at_a_reused_id(
    bus: HypervisorEventBus,
) -> None:
    """A freed hook's id is soon another object's: close() tells a state hook by what it is."""
    orchestrator, handle = _instrumented_orchestrator(bus)
    other_saga = orchestrator.create_saga("s2")
    pending = orchestrator.add_step(other_saga.saga_id, "a", AGENT, "/a")
    other_saga.transition(SagaState.COMPLETED)
    assert "transition" not in vars(other_saga)
    assert "transition" in vars(pending), "a pending step can still be run: it stays hooked"
    saga, candidate = _at_a_reused_id(orchestrator)
    assert "transition" not in vars(saga)
    saga.transition = candidate  # type: ignore[method-assign]
    other = Hooks()  # another handle's hook where ours was
    other.wrap_state(other_saga, "transition", lambda *args: None, None)
    handle.close()
    assert vars(saga)["transition"] is candidate, "a user's attribute at the hook's old id stays"
    assert "transition" in vars(other_saga), "another handle's hook stays"
    assert "transition" not in vars(pending), "close() removed the hook still installed"
    other.remove_all()
    assert "transition" not in vars(other_saga)


def test_the_state_hooks_registry_forgets_ended_objects_and_stays_bounded(
    bus: HypervisorEventBus,
) -> None:
    """An unhook drops the object's entry; dead objects' entries go at the next compaction."""
    orchestrator, handle = _instrumented_orchestrator(bus)
    hooks = handle._hooks
    registry = hooks._state(Saga, "transition")
    for _ in range(50):
        orchestrator.create_saga("s1").transition(SagaState.COMPLETED)
    assert registry.hooked == {}, "an ended saga leaves no entry"
    kept = orchestrator.create_saga("kept")  # still running: hooked and registered
    for _ in range(3000):  # sagas dropped while running: freed by the collector, entries stay
        orchestrator._sagas.clear()
        orchestrator._sagas[kept.saga_id] = kept
        orchestrator.create_saga("dropped")
        if len(registry.hooked) % 500 == 0:
            gc.collect()
    assert len(registry.hooked) < 2 * 1024, "compacted when it doubles"
    assert "transition" in vars(kept)
    handle.close()
    assert "transition" not in vars(kept), "close() still finds a live hooked object"


@pytest.fixture
def bus() -> HypervisorEventBus:
    return HypervisorEventBus()
