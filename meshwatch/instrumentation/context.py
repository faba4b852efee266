"""The current causal trace of this thread or task, and the exemplar trace-id hook.

A :class:`~contextvars.ContextVar` holds the :class:`CausalTraceId` the code
is working under, so instrumentation deep in a call stack (governance
latency, task metrics, logs) can attach the trace without threading it
through every signature. Asyncio tasks and ``contextvars.copy_context()``
inherit it; plain threads start empty, as with OpenTelemetry's context.

Exemplars (:func:`trace_exemplar`) need a 32-hex trace id. When
OpenTelemetry is in use, the active OTel span is the better answer (it is the
trace Tempo holds), but this module must not import OpenTelemetry: the OTel
adapter registers a provider with :func:`register_trace_id_provider` instead. :func:`current_trace_id_hex` asks
the providers first, then falls back to the causal trace in context.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from meshwatch.instrumentation.drops import RateLimitedLog
from meshwatch.instrumentation.stores import EXEMPLAR_TRACE_ID_LABEL, Exemplar
from meshwatch.instrumentation.trace import CausalTraceId

_log = RateLimitedLog(logging.getLogger(__name__))
_CURRENT: ContextVar[CausalTraceId | None] = ContextVar("meshwatch_causal_trace", default=None)
_TRACE_HEX = re.compile(r"[0-9a-f]{32}")
_ALL_ZERO = "0" * 32

TraceIdProvider = Callable[[], "str | None"]
_providers: tuple[TraceIdProvider, ...] = ()
_providers_lock = threading.Lock()


#: ``current_trace()``: the causal trace this code runs under, or None outside
#: :func:`use_trace`. The context variable's own ``get``, not a function around it:
#: hooks on the runtime's call path read it for every event they queue.
current_trace: Callable[[], CausalTraceId | None] = _CURRENT.get


@contextmanager
def use_trace(trace: CausalTraceId | str) -> Iterator[CausalTraceId]:
    """Run the ``with`` body under ``trace`` (a CausalTraceId or its full_id string).

    >>> with use_trace(CausalTraceId().child()) as t:
    ...     current_trace() is t
    True
    """
    if isinstance(trace, str):
        trace = CausalTraceId.from_string(trace)
    elif not isinstance(trace, CausalTraceId):
        raise TypeError(f"use_trace takes a CausalTraceId or str, got {type(trace).__name__}")
    token = _CURRENT.set(trace)
    try:
        yield trace
    finally:
        _CURRENT.reset(token)


def register_trace_id_provider(provider: TraceIdProvider) -> TraceIdProvider:
    """Add a source of the current 32-hex trace id; asked before the causal context.

    Returns ``provider`` so it can be used as a decorator. Registering the same
    callable twice has no further effect.
    """
    global _providers
    if not callable(provider):
        raise TypeError(f"a trace id provider must be callable, got {provider!r}")
    with _providers_lock:
        if provider not in _providers:
            _providers = (*_providers, provider)
    return provider


def unregister_trace_id_provider(provider: TraceIdProvider) -> None:
    """Remove a provider added with :func:`register_trace_id_provider` (no-op if absent)."""
    global _providers
    with _providers_lock:
        _providers = tuple(p for p in _providers if p != provider)


def current_trace_id_hex() -> str | None:
    """The 32-lowercase-hex trace id to attach as an exemplar, or None.

    Providers are asked in registration order; the first valid answer wins. A
    provider that raises or answers something that is not a 32-hex non-zero id
    is skipped (and logged, rate-limited), never propagated.
    """
    for provider in _providers:
        try:
            trace_id = provider()
        except Exception:
            _log.warning(
                f"provider:{provider!r}",
                "trace id provider %r raised; skipped",
                provider,
                exc_info=True,
            )
            continue
        if trace_id is None:
            continue
        if isinstance(trace_id, str) and _TRACE_HEX.fullmatch(trace_id) and trace_id != _ALL_ZERO:
            return trace_id
        _log.warning(
            f"provider:{provider!r}",
            "trace id provider %r returned %r; skipped",
            provider,
            trace_id,
        )
    trace = _CURRENT.get()
    return None if trace is None else trace.trace_id_hex32


def trace_exemplar(value: float) -> Exemplar | None:
    """An exemplar of ``value`` naming the current trace, or None outside any trace.

    What latency and duration observations attach, so a slow bucket on a
    dashboard links to the trace that caused it.
    """
    if _providers:
        trace_id = current_trace_id_hex()
        if trace_id is None:
            return None
    else:  # current_trace_id_hex() without providers, inlined: every task exit asks
        trace = _CURRENT.get()
        if trace is None:
            return None
        trace_id = trace.trace_id_hex32
    return Exemplar({EXEMPLAR_TRACE_ID_LABEL: trace_id}, value, time.time())


__all__ = [
    "current_trace",
    "current_trace_id_hex",
    "register_trace_id_provider",
    "trace_exemplar",
    "unregister_trace_id_provider",
    "use_trace",
]
