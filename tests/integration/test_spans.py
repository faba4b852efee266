"""Spans, live: the demo exports over OTLP/HTTP to a receiver in the test, which decodes the
real protobuf. One agent conversation must be one trace, every span's parent the
span that caused it (across agents, through message headers), with the GenAI
semantic-convention names and attributes.

The conversation shape (from :mod:`meshwatch.demo.world`): an ``invoke_workflow
conversation`` span is the root, the orchestrator's ``invoke_agent`` span under it;
LLM calls are ``chat``/``embeddings`` spans inside an agent's turn; a message is a ``send <type>`` PRODUCER span
on the sender and a ``process <type>`` CONSUMER span on the receiver, inside
which the receiver's ``invoke_agent`` span runs; tools run as ``execute_tool``
spans inside the tool agent's turn; saga spans hang under the publisher's turn.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from meshwatch.demo.runner import SERVICE_NAMESPACE
from meshwatch.demo.world import ORCHESTRATOR
from meshwatch.instrumentation.catalogue import GENAI_EXECUTE_TOOL_DURATION, GOVERNANCE_LATENCY
from tests.integration.helpers.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.integration.helpers.poll import wait_until
from tests.integration.helpers.stack import LiveStack

pytestmark = pytest.mark.integration

CONVERSATION = "gen_ai.conversation.id"
OPERATION = "gen_ai.operation.name"
ROOT_NAME = "invoke_workflow conversation"
ORCHESTRATOR_TURN = f"invoke_agent {ORCHESTRATOR.name}"
# Conversations take seconds; spans leave the demo a second after they end.
SPANS_TIMEOUT = 60.0
WANTED_CONVERSATIONS = 3

Trace = list[ReceivedSpan]


def _complete(spans: Iterable[ReceivedSpan], root: ReceivedSpan) -> Trace | None:
    """The trace of ``root`` if every span's parent has arrived too, else None."""
    trace = [s for s in spans if s.trace_id == root.trace_id]
    ids = {s.span_id for s in trace}
    if all(s.parent_span_id in ids for s in trace if s.span_id != root.span_id):
        return trace
    return None


@pytest.fixture(scope="module")
def conversations(live_stack: LiveStack, otlp: OtlpReceiver) -> dict[str, Trace]:
    """Complete conversation traces by conversation id: root received and no parent missing."""

    def complete() -> dict[str, Trace]:
        spans = otlp.spans()
        found = {}
        for root in spans:
            if (
                root.name == ROOT_NAME
                and not root.parent_span_id
                and CONVERSATION in root.attributes
            ):
                trace = _complete(spans, root)
                if trace is not None:
                    found[root.attributes[CONVERSATION]] = trace
        return found if len(found) >= WANTED_CONVERSATIONS else {}

    return wait_until(complete, timeout=SPANS_TIMEOUT, what="complete conversation traces")


def by_id(trace: Trace) -> dict[str, ReceivedSpan]:
    return {s.span_id: s for s in trace}


def service(span: ReceivedSpan) -> str:
    return str(span.resource["service.name"])


def test_spans_arrive_as_otlp_protobuf_from_each_agent_role(
    otlp: OtlpReceiver, conversations: dict[str, Trace]
) -> None:
    spans = otlp.spans()
    assert {s.resource.get("service.namespace") for s in spans} == {SERVICE_NAMESPACE}
    services = {service(s) for trace in conversations.values() for s in trace}
    assert {"orchestrator", "researcher", "writer", "tool-search"} <= services


def test_one_conversation_is_one_trace(otlp: OtlpReceiver, conversations: dict[str, Trace]) -> None:
    spans = otlp.spans()
    for cid, trace in conversations.items():
        (trace_id,) = {s.trace_id for s in trace}
        tagged = [s for s in spans if s.attributes.get(CONVERSATION) == cid]
        assert {s.trace_id for s in tagged} == {trace_id}, f"{cid} is split across traces"
        others = {s.attributes[CONVERSATION] for s in trace if CONVERSATION in s.attributes}
        assert others == {cid}, f"trace of {cid} holds spans of {others - {cid}}"
        assert len({service(s) for s in trace}) >= 3, f"{cid} crossed fewer than three agents"


