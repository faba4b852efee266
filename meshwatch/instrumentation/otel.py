"""The OpenTelemetry edge: saga spans as real OTel spans, and OTLP export that never blocks.

:class:`OTelSpanSink` implements the core's ``SpanSink``. Unlike the tutorial's
bridge (which opens a span when the sink is *called*, so every span starts and
ends at export time and lasts microseconds), each span here starts and ends at
the recorded event times.

Trace identity. Every span carrying ``agent.causal_trace_id`` (``trace/span[/parent]``)
goes into the OpenTelemetry trace whose id is the causal trace id zero-padded
to 128 bits, so all spans of one causal trace are one trace in Tempo and spans
of another causal trace never join it. Its parent is the *causal span* itself
(the causal span id zero-padded to 64 bits, as a remote span context): that is
the id ``CausalTraceId.to_traceparent()`` hands to other processes, so an OTel
span created from that ``traceparent`` is the same node, and saga spans hang
under it. The saga span's own id is a fresh one from the tracer provider's id
generator: several saga spans routinely share one causal id (every step of a
saga emitted under the same trace), and span ids must stay unique. A span
without a (valid) causal trace id starts a new trace of its own; it never
attaches to whatever OTel span happens to be active on the emitting thread.

Span names stay low-cardinality: ``saga.completed.<saga_id>`` becomes
``saga.completed`` (likewise ``escalated`` and ``failed``) because Tempo's
metrics generator turns span names into metric labels; the saga id is in the
``agent.saga.id`` attribute. Step names keep their action
(``saga.step.validate``), which is a word from the workflow's code.

:func:`configure_tracing` sets up OTLP/HTTP export from the standard
``OTEL_EXPORTER_OTLP_*`` variables behind :class:`BoundedBatchSpanProcessor`:
ending a span appends to a bounded queue and returns; a background thread
exports. A slow or dead collector therefore costs the agent nothing but the
spans that do not fit, and those are counted
(``meshwatch_spans_dropped_total{reason}``; exports in
``meshwatch_spans_exported_total``, exposed by :data:`SPAN_EXPORT_METRICS`).
It also registers :func:`active_otel_trace_id` with the core's context, so
governance latency observations carry the active span's trace id as an
exemplar.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    format_trace_id,
)
from opentelemetry.util.types import AttributeValue

from meshwatch import __version__
from meshwatch.instrumentation.catalogue import SPANS_EXPORTED
from meshwatch.instrumentation.context import register_trace_id_provider
from meshwatch.instrumentation.drops import RateLimitedLog, record_span_drop
from meshwatch.instrumentation.endpoints import check_endpoint
from meshwatch.instrumentation.saga_spans import (
    ATTR_CAUSAL_TRACE,
    ATTR_ERROR,
    ATTR_REASON,
    ATTR_SAGA_ID,
    STATUS_ERROR,
)
from meshwatch.instrumentation.stores import CounterStore, MetricFamilySnapshot
from meshwatch.instrumentation.text import safe_str
from meshwatch.instrumentation.trace import CausalTraceId

INSTRUMENTATION_SCOPE = "meshwatch.instrumentation"
DEFAULT_SERVICE_NAME = "meshwatch-agent"
TRACES_PATH = "/v1/traces"
DEFAULT_SHUTDOWN_TIMEOUT = 2.0

# Saga-level span names end in the saga id; OTel names keep only the prefix.
_SAGA_LEVEL_PREFIXES = ("saga.completed.", "saga.escalated.", "saga.failed.")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_ROOT = Context()  # an empty context: "no parent", whatever span is active

_log = logging.getLogger(__name__)
_drop_log = RateLimitedLog(_log)

_SPANS_EXPORTED = CounterStore(SPANS_EXPORTED)


class _SpanExportMetrics:
    """MetricSource of spans exported by :class:`BoundedBatchSpanProcessor`s (process-wide).

    Spans *dropped* are in ``meshwatch_spans_dropped_total``, which the core's
    ``DROPS`` source holds (and ``ScrapeExporter`` exposes by default).
    """

    def metric_families(self) -> Iterator[MetricFamilySnapshot]:
        yield _SPANS_EXPORTED.snapshot()


SPAN_EXPORT_METRICS = _SpanExportMetrics()


def spans_exported() -> float:
    """Spans handed to exporters successfully so far, in this process."""
    return _SPANS_EXPORTED.get()


# --- the sink -----------------------------------------------------------------


class OTelSpanSink:
    """A ``SpanSink`` that records each saga span as a real OpenTelemetry span.

    ``tracer_provider`` defaults to the global one (``trace.get_tracer_provider()``,
    resolved lazily, so the sink may be built before tracing is configured).
    See the module docstring for how trace and parent ids are derived.
    """

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer(
            INSTRUMENTATION_SCOPE, __version__, tracer_provider=tracer_provider
        )
        register_trace_id_provider(active_otel_trace_id)

    def record_span(
        self,
        name: str,
        start_time: float,
        end_time: float,
        attributes: Mapping[str, Any],
        status: str,
    ) -> None:
        """Record one finished span; times are epoch seconds of its start and end events."""
        start_ns = _to_ns(start_time)
        end_ns = max(start_ns, _to_ns(end_time))
        otel_attributes = otel_attributes_of(attributes)
        span_name = otel_span_name(name)
        if span_name != name and ATTR_SAGA_ID not in otel_attributes:
            otel_attributes[ATTR_SAGA_ID] = name[len(span_name) + 1 :]
        span = self._tracer.start_span(
            span_name,
            context=parent_context(attributes.get(ATTR_CAUSAL_TRACE)),
            kind=SpanKind.INTERNAL,
            attributes=otel_attributes,
            start_time=start_ns,
        )
        if status == STATUS_ERROR:
            message = attributes.get(ATTR_ERROR) or attributes.get(ATTR_REASON) or ""
            span.set_status(Status(StatusCode.ERROR, str(message)))
        span.end(end_time=end_ns)


def _to_ns(seconds: float) -> int:
    """Epoch seconds to nanoseconds, exact to the event's microsecond.

    Event timestamps are datetimes (microsecond resolution); as epoch floats
    they carry about 0.2 us of noise, so ``round(s * 1e9)`` would invent
    nanoseconds. Rounding to the microsecond gives back the event's own time.
    """
    return round(seconds * 1_000_000) * 1_000


def otel_span_name(name: str) -> str:
    """The low-cardinality OTel name: ``saga.completed.<id>`` -> ``saga.completed``."""
    for prefix in _SAGA_LEVEL_PREFIXES:
        if name.startswith(prefix):
            return prefix[:-1]
    return name


def parent_context(causal_trace_id: object) -> Context:
    """The context to start a span in: under the causal span, or a fresh root.

    Accepts a ``CausalTraceId`` or its string form; anything else (None,
    malformed) gives an empty context, i.e. a new trace.
    """
    if isinstance(causal_trace_id, str):
        try:
            causal_trace_id = CausalTraceId.from_string(causal_trace_id)
        except ValueError:
            _log.debug("ignoring malformed causal trace id %r", causal_trace_id)
            return _ROOT
    if not isinstance(causal_trace_id, CausalTraceId):
        return _ROOT
    parent = SpanContext(
        trace_id=causal_trace_id.otel_trace_id,
        span_id=causal_trace_id.otel_span_id,
        is_remote=True,
        trace_flags=_SAMPLED,
    )
    return trace.set_span_in_context(NonRecordingSpan(parent), _ROOT)


def otel_attributes_of(attributes: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """Attributes OTLP can carry: None dropped, scalars kept, anything else as text.

    Integers outside int64 become text too: the OTLP encoder would reject the
    whole batch over one of them, losing every other span with it.
    """
    result: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        converted = _attribute_value(value)
        if converted is not None:
            result[key if isinstance(key, str) else str(key)] = converted
    return result


def _attribute_value(value: object) -> AttributeValue | None:
    if value is None:
        return None
    if isinstance(value, bool | str | float):
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else str(value)
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        items = [_attribute_value(v) for v in value]
        kinds = {type(v) for v in items}
        if len(kinds) == 1 and kinds <= {bool, str, float, int}:
            return tuple(items)
    return safe_str(value)


def active_otel_trace_id() -> str | None:
    """The 32-hex trace id of the active OpenTelemetry span, or None.

    Registered with :func:`meshwatch.instrumentation.context.register_trace_id_provider`
    so exemplars name the trace Tempo holds.
    """
    context = trace.get_current_span().get_span_context()
    return format_trace_id(context.trace_id) if context.is_valid else None


# --- bounded, counted export --------------------------------------------------


class _CountingSpanExporter(SpanExporter):
    """Tells the processor what reaches the exporter, then what it exported or failed to."""

    def __init__(self, exporter: SpanExporter, processor: BoundedBatchSpanProcessor) -> None:
        self.exporter = exporter
        self._processor = processor

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        count = len(spans)
        if not self._processor._handed_out(count):
            return SpanExportResult.FAILURE  # shutdown gave up: these were counted as lost
        try:
            result = self.exporter.export(spans)
        except Exception:
            _drop_log.warning("export", "span exporter raised; %d spans lost", count, exc_info=True)
            result = SpanExportResult.FAILURE
        self._processor._exported(count, result is SpanExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class BoundedBatchSpanProcessor(SpanProcessor):
    """The SDK's BatchSpanProcessor with the queue bound enforced, drops counted, shutdown bounded.

    The SDK processor drops the oldest span when its queue is full and only
    logs it. This processor keeps its own count of spans accepted but not yet
    handed to the exporter (incremented in :meth:`on_end`, decremented when the
    exporter receives a batch) and refuses a span when that count reaches
    ``max_queue_size``, counting it as ``queue_full``. The count never
    undercounts the SDK queue (a batch leaves the queue before it reaches the
    exporter), so the inner queue, of the same size, never overflows: every
    lost span is counted exactly once, using public SDK interfaces only.

    **Shutdown is bounded.** The SDK's shutdown waits up to 30 s for an export
    to a dead or hanging collector. :meth:`shutdown` waits at most
    ``shutdown_timeout`` seconds (2 by default) for the queue to drain, then
    stops the exporter (which aborts its retries) and gives up: the spans still
    queued or in an unfinished export are counted as ``shutdown``.

    Reasons counted in ``meshwatch_spans_dropped_total``: ``queue_full``,
    ``export_failed`` (the exporter gave up, e.g. the collector is down),
    ``shutdown`` (ended after shutdown, or not sent when shutdown gave up).
    :meth:`dropped` and :attr:`exported` are this processor's own counts (the
    metric is process-wide), so one processor's losses can be checked alone.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int = 2048,
        max_export_batch_size: int = 512,
        schedule_delay_millis: float = 5000,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    ) -> None:
        if isinstance(max_queue_size, bool) or not isinstance(max_queue_size, int):
            raise TypeError(f"max_queue_size must be an int, got {max_queue_size!r}")
        if (
            isinstance(shutdown_timeout, bool)
            or not isinstance(shutdown_timeout, int | float)
            or not 0 <= shutdown_timeout < float("inf")
        ):
            raise ValueError(f"shutdown_timeout must be seconds >= 0, got {shutdown_timeout!r}")
        self._lock = threading.Lock()
        self._pending = 0
        self._in_flight = 0
        self._shutdown = False
        self._abandoned = False
        self._dropped: dict[str, int] = {}
        self._exported_count = 0
        self._max_queue_size = max_queue_size
        self.shutdown_timeout = float(shutdown_timeout)
        self._counting = _CountingSpanExporter(exporter, self)
        self._batch = BatchSpanProcessor(
            self._counting,
            max_queue_size=max_queue_size,
            max_export_batch_size=max_export_batch_size,
            schedule_delay_millis=schedule_delay_millis,
        )

    @property
    def exporter(self) -> SpanExporter:
        """The exporter spans are sent to."""
        return self._counting.exporter

    @property
    def pending(self) -> int:
        """Spans accepted and not yet handed to the exporter."""
        return self._pending

    @property
    def exported(self) -> int:
        """Spans this processor's exporter accepted."""
        return self._exported_count

    def dropped(self, reason: str) -> int:
        """Spans this processor lost for ``reason`` (queue_full, export_failed, shutdown)."""
        return self._dropped.get(reason, 0)

    def _drop(self, reason: str, count: int) -> None:
        """Count ``count`` lost spans, here and process-wide; call with the lock held."""
        if count:
            self._dropped[reason] = self._dropped.get(reason, 0) + count
            record_span_drop(reason, count)

    def _handed_out(self, count: int) -> bool:
        """A batch reaches the exporter; False when shutdown already gave up on it."""
        with self._lock:
            if self._abandoned:
                return False
            self._pending -= count
            self._in_flight += count
            return True

    def _exported(self, count: int, ok: bool) -> None:
        with self._lock:
            if self._abandoned:
                return  # counted as lost when shutdown gave up
            self._in_flight -= count
            if ok:
                self._exported_count += count
                _SPANS_EXPORTED.inc((), count)
            else:
                self._drop("export_failed", count)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._batch.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None or not context.trace_flags.sampled:
            return
        with self._lock:
            if self._shutdown:
                reason = "shutdown"
            elif self._pending >= self._max_queue_size:
                reason = "queue_full"
            else:
                self._pending += 1
                self._batch.on_end(span)
                return
            self._drop(reason, 1)
        _drop_log.warning(f"drop:{reason}", "span %s dropped: %s", span.name, reason)

    def shutdown(self) -> None:
        """Export what is queued within ``shutdown_timeout`` seconds, then stop; count the rest."""
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
        stopper = threading.Thread(
            target=self._batch.shutdown, name="meshwatch-span-shutdown", daemon=True
        )
        stopper.start()
        stopper.join(self.shutdown_timeout)
        if stopper.is_alive():
            try:
                self._counting.exporter.shutdown()  # aborts the exporter's retries
            except Exception:
                _log.warning("span exporter shutdown raised", exc_info=True)
        with self._lock:
            self._abandoned = True
            lost, self._pending, self._in_flight = self._pending + self._in_flight, 0, 0
            self._drop("shutdown", lost)
        if lost:
            _drop_log.warning(
                "drop:shutdown",
                "%d spans not sent: shutdown gave up after %.1f s",
                lost,
                self.shutdown_timeout,
            )

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._batch.force_flush(timeout_millis)


