"""JSON log lines: every field, the trace from the active span or causal trace, never a lost line."""

from __future__ import annotations

import io
import json
import logging
import math
from datetime import UTC, datetime

import pytest
from opentelemetry.sdk.trace import TracerProvider

from meshwatch.instrumentation.context import use_trace
from meshwatch.instrumentation.logs import (
    JsonFormatter,
    JsonLogHandler,
    configure_logging,
    json_safe,
    log_context,
)
from meshwatch.instrumentation.trace import CausalTraceId


@pytest.fixture
def logger() -> logging.Logger:
    """A logger outside the logging tree: no parent, no pytest capture handler, no leftovers."""
    return logging.Logger("test.logs")


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_call_writes_json_lines_with_every_field(logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging(stream=stream, logger=logger, agent_id="did:mesh:a", session_id="s-1")
    logger.info("hello %s", "world", extra={"doc_id": 7, "tags": ("x", "y")})
    (line,) = lines(stream)
    stamp = datetime.fromisoformat(line.pop("timestamp"))
    assert stamp.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
    assert line == {
        "level": "INFO",
        "logger": logger.name,
        "message": "hello world",
        "agent_id": "did:mesh:a",
        "session_id": "s-1",
        "doc_id": 7,
        "tags": ["x", "y"],
    }


def test_trace_and_span_come_from_the_causal_trace(logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging(stream=stream, logger=logger)
    trace = CausalTraceId().child()
    with use_trace(trace):
        logger.warning("inside")
    logger.warning("outside")
    inside, outside = lines(stream)
    padded = trace.to_traceparent().split("-")
    assert (inside["trace_id"], inside["span_id"]) == (padded[1], padded[2])
    assert "trace_id" not in outside and "span_id" not in outside


def test_the_active_otel_span_wins_over_the_causal_trace(logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging(stream=stream, logger=logger)
    tracer = TracerProvider().get_tracer("test")
    with use_trace(CausalTraceId()), tracer.start_as_current_span("work") as span:
        logger.info("in span")
    ctx = span.get_span_context()
    (line,) = lines(stream)
    assert line["trace_id"] == f"{ctx.trace_id:032x}"
    assert line["span_id"] == f"{ctx.span_id:016x}"


def test_ids_from_extra_then_context_then_configuration(logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging(stream=stream, logger=logger, agent_id="process", session_id="p-s")
    logger.info("configured")
    with log_context(agent_id="ctx-agent"):
        logger.info("context")
        logger.info("extra", extra={"agent_id": "extra-agent", "session_id": "e-s"})
    logger.info("restored")
    got = [(line["agent_id"], line["session_id"]) for line in lines(stream)]
    assert got == [
        ("process", "p-s"),
        ("ctx-agent", "p-s"),
        ("extra-agent", "e-s"),
        ("process", "p-s"),
    ]


def test_exceptions_are_included(logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging(stream=stream, logger=logger)
    try:
        raise KeyError("missing")
    except KeyError:
        logger.exception("lookup failed")
    (line,) = lines(stream)
    assert line["level"] == "ERROR"
    assert line["exception_type"] == "KeyError"
    assert "Traceback" in line["exception"] and "missing" in line["exception"]


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_unserialisable_extras_and_bad_format_args_never_lose_the_line(
    logger: logging.Logger,
) -> None:
    stream = io.StringIO()
    configure_logging(stream=stream, logger=logger)
    cyclic: list = []
    cyclic.append(cyclic)
    logger.info(
        "value %d",
        "not-a-number",
        extra={
            "when": datetime(2025, 1, 15, tzinfo=UTC),
            "obj": object(),
            "bad": Unprintable(),
            "nan": math.nan,
            "keys": {(1, 2): {3}},
            "cyclic": cyclic,
            "level": "shadowed",
        },
    )
    (line,) = lines(stream)
    assert line["message"].startswith("value %d (unformattable args:")
    assert line["when"] == "2025-01-15T00:00:00+00:00"
    assert line["obj"].startswith("<object object")
    assert line["bad"] == "<unprintable Unprintable>"
    assert line["nan"] == "nan"
    assert line["keys"] == {"(1, 2)": [3]}
    assert isinstance(line["cyclic"], list)
    assert line["level"] == "INFO" and line["extra_level"] == "shadowed"


def test_it_composes_with_existing_handlers_and_is_idempotent(logger: logging.Logger) -> None:
    plain = io.StringIO()
    existing = logging.StreamHandler(plain)
    logger.addHandler(existing)
    first, second = io.StringIO(), io.StringIO()
    handler = configure_logging(stream=first, logger=logger, agent_id="one")
    again = configure_logging(stream=second, logger=logger, agent_id="two", level="DEBUG")
    assert again is handler
    assert [type(h) for h in logger.handlers] == [logging.StreamHandler, JsonLogHandler]
    logger.debug("x")
    assert first.getvalue() == ""
    assert lines(second)[0]["agent_id"] == "two"
    assert plain.getvalue() == "x\n", "the application's handler still gets its records"


def test_the_logger_level_is_lowered_never_raised(logger: logging.Logger) -> None:
    logger.setLevel(logging.DEBUG)
    configure_logging(stream=io.StringIO(), logger=logger, level=logging.WARNING)
    assert logger.level == logging.DEBUG
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging(logger=logger, level="LOUD")


def test_formatter_can_be_used_with_any_handler() -> None:
    record = logging.LogRecord("n", logging.INFO, __file__, 1, "m", (), None)
    payload = json.loads(JsonFormatter(static_fields={"service": "agent"}).format(record))
    assert payload["service"] == "agent" and payload["message"] == "m"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (3, 3),
        (math.inf, "inf"),
        ({"a": {1, 2}}, {"a": [1, 2]}),
        ((1, "b"), [1, "b"]),
        (logging.INFO, 20),
    ],
    ids=["none", "int", "inf", "set-in-dict", "tuple", "int-constant"],
)
def test_json_safe(value: object, expected: object) -> None:
    assert json_safe(value) == expected
    json.dumps(json_safe(value), allow_nan=False)


def test_the_default_target_is_the_root_logger() -> None:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    stream = io.StringIO()
    try:
        handler = configure_logging(stream=stream, level=logging.INFO)
        assert root.handlers == [*handlers, handler]
        logging.getLogger("some.library").info("propagated")
    finally:
        for extra in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(extra)
        root.setLevel(level)
    (line,) = lines(stream)
    assert (line["logger"], line["message"]) == ("some.library", "propagated")
