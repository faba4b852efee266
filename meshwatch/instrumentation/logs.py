"""JSON log lines that lead to traces, from the standard :mod:`logging` module.

One call::

    configure_logging(level=logging.INFO, agent_id="did:mesh:researcher", session_id="s-42")
    log.info("summarised", extra={"doc_id": 7})

writes one JSON object per line::

    {"timestamp": "2025-01-15T10:30:00.123+00:00", "level": "INFO", "logger": "agent",
     "message": "summarised", "agent_id": "did:mesh:researcher", "session_id": "s-42",
     "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
     "doc_id": 7}

Why each choice:

* **The trace comes from where the work is.** ``trace_id``/``span_id`` are the
  active OpenTelemetry span's when there is one (so Grafana's "logs to trace"
  link lands on the span Tempo holds), else the current causal trace of
  :func:`meshwatch.instrumentation.context.use_trace`, padded to the W3C
  widths exactly as ``CausalTraceId.to_traceparent`` pads them. This module is
  core, so it never imports OpenTelemetry: it looks the API module up in
  ``sys.modules``, where it is only if the application already uses it.
* **Identity per record, per context, or per process.** ``agent_id`` and
  ``session_id`` come from the record's ``extra`` first, then from
  :func:`log_context` (a context variable, so several agents in one process
  each tag their own lines, across ``await`` too), then from the values given
  to :func:`configure_logging`.
* **Any ``extra`` field, always valid JSON.** Values that JSON cannot hold
  (datetimes, sets, objects, NaN) are converted or stringified by
  :func:`json_safe`; a broken ``__str__`` or a bad ``%`` format never loses the
  line.
* **Composes with what the application has.** :func:`configure_logging` adds
  one handler and leaves every other handler alone; calling it again updates
  that handler instead of adding a second one.

Standard library only.
"""

from __future__ import annotations

import enum
import json
import logging
import math
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from datetime import time as time_of_day
from typing import IO, Any

from meshwatch.instrumentation.context import current_trace
from meshwatch.instrumentation.text import safe_str

_AGENT: ContextVar[str | None] = ContextVar("meshwatch_log_agent_id", default=None)
_SESSION: ContextVar[str | None] = ContextVar("meshwatch_log_session_id", default=None)

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
# Fields an ``extra`` may set per record (the rest of the core fields are fixed).
_OVERRIDABLE = ("agent_id", "session_id", "trace_id", "span_id")
_CORE = ("timestamp", "level", "logger", "message", "exception", "exception_type", "stack")
_MAX_DEPTH = 8
_OTEL_TRACE_MODULE = "opentelemetry.trace"


def json_safe(value: object, _depth: int = 0) -> Any:
    """``value`` as something :func:`json.dumps` accepts with ``allow_nan=False``.

    Containers are converted recursively (to ``_MAX_DEPTH`` levels, which also
    ends reference cycles), dates become ISO strings, enums their value,
    non-finite floats and everything else their ``str()``.
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if _depth >= _MAX_DEPTH:
        return safe_str(value)
    try:
        if isinstance(value, Mapping):
            return {
                (k if isinstance(k, str) else safe_str(k)): json_safe(v, _depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [json_safe(v, _depth + 1) for v in value]
        if isinstance(value, datetime | date | time_of_day):
            return value.isoformat()
        if isinstance(value, enum.Enum):
            return json_safe(value.value, _depth + 1)
    except Exception:  # a container that fails while being walked
        return safe_str(value)
    return safe_str(value)


def _otel_ids(otel: Any) -> tuple[str, str] | None:
    """The active OpenTelemetry span's ids, if the OTel API is loaded and a span is active."""
    if otel is None:
        return None
    try:
        ctx = otel.get_current_span().get_span_context()
        if not ctx.is_valid:
            return None
        return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
    except Exception:  # a broken or foreign API object must not cost the log line
        return None


def _active_ids() -> tuple[str | None, str | None]:
    """(trace_id, span_id) as 32/16 hex from the active OTel span, else the causal trace."""
    otel_ids = _otel_ids(sys.modules.get(_OTEL_TRACE_MODULE))
    if otel_ids is not None:
        return otel_ids
    trace = current_trace()
    if trace is None:
        return None, None
    return trace.trace_id_hex32, f"{trace.span_id:0>16}"


@contextmanager
def log_context(*, agent_id: str | None = None, session_id: str | None = None) -> Iterator[None]:
    """Tag every line logged inside the block (this thread or task) with these ids."""
    tokens = []
    if agent_id is not None:
        tokens.append((_AGENT, _AGENT.set(agent_id)))
    if session_id is not None:
        tokens.append((_SESSION, _SESSION.set(session_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line. See the module docstring for the fields."""

    def __init__(
        self,
        *,
        agent_id: str | None = None,
        session_id: str | None = None,
        static_fields: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__()
        self.agent_id = agent_id
        self.session_id = session_id
        self.static_fields = dict(static_fields or {})

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": self._message(record),
        }
        trace_id, span_id = _active_ids()
        ids = {
            "agent_id": _AGENT.get() or self.agent_id,
            "session_id": _SESSION.get() or self.session_id,
            "trace_id": trace_id,
            "span_id": span_id,
        }
        extras = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS}
        for key in _OVERRIDABLE:
            if extras.get(key) is not None:
                ids[key] = extras.pop(key)
        payload.update((k, json_safe(v)) for k, v in ids.items() if v is not None)
        for key, value in (*self.static_fields.items(), *extras.items()):
            payload[f"extra_{key}" if key in _CORE or key in ids else key] = json_safe(value)
        if record.exc_info and record.exc_info[0] is not None:
            payload["exception_type"] = record.exc_info[0].__name__
            payload["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exception"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(payload, ensure_ascii=False, allow_nan=False)

    @staticmethod
    def _message(record: logging.LogRecord) -> str:
        try:
            return record.getMessage()
        except Exception:  # wrong %-args: keep the line, show what was passed
            return f"{safe_str(record.msg)} (unformattable args: {safe_str(record.args)})"


class JsonLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure_logging` installs; its type marks it as ours."""


def configure_logging(
    *,
    level: int | str = logging.INFO,
    stream: IO[str] | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
    logger: logging.Logger | str | None = None,
    static_fields: Mapping[str, object] | None = None,
) -> JsonLogHandler:
    """Make ``logger`` (default: the root logger) also write JSON lines to ``stream``.

    ``stream`` defaults to stderr. Other handlers on the logger are kept. A
    second call updates the handler the first one added (stream, level, ids)
    and returns it. The logger's own level is lowered to ``level`` if it is
    higher, so the records reach the handler; it is never raised.
    """
    target = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
    numeric = logging.getLevelName(level) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    handler = next((h for h in target.handlers if isinstance(h, JsonLogHandler)), None)
    if handler is None:
        handler = JsonLogHandler(stream if stream is not None else sys.stderr)
        target.addHandler(handler)
    elif stream is not None and handler.stream is not stream:
        handler.setStream(stream)
    handler.setLevel(numeric)
    handler.setFormatter(
        JsonFormatter(agent_id=agent_id, session_id=session_id, static_fields=static_fields)
    )
    if target.level == logging.NOTSET or target.level > numeric:
        target.setLevel(numeric)
    return handler


__all__ = ["JsonFormatter", "JsonLogHandler", "configure_logging", "json_safe", "log_context"]
