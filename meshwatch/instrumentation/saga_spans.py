"""Saga lifecycle events turned into OpenTelemetry-compatible span records.

Each saga step becomes a span from its SAGA_STEP_STARTED to its
SAGA_STEP_COMMITTED (status ``ok``) or SAGA_STEP_FAILED (``error``); a
compensation becomes a ``compensating`` span; a saga that completes,
escalates or fails becomes a saga-level span from its first event (normally
SAGA_CREATED) to its end. Span times are the EVENTS' timestamps, never the
time the span is built or exported, so replayed or queued events still
produce true timings.

Names and attributes are the tutorial's: ``saga.step.<action>``,
``saga.compensate.<action>``, ``saga.completed.<saga_id>``,
``saga.escalated.<saga_id>`` (and ``saga.failed.<saga_id>``); attributes
``agent.saga.id``, ``agent.saga.step_id``, ``agent.saga.step_action``,
``agent.saga.state``, ``agent.saga.error``, ``agent.saga.reason``,
``agent.saga.result``, ``agent.did``, ``session.id`` (absent ones are left
out: OpenTelemetry attributes cannot be None). When the event carries a
causal trace id it travels as ``agent.causal_trace_id``, so a sink can place
the span in its trace and under its parent.

Everything is bounded: ``completed_spans`` keeps the newest ``max_spans``;
open steps and open sagas (started, not yet ended) are capped, and the oldest
is evicted and counted (``meshwatch_spans_dropped_total{reason=...}``) so a
step that never ends cannot leak memory. A sink that raises is logged
(rate-limited) and counted (``reason="sink_error"``), never propagated to the
emitter. As upstream reads them, a saga event without ``saga_id`` belongs to
the saga of its causal trace id, and ``action`` is a synonym of
``step_action``. Malformed saga events (no usable saga id or ``step_id``) are
dropped and counted in ``meshwatch_events_dropped_total{component="saga_spans"}``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.instrumentation.drops import RateLimitedLog, record_event_drop, record_span_drop
from meshwatch.instrumentation.events import (
    EventType,
    HypervisorEvent,
    event_seconds,
    payload_id,
    saga_id_of,
    step_action_of,
)
from meshwatch.instrumentation.protocols import SpanSink
from meshwatch.instrumentation.text import safe_str

COMPONENT = "saga_spans"
STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_COMPENSATING = "compensating"

ATTR_SAGA_ID = "agent.saga.id"
ATTR_STEP_ID = "agent.saga.step_id"
ATTR_STEP_ACTION = "agent.saga.step_action"
ATTR_STATE = "agent.saga.state"
ATTR_ERROR = "agent.saga.error"
ATTR_REASON = "agent.saga.reason"
ATTR_RESULT = "agent.saga.result"
ATTR_AGENT = "agent.did"
ATTR_SESSION = "session.id"
ATTR_CAUSAL_TRACE = "agent.causal_trace_id"

SAGA_EVENTS = (
    EventType.SAGA_CREATED,
    EventType.SAGA_STEP_STARTED,
    EventType.SAGA_STEP_COMMITTED,
    EventType.SAGA_STEP_FAILED,
    EventType.SAGA_COMPENSATING,
    EventType.SAGA_COMPLETED,
    EventType.SAGA_ESCALATED,
    EventType.SAGA_FAILED,
)
_SAGA_END = {
    EventType.SAGA_COMPLETED: ("completed", STATUS_OK),
    EventType.SAGA_ESCALATED: ("escalated", STATUS_ERROR),
    EventType.SAGA_FAILED: ("failed", STATUS_ERROR),
}

_log = logging.getLogger(__name__)
_sink_log = RateLimitedLog(_log)


@dataclass(frozen=True, slots=True)
class SagaSpanRecord:
    """One finished span. Times are epoch seconds taken from event timestamps."""

    name: str
    start_time: float
    end_time: float
    attributes: dict[str, Any] = field(default_factory=dict)
    status: str = STATUS_OK
    causal_trace_id: str | None = None

    @property
    def duration_seconds(self) -> float:
        return self.end_time - self.start_time

    @property
    def saga_id(self) -> str:
        """The saga this span belongs to (upstream's field; ``agent.saga.id``)."""
        return str(self.attributes.get(ATTR_SAGA_ID, ""))

    @property
    def step_id(self) -> str:
        """The step of a step or compensation span; "" for a saga-level span."""
        return str(self.attributes.get(ATTR_STEP_ID, ""))

    @property
    def step_action(self) -> str:
        """The step's action (or what names the span when it has none); "" for a saga span."""
        return str(self.attributes.get(ATTR_STEP_ACTION, ""))


def _attr(value: object) -> str | bool | int | float:
    """An OpenTelemetry-compatible attribute value (scalars kept, the rest as text)."""
    if type(value) in (str, bool, int, float):
        return value  # type: ignore[return-value]
    return safe_str(value)


class _OpenSaga:
    __slots__ = ("agent_did", "causal_trace_id", "session_id", "start", "step_ids")

    def __init__(self, event: HypervisorEvent, start: float) -> None:
        self.start = start
        self.agent_did = event.agent_did
        self.session_id = event.session_id
        self.causal_trace_id = event.causal_trace_id
        self.step_ids: set[str] = set()


class SagaSpanExporter:
    """Builds spans from saga events; buffers them and forwards them to a sink.

    ``SagaSpanExporter(bus)`` subscribes to the saga events of ``bus``.
    ``sink`` (or :meth:`attach_sink`) receives each span as it completes via
    ``record_span(name, start_time, end_time, attributes, status)``; spans are
    buffered in :attr:`completed_spans` either way.
    """

    def __init__(
        self,
        bus: HypervisorEventBus,
        sink: SpanSink | None = None,
        *,
        max_spans: int = 10_000,
        max_open_steps: int = 10_000,
        max_open_sagas: int = 10_000,
    ) -> None:
        for name, value in (
            ("max_spans", max_spans),
            ("max_open_steps", max_open_steps),
            ("max_open_sagas", max_open_sagas),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self._lock = threading.Lock()
        self._spans: deque[SagaSpanRecord] = deque(maxlen=max_spans)
        self._steps: OrderedDict[tuple[str, str], tuple[float, str | None]] = OrderedDict()
        self._sagas: OrderedDict[str, _OpenSaga] = OrderedDict()
        self._max_open_steps = max_open_steps
        self._max_open_sagas = max_open_sagas
        self._events_processed = 0
        self._sink: SpanSink | None = None
        if sink is not None:
            self.attach_sink(sink)
        self._subscriptions = [bus.subscribe(t, self._on_event) for t in SAGA_EVENTS]

    def close(self) -> None:
        """Stop listening to the bus; buffered spans stay readable."""
        for subscription in self._subscriptions:
            subscription.cancel()
        self._subscriptions.clear()

    # -- sinks -----------------------------------------------------------------------

    def attach_sink(self, sink: SpanSink) -> None:
        """Forward every span completed from now on to ``sink`` (replaces any previous sink)."""
        if not isinstance(sink, SpanSink):
            raise TypeError(f"a span sink needs record_span(), got {type(sink).__name__}")
        self._sink = sink

    def detach_sink(self) -> None:
        """Stop forwarding; spans are still buffered."""
        self._sink = None

    @property
    def sink(self) -> SpanSink | None:
        return self._sink

    # -- reading ---------------------------------------------------------------------

    @property
    def completed_spans(self) -> list[SagaSpanRecord]:
        """A copy of the buffered spans, oldest first (the newest ``max_spans``)."""
        with self._lock:
            return list(self._spans)

    @property
    def open_steps(self) -> int:
        """Steps started and not yet ended."""
        return len(self._steps)

    @property
    def events_processed(self) -> int:
        """Saga events this exporter used (dropped malformed ones excluded)."""
        return self._events_processed

    def reset(self) -> None:
        """Forget buffered spans, open steps and sagas, and the event count (upstream's reset()).

        The subscription and the sink stay: the next saga starts a fresh
        record, as after a restart.
        """
        with self._lock:
            self._spans.clear()
            self._steps.clear()
            self._sagas.clear()
            self._events_processed = 0

    @property
    def open_sagas(self) -> int:
        """Sagas seen and not yet ended."""
        return len(self._sagas)

    # -- event handling --------------------------------------------------------------

    def _on_event(self, event: HypervisorEvent) -> None:
        payload = event.payload
        saga_id = saga_id_of(event)
        if saga_id is None:
            self._drop(event, "missing_saga_id")
            return
        event_type = event.event_type
        at = event_seconds(event)
        with self._lock:
            if event_type is EventType.SAGA_CREATED:
                self._events_processed += 1
                self._open_saga(saga_id, event, at)
                return
            end = _SAGA_END.get(event_type)
            if end is not None:
                record = self._end_saga(saga_id, event, at, *end)
            else:
                step_id = payload_id(payload, "step_id")
                if step_id is None and event_type is not EventType.SAGA_COMPENSATING:
                    record = None
                elif event_type is EventType.SAGA_STEP_STARTED:
                    self._events_processed += 1
                    self._start_step(saga_id, step_id, event, at)  # type: ignore[arg-type]
                    return
                else:
                    record = self._finish_step(saga_id, step_id, event, at)
            if record is not None:
                self._events_processed += 1
                self._spans.append(record)
        if record is None:
            self._drop(event, "missing_step_id")
            return
        sink = self._sink
        if sink is not None:
            self._send(sink, record)

    def _open_saga(self, saga_id: str, event: HypervisorEvent, at: float) -> _OpenSaga:
        saga = self._sagas.get(saga_id)
        if saga is None:
            if len(self._sagas) >= self._max_open_sagas:
                evicted_id, evicted = self._sagas.popitem(last=False)
                for step_id in evicted.step_ids:
                    self._steps.pop((evicted_id, step_id), None)
                record_span_drop("open_saga_evicted")
            saga = self._sagas[saga_id] = _OpenSaga(event, at)
        elif event.event_type is EventType.SAGA_CREATED:
            # opened implicitly by an earlier step event: SAGA_CREATED knows better
            saga.start = min(saga.start, at)
            saga.agent_did = event.agent_did or saga.agent_did
            saga.session_id = event.session_id or saga.session_id
            saga.causal_trace_id = event.causal_trace_id or saga.causal_trace_id
        return saga

    def _start_step(self, saga_id: str, step_id: str, event: HypervisorEvent, at: float) -> None:
        saga = self._sagas.get(saga_id)
        if saga is None:  # steps without SAGA_CREATED still get a saga-level span
            saga = self._open_saga(saga_id, event, at)
        key = (saga_id, step_id)
        if key not in self._steps and len(self._steps) >= self._max_open_steps:
            (old_saga, old_step), _ = self._steps.popitem(last=False)
            old = self._sagas.get(old_saga)
            if old is not None:
                old.step_ids.discard(old_step)
            record_span_drop("open_step_evicted")
        self._steps[key] = (at, step_action_of(event.payload))
        saga.step_ids.add(step_id)

    def _finish_step(
        self, saga_id: str, step_id: str | None, event: HypervisorEvent, at: float
    ) -> SagaSpanRecord:
        """The span of a committed, failed or compensating step."""
        payload = event.payload
        event_type = event.event_type
        saga = self._sagas.get(saga_id)
        action = step_action_of(payload)
        start = at
        if step_id is not None:
            opened = self._steps.pop((saga_id, step_id), None)
            if saga is not None:
                saga.step_ids.discard(step_id)
            if opened is not None:
                start, started_action = opened
                action = action or started_action
        label = action or step_id or saga_id
        attributes: dict[str, Any] = {ATTR_SAGA_ID: saga_id}
        if step_id is not None:
            attributes[ATTR_STEP_ID] = step_id
        attributes[ATTR_STEP_ACTION] = label
        if event_type is EventType.SAGA_STEP_COMMITTED:
            name, status = f"saga.step.{label}", STATUS_OK
            attributes[ATTR_STATE] = status
            self._copy(payload, "result", ATTR_RESULT, attributes)
        elif event_type is EventType.SAGA_STEP_FAILED:
            name, status = f"saga.step.{label}", STATUS_ERROR
            attributes[ATTR_STATE] = status
            self._copy(payload, "error", ATTR_ERROR, attributes)
            self._copy(payload, "reason", ATTR_REASON, attributes)
        else:  # SAGA_COMPENSATING
            name, status = f"saga.compensate.{label}", STATUS_COMPENSATING
            attributes[ATTR_STATE] = status
            self._copy(payload, "reason", ATTR_REASON, attributes)
        return self._record(name, start, at, attributes, status, event, saga)

    def _end_saga(
        self, saga_id: str, event: HypervisorEvent, at: float, outcome: str, status: str
    ) -> SagaSpanRecord:
        saga = self._sagas.pop(saga_id, None)
        start = at
        if saga is not None:
            start = saga.start
            for step_id in saga.step_ids:
                if self._steps.pop((saga_id, step_id), None) is not None:
                    record_span_drop("unfinished_step")
        attributes: dict[str, Any] = {ATTR_SAGA_ID: saga_id, ATTR_STATE: status}
        self._copy(event.payload, "error", ATTR_ERROR, attributes)
        self._copy(event.payload, "reason", ATTR_REASON, attributes)
        return self._record(f"saga.{outcome}.{saga_id}", start, at, attributes, status, event, saga)

    @staticmethod
    def _copy(payload: Mapping[str, Any], key: str, attr: str, into: dict[str, Any]) -> None:
        value = payload.get(key)
        if value is not None:
            into[attr] = _attr(value)

    @staticmethod
    def _record(
        name: str,
        start: float,
        end: float,
        attributes: dict[str, Any],
        status: str,
        event: HypervisorEvent,
        saga: _OpenSaga | None,
    ) -> SagaSpanRecord:
        agent = event.agent_did if event.agent_did is not None else saga and saga.agent_did
        session = event.session_id if event.session_id is not None else saga and saga.session_id
        trace = event.causal_trace_id
        if trace is None and saga is not None:
            trace = saga.causal_trace_id
        if agent:
            attributes[ATTR_AGENT] = agent
        if session:
            attributes[ATTR_SESSION] = session
        if trace:
            attributes[ATTR_CAUSAL_TRACE] = trace
        # Events may arrive out of order; a span never ends before it starts.
        return SagaSpanRecord(name, start, max(start, end), attributes, status, trace)

    def _send(self, sink: SpanSink, record: SagaSpanRecord) -> None:
        try:
            sink.record_span(
                record.name,
                record.start_time,
                record.end_time,
                dict(record.attributes),
                record.status,
            )
        except Exception:
            record_span_drop("sink_error")
            _sink_log.warning(
                f"sink:{id(sink)}",
                "span sink %r raised; span %s dropped",
                sink,
                record.name,
                exc_info=True,
            )

    def _drop(self, event: HypervisorEvent, reason: str) -> None:
        record_event_drop(COMPONENT, reason)
        _log.debug(
            "saga_spans dropped %s event %s: %s", event.event_type.value, event.event_id, reason
        )


__all__ = [
    "ATTR_AGENT",
    "ATTR_CAUSAL_TRACE",
    "ATTR_ERROR",
    "ATTR_REASON",
    "ATTR_RESULT",
    "ATTR_SAGA_ID",
    "ATTR_SESSION",
    "ATTR_STATE",
    "ATTR_STEP_ACTION",
    "ATTR_STEP_ID",
    "SAGA_EVENTS",
    "STATUS_COMPENSATING",
    "STATUS_ERROR",
    "STATUS_OK",
    "SagaSpanExporter",
    "SagaSpanRecord",
]
