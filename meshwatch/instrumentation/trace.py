"""Causal trace ids: which agent's work caused which, across agents and processes.

A :class:`CausalTraceId` names one span of work in a tree of delegations:
``{trace_id}/{span_id}[/{parent_span_id}]``. Native ids are 12 hex characters
(trace) and 8 (span); ids that arrived from a foreign W3C ``traceparent`` keep
their full 32 / 16 hex characters, so every id is one of those two lengths.

W3C interop: :meth:`CausalTraceId.to_traceparent` left-pads the ids with zeros
to 32 / 16 hex characters; :meth:`CausalTraceId.from_traceparent` strips that
padding again when it is all zeros, so native ids round-trip exactly and
foreign ids are kept whole. :attr:`CausalTraceId.otel_trace_id` is the same
padded value as an int, so every span of one causal trace lands in one
OpenTelemetry trace.

Ancestry is exact for ids built with :meth:`~CausalTraceId.child` and
:meth:`~CausalTraceId.sibling`: each id carries the span ids of its known
ancestors. An id parsed from a string only knows its parent, so for parsed ids
``a.is_ancestor_of(b)`` is true iff ``b``'s parent is ``a`` (deeper ancestry is
unknowable from the string). The upstream API compared depths only and so
called a cousin an ancestor; this one never does.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

_HEX = re.compile(r"[0-9a-f]+")
TRACE_ID_LENGTHS = (12, 32)
SPAN_ID_LENGTHS = (8, 16)
_W3C_TRACE_HEX = 32
_W3C_SPAN_HEX = 16
_TRACEPARENT_VERSION = "00"
_SAMPLED = "01"


def _random_hex(n_hex: int) -> str:
    """``n_hex`` random lowercase hex characters, never all zeros (W3C forbids it)."""
    while True:
        bits = random.getrandbits(n_hex * 4)
        if bits:
            return f"{bits:0{n_hex}x}"


def _check_id(kind: str, value: object, lengths: tuple[int, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{kind} must be a str, got {value!r}")
    if len(value) not in lengths or not _HEX.fullmatch(value):
        expected = " or ".join(str(n) for n in lengths)
        raise ValueError(f"{kind} must be {expected} lowercase hex characters, got {value!r}")
    if value.count("0") == len(value):
        raise ValueError(f"{kind} must not be all zeros, got {value!r}")
    return value


def _shorten(value: str, native: int) -> str:
    """A padded W3C id back to its native length when the padding is all zeros."""
    pad = len(value) - native
    return value[pad:] if value[:pad].count("0") == pad else value


@dataclass(frozen=True, slots=True)
class CausalTraceId:
    """One span in a causal trace tree. Immutable and hashable.

    ``CausalTraceId()`` starts a new trace (a root span). Equality and hashing
    use the three ids only; ``depth`` and ``ancestors`` (the known ancestor
    span ids, root first, ending with the parent) are derived facts. Left at
    their defaults, they are what the parent implies: depth 0 and no ancestors
    for a root, depth 1 and ``(parent_span_id,)`` otherwise.

    >>> root = CausalTraceId()
    >>> child = root.child()
    >>> child.depth, child.parent_span_id == root.span_id, root.is_ancestor_of(child)
    (1, True, True)
    """

    trace_id: str = field(default_factory=lambda: _random_hex(TRACE_ID_LENGTHS[0]))
    span_id: str = field(default_factory=lambda: _random_hex(SPAN_ID_LENGTHS[0]))
    parent_span_id: str | None = None
    depth: int = field(default=-1, compare=False)
    ancestors: tuple[str, ...] = field(default=(), compare=False, repr=False)
    # full_id, made on first read and kept: every event of a span names it, and one
    # shared string instead of one per event is ~70 bytes less per retained event.
    _full_id: str = field(default="", init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_id("trace_id", self.trace_id, TRACE_ID_LENGTHS)
        _check_id("span_id", self.span_id, SPAN_ID_LENGTHS)
        parent = self.parent_span_id
        if parent is not None:
            _check_id("parent_span_id", parent, SPAN_ID_LENGTHS)
            if parent == self.span_id:
                raise ValueError(f"span {parent!r} cannot be its own parent")
        if self.depth == -1:
            object.__setattr__(self, "depth", 0 if parent is None else 1)
        elif isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 0:
            raise ValueError(f"depth must be a non-negative int, got {self.depth!r}")
        elif (parent is None) != (self.depth == 0):
            raise ValueError("depth 0 means a root span, which has no parent (and vice versa)")
        ancestors = self.ancestors
        if not ancestors:
            if parent is not None:
                object.__setattr__(self, "ancestors", (parent,))
            return
        if type(ancestors) is not tuple:
            ancestors = tuple(ancestors)
            object.__setattr__(self, "ancestors", ancestors)
        for ancestor in ancestors:
            _check_id("ancestor span id", ancestor, SPAN_ID_LENGTHS)
        if parent is None or ancestors[-1] != parent:
            raise ValueError("ancestors must end with the parent span id")
        if len(ancestors) > self.depth:
            raise ValueError(f"a span at depth {self.depth} has at most {self.depth} ancestors")

    # -- the string form ---------------------------------------------------

    @property
    def full_id(self) -> str:
        """``trace_id/span_id`` or ``trace_id/span_id/parent_span_id``."""
        full = self._full_id
        if not full:
            if self.parent_span_id is None:
                full = f"{self.trace_id}/{self.span_id}"
            else:
                full = f"{self.trace_id}/{self.span_id}/{self.parent_span_id}"
            object.__setattr__(self, "_full_id", full)
        return full

    def __str__(self) -> str:
        return self.full_id

    @classmethod
    def from_string(cls, value: str) -> CausalTraceId:
        """Parse a :attr:`full_id`. Raises ValueError on anything malformed.

        The parsed id knows its parent but no deeper ancestors; its depth is 1
        if it has a parent, else 0.
        """
        if not isinstance(value, str):
            raise TypeError(f"a causal trace id must be a str, got {type(value).__name__}")
        parts = value.split("/")
        if len(parts) not in (2, 3):
            raise ValueError(
                f"a causal trace id is trace_id/span_id[/parent_span_id], got {value!r}"
            )
        parent = parts[2] if len(parts) == 3 else None
        return cls(trace_id=parts[0], span_id=parts[1], parent_span_id=parent)

    # -- W3C trace context ---------------------------------------------------

    def to_traceparent(self) -> str:
        """The W3C ``traceparent`` header naming this span as the remote parent."""
        return (
            f"{_TRACEPARENT_VERSION}-{self.trace_id:0>{_W3C_TRACE_HEX}}"
            f"-{self.span_id:0>{_W3C_SPAN_HEX}}-{_SAMPLED}"
        )

    @classmethod
    def from_traceparent(cls, header: str) -> CausalTraceId:
        """Parse a W3C ``traceparent`` header into the (root) span it names.

        The result is the caller's span as seen by the receiver: call
        :meth:`child` to start the receiver's own work under it. Raises
        ValueError on a malformed header (per the W3C rules: version ``ff``,
        all-zero ids, wrong lengths, uppercase or non-hex, extra fields in
        version 00).
        """
        if not isinstance(header, str):
            raise TypeError(f"a traceparent must be a str, got {type(header).__name__}")
        parts = header.split("-")
        if len(parts) < 4:
            raise ValueError(f"a traceparent has four dash-separated fields, got {header!r}")
        version, trace_hex, span_hex, flags = parts[:4]
        if len(version) != 2 or not _HEX.fullmatch(version) or version == "ff":
            raise ValueError(f"unsupported traceparent version in {header!r}")
        if version == _TRACEPARENT_VERSION and len(parts) != 4:
            raise ValueError(f"a version 00 traceparent has exactly four fields, got {header!r}")
        if len(flags) != 2 or not _HEX.fullmatch(flags):
            raise ValueError(f"malformed traceparent flags in {header!r}")
        _check_id("traceparent trace-id", trace_hex, (_W3C_TRACE_HEX,))
        _check_id("traceparent parent-id", span_hex, (_W3C_SPAN_HEX,))
        return cls(
            trace_id=_shorten(trace_hex, TRACE_ID_LENGTHS[0]),
            span_id=_shorten(span_hex, SPAN_ID_LENGTHS[0]),
        )

    @property
    def otel_trace_id(self) -> int:
        """The 128-bit OpenTelemetry trace id (the zero-padded ``trace_id``)."""
        return int(self.trace_id, 16)

    @property
    def otel_span_id(self) -> int:
        """The 64-bit OpenTelemetry span id (the zero-padded ``span_id``)."""
        return int(self.span_id, 16)

    @property
    def otel_parent_span_id(self) -> int | None:
        """The parent's 64-bit OpenTelemetry span id, or None for a root span."""
        return None if self.parent_span_id is None else int(self.parent_span_id, 16)

    @property
    def trace_id_hex32(self) -> str:
        """The trace id as 32 hex characters, as W3C and exemplars spell it."""
        return f"{self.trace_id:0>{_W3C_TRACE_HEX}}"

    # -- the tree ----------------------------------------------------------------

    def child(self) -> CausalTraceId:
        """A new span caused by this one: same trace, parent = this span, depth + 1."""
        return CausalTraceId(
            trace_id=self.trace_id,
            span_id=self._new_span_id(),
            parent_span_id=self.span_id,
            depth=self.depth + 1,
            ancestors=(*self.ancestors, self.span_id),
        )

    def sibling(self) -> CausalTraceId:
        """A new span for parallel work: same trace, same parent, same depth."""
        return CausalTraceId(
            trace_id=self.trace_id,
            span_id=self._new_span_id(),
            parent_span_id=self.parent_span_id,
            depth=self.depth,
            ancestors=self.ancestors,
        )

    def _new_span_id(self) -> str:
        while True:
            span_id = _random_hex(SPAN_ID_LENGTHS[0])
            if span_id != self.span_id and span_id not in self.ancestors:
                return span_id

    def is_ancestor_of(self, other: CausalTraceId) -> bool:
        """True iff this span is a known ancestor of ``other`` (never of itself).

        Exact when ``other`` was built from this id with :meth:`child` /
        :meth:`sibling`; for parsed ids, where only the parent is known, true
        iff ``other``'s parent is this span.
        """
        if not isinstance(other, CausalTraceId):
            raise TypeError(f"is_ancestor_of takes a CausalTraceId, got {type(other).__name__}")
        return other.trace_id == self.trace_id and self.span_id in other.ancestors


__all__ = ["CausalTraceId"]
