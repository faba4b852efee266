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

Naming follows the OpenTelemetry GenAI semantic conventions (see
:data:`SEMCONV_VERSION`): span ``invoke_agent {gen_ai.agent.name}`` (kind
INTERNAL for an agent running in this process, CLIENT with ``remote=True`` for
a call to a remote agent service), ``execute_tool {gen_ai.tool.name}``
(INTERNAL), ``invoke_workflow {gen_ai.workflow.name}`` (INTERNAL),
``create_agent {gen_ai.agent.name}`` (CLIENT) and ``{gen_ai.operation.name}
{gen_ai.request.model}`` for an LLM call (CLIENT, :func:`llm_call`), with
``gen_ai.operation.name``, ``gen_ai.provider.name`` (required on agent spans:
meshwatch names itself when the caller does not say), ``gen_ai.agent.name``,
``gen_ai.tool.*``, ``gen_ai.conversation.id``, usage tokens set when known,
and ``error.type`` (the exception's class name) plus an ERROR status when the
block raises. The exception itself propagates untouched. ``gen_ai.agent.id``
is set only where the conventions keep it (remote ``invoke_agent`` and
``create_agent``); an in-process agent's id goes to ``meshwatch.agent.id``.

``OTEL_SEMCONV_STABILITY_OPT_IN``: with ``gen_ai_latest_experimental`` in it,
spans carry only the latest attribute names; without it they also carry the
pre-1.37 ``gen_ai.system`` beside ``gen_ai.provider.name``, so a backend still
on the older conventions keeps its provider. The tracer's schema URL is
:data:`SCHEMA_URL`.

Parents, in order: an explicit ``context``; else the active OpenTelemetry
span; else the current causal trace
(:func:`meshwatch.instrumentation.context.current_trace`), as a remote parent
with the causal ids zero-padded exactly as ``CausalTraceId.to_traceparent``
pads them, so these spans join the same trace as the saga spans and the
events of that causal trace. Inside a span the causal trace in context is set
to the span itself, so events emitted there (and log lines, and task-duration
exemplars) name the span.

Durations go to ``gen_ai_invoke_agent_duration_seconds``,
``gen_ai_execute_tool_duration_seconds`` and ``gen_ai_workflow_duration_seconds``
(labels ``gen_ai_agent_name``, ``gen_ai_tool_name`` or ``gen_ai_workflow_name``,
and ``error_type``, empty on success), kept by :data:`GENAI_METRICS`, a
:class:`~meshwatch.instrumentation.stores.MetricSource` to register with the
Prometheus adapter, with the span's trace id as exemplar.

:class:`GenAISpanMetrics` is an OpenTelemetry ``SpanProcessor`` and a
``MetricSource``: added to a tracer provider, it turns the GenAI spans of any
producer (the official ``opentelemetry-instrumentation-genai-*`` packages,
OpenLLMetry, ...) into LLM token, cost, duration and error series and agent,
tool and workflow durations, attributing every LLM call to the agent whose
``invoke_agent`` span encloses it. See its docstring.

Attributes pass through :func:`meshwatch.instrumentation.otel.otel_attributes_of`:
None is dropped and non-scalar values are stringified, so one odd value can
never make the exporter reject a batch.

This is an edge module: it imports OpenTelemetry.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import ExitStack, contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from meshwatch import __version__
from meshwatch.instrumentation.catalogue import (
    GENAI_EXECUTE_TOOL_DURATION,
    GENAI_INVOKE_AGENT_DURATION,
    GENAI_WORKFLOW_DURATION,
)
from meshwatch.instrumentation.context import current_trace, use_trace
from meshwatch.instrumentation.drops import RateLimitedLog, record_event_drop
from meshwatch.instrumentation.llm_metrics import LLMCallMetrics, use_agent
from meshwatch.instrumentation.otel import otel_attributes_of, parent_context
from meshwatch.instrumentation.stores import (
    EXEMPLAR_TRACE_ID_LABEL,
    CardinalityGuard,
    Exemplar,
    HistogramStore,
    MetricFamilySnapshot,
)
from meshwatch.instrumentation.trace import CausalTraceId

INSTRUMENTATION_SCOPE = "meshwatch.genai"
# The conventions followed: the GenAI semantic conventions of
# open-telemetry/semantic-conventions-genai (not yet released on their own; the
# metric and agent-span documents of May-August 2026), which build on the
# general semantic conventions 1.44.0, hence the schema URL.
SEMCONV_VERSION = "1.44.0"
SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"
STABILITY_OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"
LATEST_EXPERIMENTAL = "gen_ai_latest_experimental"

# Attribute keys and values of the GenAI semantic conventions (and error.type).
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_SYSTEM = "gen_ai.system"  # the provider's name before semconv 1.37
GEN_AI_AGENT_ID = "gen_ai.agent.id"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_WORKFLOW_NAME = "gen_ai.workflow.name"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION = "gen_ai.usage.cache_creation.input_tokens"
ERROR_TYPE = "error.type"
ERROR_OTHER = "_OTHER"  # the conventions' error.type when a failed span names none
OPERATION_INVOKE_AGENT = "invoke_agent"
OPERATION_EXECUTE_TOOL = "execute_tool"
OPERATION_INVOKE_WORKFLOW = "invoke_workflow"
OPERATION_CREATE_AGENT = "create_agent"
# Operations that are one call to a model.
LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
DEFAULT_PROVIDER = "meshwatch"
MESHWATCH_AGENT_ID = "meshwatch.agent.id"

# Older spellings that producers on earlier conventions still emit, read as a fallback.
_LEGACY_INPUT_TOKENS = "gen_ai.usage.prompt_tokens"
_LEGACY_OUTPUT_TOKENS = "gen_ai.usage.completion_tokens"
_LEGACY_CACHE_READ = "gen_ai.usage.cache_read_input_tokens"
_LEGACY_CACHE_CREATION = "gen_ai.usage.cache_creation_input_tokens"


def emits_legacy_attributes(environ: Mapping[str, str] = os.environ) -> bool:
    """False when ``OTEL_SEMCONV_STABILITY_OPT_IN`` asks for the latest GenAI conventions only."""
    opted = {part.strip() for part in environ.get(STABILITY_OPT_IN, "").split(",")}
    return LATEST_EXPERIMENTAL not in opted


_EMIT_LEGACY = emits_legacy_attributes()

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

_log = logging.getLogger(__name__)
_drop_log = RateLimitedLog(_log)
_W3C = TraceContextTextMapPropagator()


class GenAIMetrics:
    """Duration histograms of agent invocations, tool executions and workflows (a MetricSource)."""

    def __init__(self, *, guard: CardinalityGuard | None = None) -> None:
        self.invoke_agent_duration = HistogramStore(GENAI_INVOKE_AGENT_DURATION, guard=guard)
        self.execute_tool_duration = HistogramStore(GENAI_EXECUTE_TOOL_DURATION, guard=guard)
        self.workflow_duration = HistogramStore(GENAI_WORKFLOW_DURATION, guard=guard)

    def metric_families(self) -> Iterator[MetricFamilySnapshot]:
        yield self.invoke_agent_duration.snapshot()
        yield self.execute_tool_duration.snapshot()
        yield self.workflow_duration.snapshot()


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
    tracer = _tracer(tracer_provider)
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
            error_type = _mark_failed(span, exc)
            raise
        finally:
            elapsed = time.perf_counter() - start
            exemplar = (
                Exemplar({EXEMPLAR_TRACE_ID_LABEL: f"{ids.trace_id:032x}"}, elapsed, time.time())
                if ids.is_valid and ids.trace_flags.sampled
                else None
            )
            store.observe((label, error_type), elapsed, exemplar)


def _tracer(tracer_provider: trace.TracerProvider | None) -> trace.Tracer:
    return trace.get_tracer(
        INSTRUMENTATION_SCOPE, __version__, tracer_provider=tracer_provider, schema_url=SCHEMA_URL
    )


def _provider_attributes(provider: str | None) -> dict[str, Any]:
    name = provider or DEFAULT_PROVIDER
    if _EMIT_LEGACY:
        return {GEN_AI_PROVIDER_NAME: name, GEN_AI_SYSTEM: name}
    return {GEN_AI_PROVIDER_NAME: name}


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
    CLIENT); the default is an agent running here (INTERNAL). ``provider`` is
    ``gen_ai.provider.name`` (``meshwatch`` when not given). ``agent_id`` is
    ``gen_ai.agent.id`` on a remote call and ``meshwatch.agent.id`` otherwise.
    ``attributes`` adds any others (the GenAI ones given as arguments win).
    ``context`` overrides the parent (for example ``extract(headers)``). LLM
    calls recorded inside the block (:func:`llm_call`,
    :meth:`LLMCallMetrics.record_call`) are attributed to this agent.
    """
    name = str(agent_name)
    with (
        _genai_span(
            f"{OPERATION_INVOKE_AGENT} {name}" if name else OPERATION_INVOKE_AGENT,
            SpanKind.CLIENT if remote else SpanKind.INTERNAL,
            {
                GEN_AI_OPERATION_NAME: OPERATION_INVOKE_AGENT,
                GEN_AI_AGENT_NAME: name or None,
                GEN_AI_AGENT_ID if remote else MESHWATCH_AGENT_ID: agent_id,
                GEN_AI_CONVERSATION_ID: conversation_id,
                **_provider_attributes(provider),
            },
            attributes,
            context,
            tracer_provider,
            (metrics or GENAI_METRICS).invoke_agent_duration,
            name,
        ) as span,
        use_agent(name),
    ):
        yield span


@contextmanager
def invoke_workflow(
    workflow_name: str,
    *,
    conversation_id: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    context: Context | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    metrics: GenAIMetrics | None = None,
) -> Iterator[Span]:
    """A span ``invoke_workflow {workflow_name}`` around a multi-agent workflow; yields the span.

    The workflow name must be low-cardinality (a name from code, such as
    ``support_triage``): it is a label of ``gen_ai_workflow_duration_seconds``.
    """
    name = str(workflow_name)
    with _genai_span(
        f"{OPERATION_INVOKE_WORKFLOW} {name}",
        SpanKind.INTERNAL,
        {
            GEN_AI_OPERATION_NAME: OPERATION_INVOKE_WORKFLOW,
            GEN_AI_WORKFLOW_NAME: name,
            GEN_AI_CONVERSATION_ID: conversation_id,
        },
        attributes,
        context,
        tracer_provider,
        (metrics or GENAI_METRICS).workflow_duration,
        name,
    ) as span:
        yield span


@contextmanager
def create_agent(
    agent_name: str,
    *,
    provider: str | None = None,
    agent_id: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    context: Context | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> Iterator[Span]:
    """A span ``create_agent {agent_name}`` (CLIENT) around creating an agent; yields the span.

    Set ``gen_ai.agent.id`` on the span inside the block if the provider
    assigns the id (``span.set_attribute(GEN_AI_AGENT_ID, ...)``).
    """
    name = str(agent_name)
    tracer = _tracer(tracer_provider)
    merged = otel_attributes_of(
        {
            **(attributes or {}),
            GEN_AI_OPERATION_NAME: OPERATION_CREATE_AGENT,
            GEN_AI_AGENT_NAME: name,
            GEN_AI_AGENT_ID: agent_id,
            **_provider_attributes(provider),
        }
    )
    with tracer.start_as_current_span(
        f"{OPERATION_CREATE_AGENT} {name}",
        context=_parent(context),
        kind=SpanKind.CLIENT,
        attributes=merged,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            _mark_failed(span, exc)
            raise


def _mark_failed(span: Span, exc: BaseException) -> str:
    error_type = _error_type(exc)
    span.set_attribute(ERROR_TYPE, error_type)
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, _description(exc)))
    return error_type


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


# --- LLM calls ---------------------------------------------------------------------------


class LLMCall:
    """The handle :func:`llm_call` yields: report what the model returned with :meth:`usage`."""

    __slots__ = (
        "cache_creation_tokens",
        "cache_read_tokens",
        "input_tokens",
        "output_tokens",
        "response_model",
        "span",
    )

    def __init__(self, span: Span) -> None:
        self.span = span
        self.input_tokens = 0
        self.output_tokens = 0
        self.cache_read_tokens = 0
        self.cache_creation_tokens = 0
        self.response_model: str | None = None

    def usage(
        self,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_creation_tokens: int = 0,
        response_model: str | None = None,
    ) -> None:
        """The response's token counts (input includes the cache reads and writes)."""
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.cache_read_tokens = cache_read_tokens
        self.cache_creation_tokens = cache_creation_tokens
        self.response_model = response_model


