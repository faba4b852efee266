"""Agent and tool spans in the OpenTelemetry GenAI conventions, and trace propagation in messages.

::

    with invoke_agent("researcher", agent_id="did:mesh:researcher", conversation_id="c-1"):
        with execute_tool("web_search", call_id="call_7"):
            results = search(query)
        headers = inject({})          # W3C traceparent for the current span
        send_to_writer(payload, headers)

    # in the writer agent: another thread, process or host
    with receive(message.headers), invoke_agent("writer"):
        ...                           # same trace; parent = the researcher's span

Naming follows the GenAI semantic conventions (agent spans, status
Development): span ``invoke_agent {gen_ai.agent.name}`` (kind INTERNAL for an
agent running in this process, CLIENT with ``remote=True`` for a call to a
remote agent service) and ``execute_tool {gen_ai.tool.name}`` (kind INTERNAL),
with ``gen_ai.operation.name``, ``gen_ai.agent.id``, ``gen_ai.agent.name``,
``gen_ai.provider.name``, ``gen_ai.tool.name``, ``gen_ai.tool.call.id``,
``gen_ai.tool.type``, ``gen_ai.conversation.id`` set when known, and
``error.type`` (the exception's class name) plus an ERROR status when the block
raises. The exception itself propagates untouched.

Parents, in order: an explicit ``context``; else the active OpenTelemetry
span; else the current causal trace
(:func:`meshwatch.instrumentation.context.current_trace`), as a remote parent
with the causal ids zero-padded exactly as ``CausalTraceId.to_traceparent``
pads them, so these spans join the same trace as the saga spans and the
events of that causal trace. Inside a span the causal trace in context is set
to the span itself, so events emitted there (and log lines, and task-duration
exemplars) name the span.

Durations go to ``gen_ai_invoke_agent_duration_seconds`` and
``gen_ai_execute_tool_duration_seconds`` (labels: agent or tool name, and
``error_type``, empty on success), kept by :data:`GENAI_METRICS`, a
:class:`~meshwatch.instrumentation.values.MetricSource` to register with the
Prometheus adapter, with the span's trace id as exemplar.

Attributes pass through :func:`meshwatch.instrumentation.otel.otel_attributes_of`:
None is dropped and non-scalar values are stringified, so one odd value can
never make the exporter reject a batch.

This is an edge module: it imports OpenTelemetry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import ExitStack, contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from meshwatch import __version__
from meshwatch.instrumentation.catalogue import (
    GENAI_EXECUTE_TOOL_DURATION,
    GENAI_INVOKE_AGENT_DURATION,
)
from meshwatch.instrumentation.context import current_trace, use_trace
from meshwatch.instrumentation.otel import otel_attributes_of, parent_context
from meshwatch.instrumentation.trace import CausalTraceId
from meshwatch.instrumentation.values import (
    EXEMPLAR_TRACE_ID_LABEL,
    CardinalityGuard,
    Exemplar,
    HistogramStore,
    MetricFamilySnapshot,
)

INSTRUMENTATION_SCOPE = "meshwatch.genai"

# Attribute keys and values of the GenAI semantic conventions (and error.type).
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_AGENT_ID = "gen_ai.agent.id"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
ERROR_TYPE = "error.type"
OPERATION_INVOKE_AGENT = "invoke_agent"
OPERATION_EXECUTE_TOOL = "execute_tool"

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

_log = logging.getLogger(__name__)
_W3C = TraceContextTextMapPropagator()


class GenAIMetrics:
    """Duration histograms of agent invocations and tool executions (a MetricSource)."""

    def __init__(self, *, guard: CardinalityGuard | None = None) -> None:
        self.invoke_agent_duration = HistogramStore(GENAI_INVOKE_AGENT_DURATION, guard=guard)
        self.execute_tool_duration = HistogramStore(GENAI_EXECUTE_TOOL_DURATION, guard=guard)

    def metric_families(self) -> Iterator[MetricFamilySnapshot]:
        yield self.invoke_agent_duration.snapshot()
        yield self.execute_tool_duration.snapshot()


GENAI_METRICS = GenAIMetrics()


# --- spans ------------------------------------------------------------------------------


def _parent(explicit: Context | None) -> Context | None:
    """The context to start in (None = the current one). See the module docstring."""
    if explicit is not None:
        return explicit
    if trace.get_current_span().get_span_context().is_valid:
        return None
    causal = current_trace()
    return None if causal is None else parent_context(causal)


def _error_type(exc: BaseException) -> str:
    return type(exc).__qualname__


def _description(exc: BaseException) -> str:
    try:
        return f"{_error_type(exc)}: {exc}"
    except Exception:  # an exception whose __str__ raises
        return _error_type(exc)


@contextmanager
def _genai_span(
    name: str,
    kind: SpanKind,
    attributes: dict[str, Any],
    extra: Mapping[str, Any] | None,
    context: Context | None,
    tracer_provider: trace.TracerProvider | None,
    store: HistogramStore,
    label: str,
) -> Iterator[Span]:
    tracer = trace.get_tracer(INSTRUMENTATION_SCOPE, __version__, tracer_provider=tracer_provider)
    merged = otel_attributes_of({**(extra or {}), **attributes})
    error_type = ""
    start = time.perf_counter()
    with (
        tracer.start_as_current_span(
            name,
            context=_parent(context),
            kind=kind,
            attributes=merged,
            record_exception=False,
            set_status_on_exception=False,
        ) as span,
        ExitStack() as stack,
    ):
        ids = span.get_span_context()
        if ids.is_valid:
            stack.enter_context(use_trace(_causal_of(ids.trace_id, ids.span_id)))
        try:
            yield span
        except BaseException as exc:
            error_type = _error_type(exc)
            span.set_attribute(ERROR_TYPE, error_type)
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, _description(exc)))
            raise
        finally:
            elapsed = time.perf_counter() - start
            exemplar = (
                Exemplar({EXEMPLAR_TRACE_ID_LABEL: f"{ids.trace_id:032x}"}, elapsed, time.time())
                if ids.is_valid and ids.trace_flags.sampled
                else None
            )
            store.observe((label, error_type), elapsed, exemplar)


def _causal_of(trace_id: int, span_id: int) -> CausalTraceId:
    """The OTel span as a causal trace id (native widths when the ids are padded causal ones)."""
    return CausalTraceId.from_traceparent(f"00-{trace_id:032x}-{span_id:016x}-01")


@contextmanager
def invoke_agent(
    agent_name: str,
    *,
    agent_id: str | None = None,
    conversation_id: str | None = None,
    provider: str | None = None,
    remote: bool = False,
    attributes: Mapping[str, Any] | None = None,
    context: Context | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    metrics: GenAIMetrics | None = None,
) -> Iterator[Span]:
    """A span ``invoke_agent {agent_name}`` around an agent's turn; yields the span.

    ``remote=True`` marks a call to an agent service elsewhere (span kind
    CLIENT); the default is an agent running here (INTERNAL). ``attributes``
    adds any others (the GenAI ones given as arguments win). ``context``
    overrides the parent (for example ``extract(headers)``).
    """
    name = str(agent_name)
    with _genai_span(
        f"{OPERATION_INVOKE_AGENT} {name}" if name else OPERATION_INVOKE_AGENT,
        SpanKind.CLIENT if remote else SpanKind.INTERNAL,
        {
            GEN_AI_OPERATION_NAME: OPERATION_INVOKE_AGENT,
            GEN_AI_AGENT_NAME: name or None,
            GEN_AI_AGENT_ID: agent_id,
            GEN_AI_CONVERSATION_ID: conversation_id,
            GEN_AI_PROVIDER_NAME: provider,
        },
        attributes,
        context,
        tracer_provider,
        (metrics or GENAI_METRICS).invoke_agent_duration,
        name,
    ) as span:
        yield span


@contextmanager
def execute_tool(
    tool_name: str,
    *,
    call_id: str | None = None,
    tool_type: str | None = None,
    conversation_id: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    context: Context | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    metrics: GenAIMetrics | None = None,
) -> Iterator[Span]:
    """A span ``execute_tool {tool_name}`` around one tool call; yields the span.

    ``tool_type`` is the convention's ``function``, ``extension`` or
    ``datastore`` when known.
    """
    name = str(tool_name)
    with _genai_span(
        f"{OPERATION_EXECUTE_TOOL} {name}",
        SpanKind.INTERNAL,
        {
            GEN_AI_OPERATION_NAME: OPERATION_EXECUTE_TOOL,
            GEN_AI_TOOL_NAME: name,
            GEN_AI_TOOL_CALL_ID: call_id,
            GEN_AI_TOOL_TYPE: tool_type,
            GEN_AI_CONVERSATION_ID: conversation_id,
        },
        attributes,
        context,
        tracer_provider,
        (metrics or GENAI_METRICS).execute_tool_duration,
        name,
    ) as span:
        yield span


# --- propagation in message headers -------------------------------------------------------


class _HeaderGetter(Getter[Mapping[Any, Any]]):
    """Reads W3C headers from any mapping: any key case, str or bytes values, lists."""

    def get(self, carrier: Mapping[Any, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            value = next(
                (v for k, v in carrier.items() if isinstance(k, str) and k.lower() == key), None
            )
        if value is None:
            return None
        values = value if isinstance(value, list | tuple) else [value]
        decoded = [_header_text(v) for v in values]
        return [v for v in decoded if v is not None] or None

    def keys(self, carrier: Mapping[Any, Any]) -> list[str]:
        return [k for k in carrier if isinstance(k, str)]


def _header_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("ascii", errors="replace")
    return None


_GETTER = _HeaderGetter()


def inject(headers: MutableMapping[str, Any] | None = None) -> MutableMapping[str, Any]:
    """Write ``traceparent`` (and ``tracestate`` if any) for the current span into ``headers``.

    The current span is the active OpenTelemetry span, else the current causal
    trace. Returns ``headers`` (a new dict if None was given); with neither a
    span nor a causal trace it is returned unchanged.
    """
    carrier: MutableMapping[str, Any] = {} if headers is None else headers
    if trace.get_current_span().get_span_context().is_valid:
        _W3C.inject(carrier)
    else:
        causal = current_trace()
        if causal is not None:
            carrier[TRACEPARENT] = causal.to_traceparent()
    return carrier


def extract(headers: Mapping[Any, Any] | None) -> Context:
    """The context a received message's ``headers`` continue (for ``context=``).

    Missing, malformed or non-mapping headers give the current context, so
    the receiver's spans then start as they would without the message.
    """
    if not isinstance(headers, Mapping):
        if headers is not None:
            _log.debug("ignoring message headers of type %s", type(headers).__name__)
        return otel_context.get_current()
    return _W3C.extract(headers, getter=_GETTER)


@contextmanager
def receive(headers: Mapping[Any, Any] | None) -> Iterator[Context]:
    """Run the block in the trace the message ``headers`` carry; yields that context.

    Spans opened inside have the sender's span as parent. The causal trace in
    context is set to the sender's span too, so events and logs of the block
    carry the conversation's trace id.
    """
    ctx = extract(headers)
    token = otel_context.attach(ctx)
    try:
        with ExitStack() as stack:
            ids = trace.get_current_span(ctx).get_span_context()
            if ids.is_valid:
                stack.enter_context(use_trace(_causal_of(ids.trace_id, ids.span_id)))
            yield ctx
    finally:
        otel_context.detach(token)


__all__ = [
    "ERROR_TYPE",
    "GENAI_METRICS",
    "GEN_AI_AGENT_ID",
    "GEN_AI_AGENT_NAME",
    "GEN_AI_CONVERSATION_ID",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_PROVIDER_NAME",
    "GEN_AI_TOOL_CALL_ID",
    "GEN_AI_TOOL_NAME",
    "GEN_AI_TOOL_TYPE",
    "GenAIMetrics",
    "execute_tool",
    "extract",
    "inject",
    "invoke_agent",
    "receive",
]
