"""Causal trace ids: the tree, true ancestry, the string form and W3C traceparent."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshwatch.instrumentation import CausalTraceId

ROOT = "a1b2c3d4e5f6/01234567"
CHILD = "a1b2c3d4e5f6/89abcdef/01234567"

# Hypothesis fails an example slower than 200 ms by default: a timing assertion that a
# loaded CI machine trips. Speed belongs in benchmarks/.
NO_DEADLINE = settings(deadline=None)


def test_root_format() -> None:
    root = CausalTraceId()
    assert re.fullmatch(r"[0-9a-f]{12}/[0-9a-f]{8}", root.full_id)
    assert root.depth == 0
    assert root.parent_span_id is None
    assert root.ancestors == ()
    assert str(root) == root.full_id


def test_child_sibling_depth() -> None:
    root = CausalTraceId()
    child = root.child()
    assert child.full_id == f"{root.trace_id}/{child.span_id}/{root.span_id}"
    assert (child.depth, child.parent_span_id) == (1, root.span_id)
    sibling = child.sibling()
    assert (sibling.depth, sibling.parent_span_id, sibling.trace_id) == (
        1,
        root.span_id,
        root.trace_id,
    )
    assert sibling.span_id != child.span_id
    grandchild = child.child()
    assert grandchild.depth == 2
    assert grandchild.ancestors == (root.span_id, child.span_id)
    root_sibling = root.sibling()
    assert (root_sibling.depth, root_sibling.parent_span_id) == (0, None)
    assert root_sibling.trace_id == root.trace_id


def test_ancestry_is_true_ancestry_not_depth() -> None:
    root = CausalTraceId()
    a, b = root.child(), root.child()
    a_child, b_child = a.child(), b.child()
    assert root.is_ancestor_of(a_child)
    assert a.is_ancestor_of(a_child)
    # A cousin's uncle is deeper-than and same-trace, but not an ancestor.
    assert not a.is_ancestor_of(b_child)
    assert not b.is_ancestor_of(a_child)
    assert not a.is_ancestor_of(b)  # siblings
    assert not a_child.is_ancestor_of(a)
    assert not root.is_ancestor_of(root)
    other_trace = CausalTraceId()
    assert not other_trace.is_ancestor_of(CausalTraceId(other_trace.trace_id, "deadbeef"))
    assert not root.is_ancestor_of(other_trace.child())


def test_ancestry_of_parsed_ids_knows_only_the_parent() -> None:
    root = CausalTraceId()
    child = root.child()
    grandchild = child.child()
    parsed_grandchild = CausalTraceId.from_string(grandchild.full_id)
    assert parsed_grandchild == grandchild
    assert child.is_ancestor_of(parsed_grandchild)
    assert not root.is_ancestor_of(parsed_grandchild)  # unknowable from the string
    # Building on a parsed id extends the known chain.
    assert child.is_ancestor_of(parsed_grandchild.child())
    with pytest.raises(TypeError):
        root.is_ancestor_of(grandchild.full_id)  # type: ignore[arg-type]


def test_parse_examples() -> None:
    parsed = CausalTraceId.from_string(CHILD)
    assert (parsed.trace_id, parsed.span_id, parsed.parent_span_id) == (
        "a1b2c3d4e5f6",
        "89abcdef",
        "01234567",
    )
    assert parsed.depth == 1
    assert parsed.full_id == CHILD
    root = CausalTraceId.from_string(ROOT)
    assert (root.parent_span_id, root.depth) == (None, 0)


@pytest.mark.parametrize(
    "value",
    [
        "invalid",
        "",
        "/",
        "a1b2c3d4e5f6/",
        "/01234567",
        "a1b2c3d4e5f6//01234567",
        "a1b2c3d4e5f6/01234567/",
        "a1b2c3d4e5f6/89abcdef/01234567/76543210",  # too many parts
        "a1b2c3d4e5f/01234567",  # 11 hex
        "a1b2c3d4e5f6a/01234567",  # 13 hex
        "a1b2c3d4e5f6/0123456",
        "a1b2c3d4e5g6/01234567",  # non-hex
        "A1B2C3D4E5F6/01234567",  # uppercase
        "000000000000/01234567",  # all-zero trace
        "a1b2c3d4e5f6/00000000",
        "a1b2c3d4e5f6/01234567/00000000",
        "a1b2c3d4e5f6/01234567/01234567",  # own parent
        " a1b2c3d4e5f6/01234567",
        "a1b2c3d4e5f6/0123\n4567",
    ],
)
def test_from_string_rejects_malformed(value: str) -> None:
    with pytest.raises(ValueError):
        CausalTraceId.from_string(value)


@pytest.mark.parametrize("value", [None, 12, b"a1b2c3d4e5f6/01234567", ["a", "b"]])
def test_from_string_rejects_non_strings(value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        CausalTraceId.from_string(value)  # type: ignore[arg-type]


def test_full_length_ids_are_accepted() -> None:
    long = CausalTraceId.from_string("4bf92f3577b34da6a3ce929d0e0e4736/00f067aa0ba902b7")
    assert len(long.trace_id) == 32
    assert len(long.span_id) == 16
    assert CausalTraceId.from_string(long.child().full_id).parent_span_id == long.span_id


def test_immutable_and_hashable() -> None:
    trace = CausalTraceId()
    with pytest.raises(dataclasses.FrozenInstanceError):
        trace.span_id = "01234567"  # type: ignore[misc]
    assert {trace: 1}[CausalTraceId.from_string(trace.full_id)] == 1
    assert trace != trace.sibling()


def test_traceparent_round_trip_native() -> None:
    child = CausalTraceId().child()
    header = child.to_traceparent()
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", header)
    assert header == f"00-{'0' * 20}{child.trace_id}-{'0' * 8}{child.span_id}-01"
    remote = CausalTraceId.from_traceparent(header)
    assert (remote.trace_id, remote.span_id) == (child.trace_id, child.span_id)
    assert remote.to_traceparent() == header
    # The receiver continues the trace under the caller's span.
    work = remote.child()
    assert work.parent_span_id == child.span_id
    assert work.trace_id == child.trace_id


def test_traceparent_foreign_ids_are_kept_whole() -> None:
    header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    trace = CausalTraceId.from_traceparent(header)
    assert trace.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace.span_id == "00f067aa0ba902b7"
    assert trace.to_traceparent() == header
    assert CausalTraceId.from_string(trace.full_id) == trace
    # Unsampled and future-version headers are accepted; we always send sampled.
    assert CausalTraceId.from_traceparent(header[:-2] + "00") == trace
    assert CausalTraceId.from_traceparent("01" + header[2:] + "-extra") == trace


def test_otel_ids_are_the_padded_values() -> None:
    root = CausalTraceId()
    child = root.child()
    assert child.otel_trace_id == root.otel_trace_id == int(root.trace_id, 16)
    assert f"{child.otel_trace_id:032x}" == child.trace_id_hex32 == child.to_traceparent()[3:35]
    assert f"{child.otel_span_id:016x}" == child.to_traceparent()[36:52]
    assert child.otel_parent_span_id == root.otel_span_id
    assert root.otel_parent_span_id is None


@pytest.mark.parametrize(
    "header",
    [
        "",
        "00",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # no flags
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # v00 extra
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
        "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero span
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # uppercase
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  # 31 hex
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",  # 15 hex
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        "00--00f067aa0ba902b7-01",
    ],
)
def test_from_traceparent_rejects_malformed(header: str) -> None:
    with pytest.raises(ValueError):
        CausalTraceId.from_traceparent(header)


def test_from_traceparent_rejects_non_strings() -> None:
    with pytest.raises((TypeError, ValueError)):
        CausalTraceId.from_traceparent(None)  # type: ignore[arg-type]


@NO_DEADLINE
@given(st.text(max_size=80))
def test_parsers_raise_only_value_error_on_arbitrary_text(text: str) -> None:
    for parse in (CausalTraceId.from_string, CausalTraceId.from_traceparent):
        try:
            parsed = parse(text)
        except ValueError:
            continue
        assert CausalTraceId.from_string(parsed.full_id) == parsed


@NO_DEADLINE
@given(
    st.integers(min_value=1, max_value=2**128 - 1), st.integers(min_value=1, max_value=2**64 - 1)
)
def test_any_valid_traceparent_round_trips(trace_bits: int, span_bits: int) -> None:
    header = f"00-{trace_bits:032x}-{span_bits:016x}-01"
    trace = CausalTraceId.from_traceparent(header)
    assert trace.to_traceparent() == header
    assert trace.otel_trace_id == trace_bits
    assert trace.otel_span_id == span_bits


def test_constructor_validates_explicit_fields() -> None:
    with pytest.raises(ValueError, match="depth"):
        CausalTraceId("a1b2c3d4e5f6", "01234567", depth=2)  # a root has depth 0
    with pytest.raises(ValueError, match="ancestors"):
        CausalTraceId("a1b2c3d4e5f6", "89abcdef", "01234567", depth=1, ancestors=("deadbeef",))
    with pytest.raises(TypeError):
        CausalTraceId(123, "01234567")  # type: ignore[arg-type]


def test_explicit_ancestors_are_validated() -> None:
    ok = CausalTraceId(
        "a1b2c3d4e5f6", "89abcdef", "01234567", depth=2, ancestors=["deadbeef", "01234567"]
    )  # type: ignore[arg-type]
    assert ok.ancestors == ("deadbeef", "01234567")
    with pytest.raises(ValueError, match="at most"):
        CausalTraceId(
            "a1b2c3d4e5f6", "89abcdef", "01234567", depth=1, ancestors=("deadbeef", "01234567")
        )
    with pytest.raises(ValueError):
        CausalTraceId(
            "a1b2c3d4e5f6", "89abcdef", "01234567", depth=2, ancestors=("nothex!!", "01234567")
        )


@NO_DEADLINE
@given(st.lists(st.tuples(st.integers(min_value=0), st.booleans()), min_size=1, max_size=40))
def test_is_ancestor_of_matches_the_tree_that_was_built(ops: list[tuple[int, bool]]) -> None:
    """Grow a random tree with child()/sibling(); is_ancestor_of must equal true ancestry."""
    root = CausalTraceId()
    nodes = [root]
    parent_of: dict[CausalTraceId, CausalTraceId | None] = {root: None}
    for pick, as_child in ops:
        base = nodes[pick % len(nodes)]
        if as_child:
            node, parent = base.child(), base
        else:
            node, parent = base.sibling(), parent_of[base]
        nodes.append(node)
        parent_of[node] = parent

    def truly_ancestor(a: CausalTraceId, b: CausalTraceId) -> bool:
        up = parent_of[b]
        while up is not None:
            if up == a:
                return True
            up = parent_of[up]
        return False

    for a in nodes:
        for b in nodes:
            assert a.is_ancestor_of(b) == truly_ancestor(a, b), (a, b)
        assert a.depth == len(a.ancestors)


def test_full_id_is_made_once_and_shared_by_every_reader() -> None:
    """Every event of a span names it: one string, not one per event."""
    child = CausalTraceId().child()
    assert child.full_id is child.full_id
    assert child.full_id == f"{child.trace_id}/{child.span_id}/{child.parent_span_id}"
    root = dataclasses.replace(child, parent_span_id=None, depth=0, ancestors=())
    assert root.full_id == f"{child.trace_id}/{child.span_id}", "a replaced id is its own"
    assert root == CausalTraceId.from_string(root.full_id)
