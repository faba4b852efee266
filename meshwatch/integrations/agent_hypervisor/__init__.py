"""Observe the agent-hypervisor runtime with one call: ``instrument(hv, ..., bus=bus)``.

agent-hypervisor's runtime (``Hypervisor`` sessions, ``RingElevationManager``,
``RingBreachDetector``, each session's ``SagaOrchestrator``, ``KillSwitch``,
``VouchingEngine``/``SlashingEngine``/``QuarantineManager``) never emits an
event itself. :func:`instrument` hooks the objects it is given so that each of
their state changes becomes a meshwatch event on ``bus`` (the table is in
:mod:`.runtime`), and returns a handle whose ``close()`` removes every hook::

    with instrument(hv, elevations, detector, kill_switch, bus=bus):
        ...   # the runtime as usual; the standard collectors see its events

A ``Hypervisor`` covers the engines it owns (vouching, slashing, GC,
commitment) and the saga orchestrator of every session it manages, present
and future. The others are separate objects upstream and are passed
explicitly. :func:`mirror` is for code that emits on upstream's own bus.

By default the events are built and emitted by a worker thread, within
20 ms of the change (:mod:`.delivery`), so the runtime's calls stay
fast: call ``handle.flush()`` before reading the bus right after a call, or
pass ``delivery="sync"`` to have each event on the bus when the call returns.

Needs the extra: ``pip install 'meshwatch[agent-hypervisor]'`` (tested range
:data:`TESTED_VERSIONS`).
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

try:
    from hypervisor.audit.commitment import CommitmentEngine
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "meshwatch.integrations.agent_hypervisor needs agent-hypervisor: "
        "pip install 'meshwatch[agent-hypervisor]'"
    ) from exc
from hypervisor.audit.gc import EphemeralGC
from hypervisor.core import Hypervisor, ManagedSession
from hypervisor.liability.quarantine import QuarantineManager
from hypervisor.liability.slashing import SlashingEngine
from hypervisor.liability.vouching import VouchingEngine
from hypervisor.rings.breach_detector import RingBreachDetector
from hypervisor.rings.elevation import RingElevationManager
from hypervisor.saga.fan_out import FanOutOrchestrator
from hypervisor.saga.orchestrator import SagaOrchestrator
from hypervisor.security.kill_switch import KillSwitch
from hypervisor.session import SharedSessionObject

from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.integrations.agent_hypervisor.delivery import (
    BACKGROUND,
    DELIVERIES,
    SYNC,
    Delivery,
)
from meshwatch.integrations.agent_hypervisor.hook_points import (
    TESTED_VERSIONS,
    IncompatibleRuntimeError,
    check_hook_points,
    installed_version,
    is_tested_version,
)
from meshwatch.integrations.agent_hypervisor.hooks import AlreadyInstrumentedError, Hooks
from meshwatch.integrations.agent_hypervisor.mirror import Mirror, mirror
from meshwatch.integrations.agent_hypervisor.runtime import RuntimeObserver

_log = logging.getLogger("meshwatch.integrations.agent_hypervisor")
_warned_version = False

# What instrument() accepts, and which observer method hooks it (most specific first).
_OBSERVERS: tuple[tuple[type, str], ...] = (
    (Hypervisor, "observe_hypervisor"),
    (ManagedSession, "observe_managed_session"),
    (SharedSessionObject, "observe_session"),
    (SagaOrchestrator, "observe_sagas"),
    (FanOutOrchestrator, "observe_fan_out"),
    (RingElevationManager, "observe_elevations"),
    (RingBreachDetector, "observe_breaches"),
    (KillSwitch, "observe_kill_switch"),
    (VouchingEngine, "observe_vouching"),
    (SlashingEngine, "observe_slashing"),
    (QuarantineManager, "observe_quarantine"),
    (EphemeralGC, "observe_gc"),
    (CommitmentEngine, "observe_commitment"),
)
ACCEPTED = tuple(cls for cls, _ in _OBSERVERS)


class Instrumentation:
    """The handle :func:`instrument` returns. ``close()`` removes every hook it installed.

    Also a context manager. ``hook_errors`` counts exceptions raised inside
    meshwatch's hooks (never raised into the runtime), per hook.
    """

    def __init__(self, bus: HypervisorEventBus, *, delivery: str = BACKGROUND) -> None:
        if delivery not in DELIVERIES:
            raise ValueError(f"delivery must be one of {', '.join(DELIVERIES)}, got {delivery!r}")
        self._hooks = Hooks()
        self._delivery = Delivery(self._hooks) if delivery == BACKGROUND else None
        self.observer = RuntimeObserver(bus, self._hooks, self._delivery)
        self.bus = bus
        self.delivery = delivery

    @property
    def hook_errors(self) -> dict[str, int]:
        return self._hooks.errors

    @property
    def closed(self) -> bool:
        return not self._hooks.active

    def add(self, obj: Any) -> None:
        """Hook one more runtime object (what :func:`instrument` does for each argument)."""
        if self.closed:
            raise RuntimeError("this instrumentation is closed")
        for cls, method in _OBSERVERS:
            if isinstance(obj, cls):
                getattr(self.observer, method)(obj)
                return
        accepted = ", ".join(cls.__name__ for cls in ACCEPTED)
        raise TypeError(f"instrument() cannot hook a {type(obj).__name__}; it takes {accepted}")

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every event of the calls made so far is on the bus; False on timeout.

        Immediate with ``delivery="sync"``. With background delivery, call it
        before reading the bus right after a runtime call (tests, docs, a
        script that prints what happened).
        """
        return True if self._delivery is None else self._delivery.flush(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Remove every hook, then deliver what is still queued and stop the worker.

        The runtime behaves as if it had never been instrumented. Idempotent.
        """
        self._hooks.remove_all()
        if self._delivery is not None:
            self._delivery.close(timeout)

    def __enter__(self) -> Instrumentation:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def instrument(
    *runtime_objects: Any, bus: HypervisorEventBus, delivery: str = BACKGROUND
) -> Instrumentation:
    """Hook ``runtime_objects`` so that their state changes are emitted on ``bus``.

    ``delivery="background"`` (the default) keeps the runtime's calls fast: a
    hook copies what changed onto a bounded queue and one worker thread builds
    and emits the events, in order, within 20 ms (see
    :mod:`.delivery`); :meth:`Instrumentation.flush` waits for them.
    ``delivery="sync"`` builds and emits each event inside the runtime's call,
    so it is on the bus when the call returns, at several times the call's cost.

    Raises (at this call, never later from a hook) TypeError for an object it
    cannot hook or a bus that is not meshwatch's,
    :class:`IncompatibleRuntimeError` when the installed agent-hypervisor moved
    a hook point, and :class:`AlreadyInstrumentedError` when an object is
    already hooked by another open handle. On any of them nothing stays hooked.
    """
    global _warned_version
    if not isinstance(bus, HypervisorEventBus):
        raise TypeError(f"bus must be a meshwatch HypervisorEventBus, got {type(bus).__name__}")
    check_hook_points()
    release = installed_version()
    if release is not None and not is_tested_version(release) and not _warned_version:
        _warned_version = True
        _log.warning(
            "agent-hypervisor %s is outside the tested range %s; its hook points are all present",
            release,
            TESTED_VERSIONS,
        )
    handle = Instrumentation(bus, delivery=delivery)
    try:
        for obj in runtime_objects:
            handle.add(obj)
    except BaseException:
        handle.close()
        raise
    return handle


__all__ = [
    "ACCEPTED",
    "BACKGROUND",
    "DELIVERIES",
    "SYNC",
    "TESTED_VERSIONS",
    "AlreadyInstrumentedError",
    "IncompatibleRuntimeError",
    "Instrumentation",
    "Mirror",
    "instrument",
    "mirror",
]