def test_every_span_has_the_parent_that_caused_it(conversations: dict[str, Trace]) -> None:
    for cid, trace in conversations.items():
        spans = by_id(trace)
        roots = [s for s in trace if not s.parent_span_id]
        assert [r.name for r in roots] == [ROOT_NAME], f"{cid}: roots {roots}"
        for span in trace:
            if not span.parent_span_id:
                continue
            parent = spans[span.parent_span_id]
            where = f"{cid}: {service(span)} {span.name!r} under {service(parent)} {parent.name!r}"
            assert span.start_ns >= parent.start_ns, f"{where} starts before its parent"
            assert span.end_ns >= span.start_ns, f"{where} ends before it starts"
            if span.kind == Span.SPAN_KIND_CONSUMER:
                # A message is processed under the span that sent it, in another agent.
                message_type = span.name.removeprefix("process ")
                assert parent.kind == Span.SPAN_KIND_PRODUCER, where
                assert parent.name == f"send {message_type}", where
                assert service(parent) != service(span), where
            elif span.name == ORCHESTRATOR_TURN and parent.name == ROOT_NAME:
                # The orchestrator's turn is the workflow's first step.
                assert service(parent) == service(span), where
            elif span.name.startswith("invoke_agent "):
                # An agent's turn runs inside the processing of the message it got.
                assert parent.kind == Span.SPAN_KIND_CONSUMER, where
                assert service(parent) == service(span), where
            else:
                # Sends, tool calls and saga spans happen during some agent's own turn.
                assert parent.name.startswith("invoke_agent "), where
                assert service(parent) == service(span), where


def test_genai_spans_carry_the_semantic_convention_names_and_attributes(
    otlp: OtlpReceiver, conversations: dict[str, Trace]
) -> None:
    genai = [s for t in conversations.values() for s in t if s.attributes.get(OPERATION)]
    assert {s.attributes[OPERATION] for s in genai} == {
        "invoke_workflow",
        "invoke_agent",
        "execute_tool",
        "chat",
        "embeddings",
    }
    for span in genai:
        attrs = span.attributes
        if attrs[OPERATION] in ("chat", "embeddings"):
            # An LLM call: a CLIENT span named for its operation and model, with usage.
            assert span.kind == Span.SPAN_KIND_CLIENT, span
            assert span.name == f"{attrs[OPERATION]} {attrs['gen_ai.request.model']}"
            assert attrs["gen_ai.provider.name"] == "meshwatch-demo"
            assert isinstance(attrs["gen_ai.usage.input_tokens"], int)
            continue
        assert span.kind == Span.SPAN_KIND_INTERNAL, span
        assert attrs[CONVERSATION].startswith("conv-"), span
        if attrs[OPERATION] == "invoke_workflow":
            assert span.name == f"invoke_workflow {attrs['gen_ai.workflow.name']}"
        elif attrs[OPERATION] == "invoke_agent":
            assert span.name == f"invoke_agent {attrs['gen_ai.agent.name']}"
            assert attrs["meshwatch.agent.id"].startswith("did:mesh:")
            assert "gen_ai.agent.id" not in attrs, "not on an in-process agent's span"
            assert attrs["gen_ai.provider.name"]
            assert attrs["gen_ai.agent.name"] == service(span)
        else:
            assert span.name == f"execute_tool {attrs['gen_ai.tool.name']}"
            assert attrs["gen_ai.tool.call.id"]
            assert attrs["gen_ai.tool.type"] == "function"
    # A failed call says why, as the conventions ask: error.type and an ERROR status.
    tools = [s for s in otlp.spans() if s.attributes.get(OPERATION) == "execute_tool"]
    failed = [s for s in tools if s.status_code == Status.STATUS_CODE_ERROR]
    assert failed, (
        "no failed tool call exported (the demo forces its first denied and failing calls)"
    )
    for span in tools:
        assert (span.status_code == Status.STATUS_CODE_ERROR) == ("error.type" in span.attributes)


@pytest.mark.parametrize("metric", [GOVERNANCE_LATENCY, GENAI_EXECUTE_TOOL_DURATION])
def test_exemplars_in_prometheus_name_traces_the_receiver_got(
    live_stack: LiveStack, otlp: OtlpReceiver, metric: object
) -> None:
    """Prometheus keeps trace-id exemplars on latency buckets; each names an exported trace."""
    name = f"{metric.name}_bucket"  # type: ignore[attr-defined]

    def exemplar_trace_ids() -> set[str]:
        now = time.time()
        found = live_stack.prometheus.exemplars(name, start=now - 900, end=now)
        return {e["labels"]["trace_id"] for e in found if "trace_id" in e["labels"]}

    trace_ids = wait_until(exemplar_trace_ids, timeout=SPANS_TIMEOUT, what=f"exemplars on {name}")
    received = wait_until(
        lambda: trace_ids & {s.trace_id for s in otlp.spans()},
        timeout=SPANS_TIMEOUT,
        what="an exemplar's trace among the exported spans",
    )
    assert received
