"""Mirror upstream's own ``hypervisor.observability.HypervisorEventBus`` onto a meshwatch bus.

For code that already emits on upstream's bus by hand: every upstream event
becomes the meshwatch event of the same type value (meshwatch has a twin for
each, including ``saga.fanout_resolved``, ``security.saga_handoff`` and
``audit.gc_collected``), keeping its id, timestamp, session, agent, causal
trace id, parent event id and payload.

Upstream's bus calls its subscribers without a try block, so a subscriber that
raised would break upstream's ``emit``: the mirror's handler never raises.
Upstream's bus has no unsubscribe either, so :meth:`Mirror.close` switches the
handler off instead of removing it.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from hypervisor.observability.event_bus import HypervisorEventBus as UpstreamBus

from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.instrumentation.events import EventType, HypervisorEvent
from meshwatch.integrations.agent_hypervisor.hooks import Hooks

HOOK = "mirror"


class Mirror:
    """The handle :func:`mirror` returns: ``close()`` (or leaving its ``with``) stops mirroring."""

    def __init__(self, upstream: UpstreamBus, bus: HypervisorEventBus) -> None:
        if not isinstance(upstream, UpstreamBus):
            raise TypeError(
                f"mirror() needs a hypervisor.observability.HypervisorEventBus, got {type(upstream).__name__}"
            )
        if not isinstance(bus, HypervisorEventBus):
            raise TypeError(f"bus must be a meshwatch HypervisorEventBus, got {type(bus).__name__}")
        self._bus = bus
        self._hooks = Hooks()
        self.mirrored = 0
        upstream.subscribe(None, self._forward)

    @property
    def errors(self) -> dict[str, int]:
        """Upstream events that could not be translated (counted, never raised)."""
        return self._hooks.errors

    def _forward(self, event: Any) -> None:
        if not self._hooks.active:
            return
        try:
            self._bus.emit(translate(event))
            self.mirrored += 1
        except Exception:
            self._hooks.failed(HOOK)

    def close(self) -> None:
        self._hooks.active = False

    def __enter__(self) -> Mirror:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def translate(event: Any) -> HypervisorEvent:
    """The meshwatch twin of one upstream ``HypervisorEvent``."""
    return HypervisorEvent(
        EventType(event.event_type.value),
        session_id=event.session_id,
        agent_did=event.agent_did,
        causal_trace_id=event.causal_trace_id,
        payload=event.payload,
        event_id=event.event_id,
        timestamp=event.timestamp,
        parent_event_id=event.parent_event_id,
    )


def mirror(upstream_bus: UpstreamBus, bus: HypervisorEventBus) -> Mirror:
    """Emit every event of ``upstream_bus`` on ``bus`` from now on, until the handle is closed."""
    return Mirror(upstream_bus, bus)


__all__ = ["Mirror", "mirror", "translate"]