def configure_tracing(
    service_name: str | None = None,
    *,
    endpoint: str | None = None,
    exporter: SpanExporter | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    max_queue_size: int = 2048,
    max_export_batch_size: int = 512,
    schedule_delay_millis: float = 5000,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    set_global: bool = True,
) -> TracerProvider:
    """A TracerProvider exporting over OTLP/HTTP through a bounded, counted batch queue.

    ``service_name`` defaults to ``$OTEL_SERVICE_NAME`` (or ``service.name`` in
    ``$OTEL_RESOURCE_ATTRIBUTES``), else ``meshwatch-agent``.
    ``endpoint`` defaults to what the exporter reads from the standard variables
    (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, else ``OTEL_EXPORTER_OTLP_ENDPOINT``
    plus ``/v1/traces``; likewise ``_HEADERS``, ``_TIMEOUT``, ``_COMPRESSION``,
    certificates); a base URL given here gets ``/v1/traces`` appended.
    ``exporter`` replaces the OTLP exporter (tests, other protocols).
    ``OTEL_RESOURCE_ATTRIBUTES`` is honoured; ``resource_attributes`` add to it.

    With ``set_global`` (the default) the provider becomes the global one; the
    OpenTelemetry API allows that once per process. Call ``provider.shutdown()``
    at exit to flush (the SDK also does so via ``atexit``); it returns within
    ``shutdown_timeout`` seconds even with a dead or hanging collector, counting
    the spans it could not send. An ``endpoint`` that is not an http(s) URL
    raises ValueError here, not on every batch.
    """
    if exporter is None:
        if endpoint:
            endpoint = _traces_url(check_endpoint(endpoint))
        exporter = OTLPSpanExporter(endpoint=endpoint)
    attributes = dict(resource_attributes or {})
    if service_name:
        attributes[SERVICE_NAME] = service_name
    resource = Resource.create(attributes)  # adds OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(
        BoundedBatchSpanProcessor(
            exporter,
            max_queue_size=max_queue_size,
            max_export_batch_size=max_export_batch_size,
            schedule_delay_millis=schedule_delay_millis,
            shutdown_timeout=shutdown_timeout,
        )
    )
    if set_global:
        trace.set_tracer_provider(provider)
    register_trace_id_provider(active_otel_trace_id)
    return provider


def _traces_url(endpoint: str) -> str:
    """``endpoint`` as a full traces URL: a bare base URL gets ``/v1/traces``."""
    if urlsplit(endpoint).path in ("", "/"):
        return endpoint.rstrip("/") + TRACES_PATH
    return endpoint


__all__ = [
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "SPAN_EXPORT_METRICS",
    "BoundedBatchSpanProcessor",
    "OTelSpanSink",
    "active_otel_trace_id",
    "configure_tracing",
    "otel_attributes_of",
    "otel_span_name",
    "parent_context",
    "spans_exported",
]
