"""A conversation between agents in two processes is ONE trace with correct parents.

Process A (this test) opens ``invoke_agent orchestrator``, injects the trace
into a message's headers and sends them to process B (this file run as a
script) on stdin. B continues the trace with ``receive``, opens its own agent
and tool spans, logs a line, and replies with headers injected from inside its
tool span; A continues the trace again from the reply. Each process exports to
its own in-memory exporter; B prints its spans as JSON on stdout.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from meshwatch.instrumentation.genai import execute_tool, inject, invoke_agent, receive
from meshwatch.instrumentation.logs import configure_logging

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _in_memory_tracing() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _as_json(span: ReadableSpan) -> dict[str, object]:
    return {
        "name": span.name,
        "trace_id": f"{span.context.trace_id:032x}",
        "span_id": f"{span.context.span_id:016x}",
        "parent_span_id": None if span.parent is None else f"{span.parent.span_id:016x}",
        "parent_is_remote": None if span.parent is None else span.parent.is_remote,
    }


def agent_b() -> None:
    """Process B: receive the message, work under its trace, reply with headers."""
    provider, exporter = _in_memory_tracing()
    log_stream = io.StringIO()
    configure_logging(stream=log_stream, logger="agent-b", agent_id="did:mesh:writer")
    message = json.load(sys.stdin)
    with (
        receive(message["headers"]),
        invoke_agent("writer", agent_id="did:mesh:writer", tracer_provider=provider),
        execute_tool("draft", call_id="call-1", tracer_provider=provider),
    ):
        logging.getLogger("agent-b").info("drafting %s", message["body"])
        reply = inject({})
    spans = [_as_json(s) for s in exporter.get_finished_spans()]
    json.dump({"spans": spans, "reply": reply, "log": log_stream.getvalue()}, sys.stdout)


def test_a_conversation_across_two_processes_is_one_trace() -> None:
    provider, exporter = _in_memory_tracing()
    with invoke_agent("orchestrator", tracer_provider=provider) as orchestrator:
        message = {"body": "outline", "headers": inject({})}
        done = subprocess.run(
            [sys.executable, __file__],
            input=json.dumps(message),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    b = json.loads(done.stdout)
    with (
        receive(b["reply"]),
        invoke_agent("orchestrator-review", tracer_provider=provider),
    ):
        pass

    a_spans = {s["name"]: s for s in map(_as_json, exporter.get_finished_spans())}
    b_spans = {s["name"]: s for s in b["spans"]}
    a_root, a_review = (
        a_spans["invoke_agent orchestrator"],
        a_spans["invoke_agent orchestrator-review"],
    )
    b_root, b_tool = b_spans["invoke_agent writer"], b_spans["execute_tool draft"]

    trace_ids = {s["trace_id"] for s in (*a_spans.values(), *b_spans.values())}
    assert trace_ids == {f"{orchestrator.get_span_context().trace_id:032x}"}, "one trace"
    assert a_root["parent_span_id"] is None
    assert (b_root["parent_span_id"], b_root["parent_is_remote"]) == (a_root["span_id"], True)
    assert (b_tool["parent_span_id"], b_tool["parent_is_remote"]) == (b_root["span_id"], False)
    assert (a_review["parent_span_id"], a_review["parent_is_remote"]) == (b_tool["span_id"], True)

    (log_line,) = [json.loads(line) for line in b["log"].splitlines()]
    assert log_line["message"] == "drafting outline"
    assert (log_line["trace_id"], log_line["span_id"]) == (b_tool["trace_id"], b_tool["span_id"])
    assert log_line["agent_id"] == "did:mesh:writer"


if __name__ == "__main__":
    agent_b()