@contextmanager
def llm_call(
    metrics: LLMCallMetrics,
    model: str,
    *,
    provider: str,
    operation: str = "chat",
    attributes: Mapping[str, Any] | None = None,
    context: Context | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> Iterator[LLMCall]:
    """A span ``{operation} {model}`` (CLIENT) around one model call, and its metrics.

    ::

        with llm_call(genai, "gpt-4o", provider="openai") as call:
            response = my_client.complete(prompt)
            call.usage(input_tokens=response.prompt_tokens, output_tokens=response.completion_tokens)

    For agents whose model client no instrumentation covers. The span sits
    under the current span (the invoking agent's, in its causal trace) and
    carries the request and response model, the usage tokens and, when the
    block raises, ``error.type``. The call is recorded in ``metrics``
    directly, attributed to the enclosing :func:`invoke_agent`; a
    :class:`GenAISpanMetrics` on the tracer provider skips meshwatch's own
    spans, so nothing counts twice.
    """
    tracer = _tracer(tracer_provider)
    merged = otel_attributes_of(
        {
            **(attributes or {}),
            GEN_AI_OPERATION_NAME: operation,
            GEN_AI_REQUEST_MODEL: model,
            **_provider_attributes(provider),
        }
    )
    error_type: str | None = None
    start = time.perf_counter()
    with tracer.start_as_current_span(
        f"{operation} {model}",
        context=_parent(context),
        kind=SpanKind.CLIENT,
        attributes=merged,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        call = LLMCall(span)
        try:
            yield call
        except BaseException as exc:
            error_type = _mark_failed(span, exc)
            raise
        finally:
            elapsed = time.perf_counter() - start
            span.set_attributes(
                otel_attributes_of(
                    {
                        GEN_AI_RESPONSE_MODEL: call.response_model,
                        GEN_AI_USAGE_INPUT_TOKENS: call.input_tokens,
                        GEN_AI_USAGE_OUTPUT_TOKENS: call.output_tokens,
                        GEN_AI_USAGE_CACHE_READ: call.cache_read_tokens or None,
                        GEN_AI_USAGE_CACHE_CREATION: call.cache_creation_tokens or None,
                    }
                )
            )
            metrics.record_call(
                model,
                provider=provider,
                operation=operation,
                input_tokens=call.input_tokens,
                output_tokens=call.output_tokens,
                cache_read_tokens=call.cache_read_tokens,
                cache_creation_tokens=call.cache_creation_tokens,
                duration_seconds=elapsed,
                error_type=error_type,
                response_model=call.response_model,
            )


# --- metrics from any producer's GenAI spans ----------------------------------------------

# An open span's entry: the invoke_agent span whose agent is in force inside it.
_Entry = ReadableSpan


class GenAISpanMetrics(LLMCallMetrics, SpanProcessor):
    """An OpenTelemetry ``SpanProcessor`` that turns GenAI spans into meshwatch metrics.

    ::

        genai = GenAISpanMetrics(prices={"gpt-4o": {"input": 2.50, "output": 10.00}})
        tracer_provider.add_span_processor(genai)
        serve_metrics(8000, sources=[genai])

    From every ended span whose ``gen_ai.operation.name`` is an LLM call
    (``chat``, ``text_completion``, ``generate_content``, ``embeddings``) it
    records tokens (input, output, cache reads and writes), cost, duration
    and errors (:class:`~meshwatch.instrumentation.llm_metrics.LLMCallMetrics`);
    from ``invoke_agent``, ``execute_tool`` and ``invoke_workflow`` spans the
    duration histograms of :class:`GenAIMetrics`. Whichever library produced
    the span: only the convention's attributes are read (and the pre-1.37
    spellings ``gen_ai.system``, ``gen_ai.usage.prompt_tokens`` ... as a
    fallback).

    Attribution. LLM instrumentations put no agent on their spans. Each
    span, when it starts, inherits from its parent the ``invoke_agent`` span
    in force (an ``invoke_agent`` span is its own), so an LLM call is
    credited to the agent whose span encloses it, however deep, and after a
    handoff to the agent handed to. The agent's name is read from that span
    when the call ends, so a name set after the span started still counts.
    Only spans inside an agent are tracked, and at most ``max_open_spans`` of
    them: past that the oldest entry is dropped (counted in
    ``meshwatch_events_dropped_total{component="genai_spans",reason="open_spans_full"}``),
    and a span that ends after its parent (async work) keeps the agent it
    inherited when it started.

    meshwatch's own spans (scope ``meshwatch.genai``) already recorded their
    metrics when they ended, so they are tracked for attribution only.
    Ending a span costs its thread a dict pop and a queue append; the
    attributes are read and the series updated when a scrape (or
    :meth:`flush`) folds the queue in, or inline once ``max_pending`` spans
    wait. Nothing here raises into the code that ends a span.
    """

    def __init__(
        self,
        *,
        prices: Mapping[str, Mapping[str, float]] | None = None,
        guard: CardinalityGuard | None = None,
        max_open_spans: int = 10_000,
        max_pending: int = 10_000,
    ) -> None:
        super().__init__(prices=prices, guard=guard, max_pending=max_pending)
        if isinstance(max_open_spans, bool) or not isinstance(max_open_spans, int):
            raise TypeError(f"max_open_spans must be an int, got {max_open_spans!r}")
        if max_open_spans < 1:
            raise ValueError(f"max_open_spans must be at least 1, got {max_open_spans}")
        self.work = GenAIMetrics(guard=guard)
        self.max_open_spans = max_open_spans
        self._open: dict[int, _Entry] = {}
        self._spans: deque[tuple[ReadableSpan, _Entry | None]] = deque()
        self._evict_lock = threading.Lock()

    def open_spans(self) -> int:
        """How many started spans are tracked for attribution right now."""
        return len(self._open)

    # -- SpanProcessor ------------------------------------------------------------------

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        try:
            attributes = span.attributes
            if attributes is not None and attributes.get(GEN_AI_OPERATION_NAME) == (
                OPERATION_INVOKE_AGENT
            ):
                entry: _Entry | None = span
            else:
                parent = span.parent
                entry = None if parent is None else self._open.get(parent.span_id)
            if entry is None:
                return
            opened = self._open
            if len(opened) >= self.max_open_spans:
                self._evict()
            opened[span.context.span_id] = entry
        except Exception:
            self._failed("on_start")

    def _evict(self) -> None:
        with self._evict_lock:
            opened = self._open
            while len(opened) >= self.max_open_spans:
                try:
                    opened.pop(next(iter(opened)))
                except (StopIteration, KeyError, RuntimeError):
                    return
                record_event_drop(_COMPONENT, "open_spans_full")

    def on_end(self, span: ReadableSpan) -> None:
        """Queue a GenAI span for the next scrape; costs the ending thread a dict pop and an append."""
        try:
            context = span.context
            entry = self._open.pop(context.span_id, None) if context is not None else None
            attributes = span.attributes
            if attributes is None or attributes.get(GEN_AI_OPERATION_NAME) is None:
                return
            spans = self._spans
            spans.append((span, entry))
            if len(spans) >= self.max_pending:
                self.flush()
        except Exception:
            self._failed("on_end")

    def flush(self) -> None:
        """Fold the queued spans and records into the series (a scrape does this first)."""
        spans = self._spans
        while True:
            try:
                span, entry = spans.popleft()
            except IndexError:
                break
            try:
                self._derive(span, entry)
            except Exception:
                self._failed("derive")
        super().flush()

    def _derive(self, span: ReadableSpan, entry: _Entry | None) -> None:
        attributes = span.attributes or {}
        operation = attributes.get(GEN_AI_OPERATION_NAME)
        scope = span.instrumentation_scope
        if scope is not None and scope.name == INSTRUMENTATION_SCOPE:
            return
        if operation in LLM_OPERATIONS:
            self._llm(span, attributes, str(operation), entry)
        elif operation == OPERATION_INVOKE_AGENT:
            self._duration(span, self.work.invoke_agent_duration, _agent_name(span))
        elif operation == OPERATION_EXECUTE_TOOL:
            tool = attributes.get(GEN_AI_TOOL_NAME)
            self._duration(span, self.work.execute_tool_duration, "" if tool is None else tool)
        elif operation == OPERATION_INVOKE_WORKFLOW:
            name = attributes.get(GEN_AI_WORKFLOW_NAME)
            self._duration(span, self.work.workflow_duration, "" if name is None else name)

    def _llm(
        self,
        span: ReadableSpan,
        attributes: Mapping[str, Any],
        operation: str,
        entry: _Entry | None,
    ) -> None:
        get = attributes.get
        provider = get(GEN_AI_PROVIDER_NAME) or get(GEN_AI_SYSTEM) or ""
        model = get(GEN_AI_REQUEST_MODEL) or get(GEN_AI_RESPONSE_MODEL) or ""
        inputs = get(GEN_AI_USAGE_INPUT_TOKENS)
        outputs = get(GEN_AI_USAGE_OUTPUT_TOKENS)
        read = get(GEN_AI_USAGE_CACHE_READ)
        created = get(GEN_AI_USAGE_CACHE_CREATION)
        self._record(
            str(model),
            str(provider),
            get(_LEGACY_INPUT_TOKENS) if inputs is None else inputs,
            get(_LEGACY_OUTPUT_TOKENS) if outputs is None else outputs,
            get(_LEGACY_CACHE_READ) if read is None else read,
            get(_LEGACY_CACHE_CREATION) if created is None else created,
            "" if entry is None else _agent_name(entry),
            operation,
            _seconds(span),
            _span_error(span, attributes),
            get(GEN_AI_RESPONSE_MODEL),
        )

    def _duration(self, span: ReadableSpan, store: HistogramStore, label: object) -> None:
        elapsed = _seconds(span)
        if elapsed is None:
            return
        attributes = span.attributes or {}
        ids = span.context
        ended = (span.end_time or 0) / 1e9
        exemplar = (
            Exemplar({EXEMPLAR_TRACE_ID_LABEL: f"{ids.trace_id:032x}"}, elapsed, ended)
            if ids is not None and ids.trace_flags.sampled
            else None
        )
        store.observe((str(label), _span_error(span, attributes) or ""), elapsed, exemplar)

    def _failed(self, where: str) -> None:
        record_event_drop(_COMPONENT, f"{where}_error")
        _drop_log.warning(where, "GenAISpanMetrics.%s failed; span skipped", where, exc_info=True)

    def shutdown(self) -> None:
        self.flush()
        self._open.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def metric_families(self) -> Iterator[MetricFamilySnapshot]:
        self.flush()
        yield from super().metric_families()
        yield from self.work.metric_families()


_COMPONENT = "genai_spans"
_AGENT_SPAN_PREFIX = OPERATION_INVOKE_AGENT + " "


def _agent_name(span: ReadableSpan) -> str:
    """The agent of an ``invoke_agent`` span: its ``gen_ai.agent.name``, else from its name."""
    attributes = span.attributes
    name = attributes.get(GEN_AI_AGENT_NAME) if attributes is not None else None
    if name is None:
        return (
            span.name.removeprefix(_AGENT_SPAN_PREFIX)
            if span.name.startswith(_AGENT_SPAN_PREFIX)
            else ""
        )
    return str(name)


def _seconds(span: ReadableSpan) -> float | None:
    start, end = span.start_time, span.end_time
    if start is None or end is None or end < start:
        return None
    return (end - start) / 1e9


def _span_error(span: ReadableSpan, attributes: Mapping[str, Any]) -> str | None:
    error = attributes.get(ERROR_TYPE)
    if error:
        return str(error)
    return ERROR_OTHER if span.status.status_code is StatusCode.ERROR else None


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
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_TOOL_CALL_ID",
    "GEN_AI_TOOL_NAME",
    "GEN_AI_TOOL_TYPE",
    "GEN_AI_WORKFLOW_NAME",
    "LLM_OPERATIONS",
    "SCHEMA_URL",
    "SEMCONV_VERSION",
    "GenAIMetrics",
    "GenAISpanMetrics",
    "LLMCall",
    "create_agent",
    "emits_legacy_attributes",
    "execute_tool",
    "extract",
    "inject",
    "invoke_agent",
    "invoke_workflow",
    "llm_call",
    "receive",
]
