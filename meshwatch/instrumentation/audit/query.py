"""Reading the audit trail: one frozen filter value, and a read-only reader.

::

    reader = AuditReader("audit.db")
    recent = AuditFilter(agent_did="did:mesh:analyst", since=datetime.now(UTC) - timedelta(hours=1))
    reader.query(recent, limit=20)
    reader.count(recent)

An :class:`AuditFilter` is checked and normalised once, when it is built (the
event type as its value, the trace id in its stored 32-hex form, times as
UTC), so every query, count and plan reads the same filter the same way.

**Queries use indexes.** Each filter column has a ``(column, time)`` index, so
"newest first, filtered by one of them, limited" walks an index backwards and
stops after ``offset + limit`` rows, whatever the table size.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meshwatch.instrumentation.audit.schema import (
    AuditDatabaseError,
    AuditRecord,
    columns_for,
    decode,
    open_database,
    to_us,
)
from meshwatch.instrumentation.events import EventType
from meshwatch.instrumentation.trace import CausalTraceId

_HEX = re.compile(r"[0-9a-f]+")
_SQLITE_MAX_INT = 2**63 - 1


def normalise_trace_id(value: str) -> str:
    """Any spelling of a trace id as the stored 32-hex form.

    Accepts a 32- or 12-hex trace id, a causal trace id (``trace/span[/parent]``)
    or a W3C ``traceparent``. Raises ValueError for anything else.
    """
    text = value.strip().lower()
    if "/" in text:
        return CausalTraceId.from_string(text).trace_id_hex32
    if text.count("-") == 3:
        return CausalTraceId.from_traceparent(text).trace_id_hex32
    if len(text) in (12, 32) and _HEX.fullmatch(text):
        return f"{text:0>32}"
    raise ValueError(
        f"not a trace id: {value!r} (expected 32 or 12 hex, a causal id or traceparent)"
    )


def _moment(value: datetime | float | None, name: str) -> datetime | None:
    """A time bound as an aware UTC datetime; naive datetimes are UTC, numbers epoch seconds."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"{name} is out of range: {value!r}") from None
    raise TypeError(f"{name} must be a datetime or epoch seconds, got {value!r}")


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which stored events to read: every given field must match (AND); None matches all.

    ``since`` is inclusive and ``until`` exclusive. Built once, checked once:
    an unknown trace id spelling raises ValueError here, not at query time.
    """

    agent_did: str | None = None
    event_type: str | None = None
    session_id: str | None = None
    trace_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    parent_event_id: str | None = None

    def __init__(
        self,
        *,
        agent_did: str | None = None,
        event_type: EventType | str | None = None,
        session_id: str | None = None,
        trace_id: str | None = None,
        since: datetime | float | None = None,
        until: datetime | float | None = None,
        parent_event_id: str | None = None,
    ) -> None:
        set_field = object.__setattr__
        set_field(self, "agent_did", agent_did)
        set_field(
            self,
            "event_type",
            event_type.value if isinstance(event_type, EventType) else event_type,
        )
        set_field(self, "session_id", session_id)
        set_field(self, "trace_id", None if trace_id is None else normalise_trace_id(trace_id))
        set_field(self, "since", _moment(since, "since"))
        set_field(self, "until", _moment(until, "until"))
        set_field(self, "parent_event_id", parent_event_id)

    def where(self) -> tuple[str, list[object]]:
        """The SQL ``WHERE`` clause (empty when nothing is filtered) and its parameters."""
        clauses: list[str] = []
        params: list[object] = []
        for column, value in (
            ("agent_did", self.agent_did),
            ("event_type", self.event_type),
            ("session_id", self.session_id),
            ("trace_id", self.trace_id),
            ("parent_event_id", self.parent_event_id),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.since is not None:
            clauses.append("ts_us >= ?")
            params.append(to_us(self.since))
        if self.until is not None:
            clauses.append("ts_us < ?")
            params.append(to_us(self.until))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


EVERYTHING = AuditFilter()


def _select(where: AuditFilter, limit: int, offset: int, columns: str) -> tuple[str, list[object]]:
    for name, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        if value > _SQLITE_MAX_INT:
            raise ValueError(f"{name} is too large: {value} (at most {_SQLITE_MAX_INT})")
    clause, params = where.where()
    sql = f"SELECT {columns} FROM events{clause} ORDER BY ts_us DESC, seq DESC LIMIT ? OFFSET ?"
    return sql, [*params, limit, offset]


class AuditReader:
    """Read-only queries on an audit database (what the CLI uses; never writes).

    Thread-safe: one connection, one lock. Raises :class:`AuditDatabaseError`
    for an unusable file, at construction or (for damage deep in the file) at
    query time.
    """

    def __init__(self, path: Path | str, *, connection: sqlite3.Connection | None = None) -> None:
        """Open ``path`` read-only, or read through ``connection`` (the writer's own reader)."""
        self.path = Path(path)
        self._conn = (
            connection if connection is not None else open_database(self.path, create=False)
        )
        self._lock = threading.Lock()
        try:
            self._columns = columns_for(self._conn)
        except sqlite3.Error as exc:
            raise AuditDatabaseError(self.path, f"cannot read the schema version ({exc})") from None
        # A version 1 file (read as it is) has no parents: a filter on one matches nothing.
        self._has_parents = "NULL AS" not in self._columns

    def query(
        self, where: AuditFilter = EVERYTHING, *, limit: int = 100, offset: int = 0
    ) -> list[AuditRecord]:
        """Stored events matching ``where``, newest first, skipping ``offset``, at most ``limit``."""
        sql, params = _select(where, limit, offset, self._columns)
        if where.parent_event_id is not None and not self._has_parents:
            return []
        return [decode(row) for row in self._run(sql, params)]

    def count(self, where: AuditFilter = EVERYTHING) -> int:
        """How many stored events match ``where``."""
        if where.parent_event_id is not None and not self._has_parents:
            return 0
        clause, params = where.where()
        return int(self._run(f"SELECT count(*) FROM events{clause}", params)[0][0])

    def query_plan(
        self, where: AuditFilter = EVERYTHING, *, limit: int = 100, offset: int = 0
    ) -> list[str]:
        """SQLite's plan for :meth:`query` with these arguments (to check index use)."""
        sql, params = _select(where, limit, offset, self._columns)
        return [str(row[-1]) for row in self._run("EXPLAIN QUERY PLAN " + sql, params)]

    def _run(self, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
        try:
            with self._lock:
                return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise AuditDatabaseError(self.path, f"query failed ({exc})") from None

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> AuditReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["EVERYTHING", "AuditFilter", "AuditReader", "normalise_trace_id"]
