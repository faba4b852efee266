"""A durable audit trail: bus events persisted to SQLite, queryable after restarts.

::

    trail = AuditTrail("audit.db", max_age=30 * 86400).attach(bus)
    ...
    trail.query(agent_did="did:mesh:analyst", since=datetime.now(UTC) - timedelta(hours=1))
    trail.close()  # flushes what is queued

**The agent never waits for the disk.** The bus calls :meth:`AuditTrail.record`
on the emitting thread; it only appends the (immutable) event to a bounded
deque. One writer thread serialises events and commits them in batches of
``batch_size`` rows per transaction, waking when a batch is ready or every
``flush_interval`` seconds. When the deque holds ``queue_size`` events the new
event is dropped and counted (``meshwatch_audit_events_dropped_total{reason=
"queue_full"}``); the emitter is never blocked. Several threads emitting at
once may overshoot ``queue_size`` by at most one event each (the length check
and the append are not one atomic step; making them one would put a lock on the
hot path).

**What a crash can lose (the bound).** A batch is durable once its transaction
commits; :attr:`AuditTrail.written` counts exactly the committed events. In WAL
mode with ``synchronous=NORMAL`` (the default) a committed transaction survives
the process being killed (SIGKILL, OOM, segfault); it can be rolled back by a
power loss or kernel crash, which ``synchronous="FULL"`` also covers, at the
cost of an fsync per batch. So after a process crash the trail holds every
event that was counted as written, in order and without gaps, and loses only
events that were still in memory: the batch being written (at most
``batch_size``) plus those waiting in the queue (at most ``queue_size``). With
a writer that keeps up, the queue holds less than one batch, so the loss is
under ``2 * batch_size`` events, none older than ``flush_interval`` plus one
commit. On :meth:`AuditTrail.close` (also run at interpreter exit) the queue is
flushed first, and nothing is lost.

**Never someone else's file.** The database carries an ``application_id`` and a
schema version (``user_version``) and a ``meta`` table. Opening a file that is
not SQLite, is another application's SQLite database, or comes from a newer
meshwatch raises :class:`AuditDatabaseError` naming the file, *before* anything
is written to it; the file is never modified or replaced.

**Queries use indexes.** Rows carry the time (integer microseconds since the
epoch), agent, event type, session and trace id (32 hex, the OpenTelemetry
form, so a trace id from Tempo or a log line finds its events). Each filter has
a ``(column, time)`` index, so "newest first, filtered by one of them, limited"
walks an index backwards and stops after ``offset + limit`` rows, whatever the
table size. Retention deletes by age (``max_age`` seconds) and by row count
(``max_rows``), on the writer thread, every ``retention_interval`` seconds and
at close.

Standard library only (``sqlite3``); no prometheus_client, no opentelemetry.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import re
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

from meshwatch.instrumentation.bus import HypervisorEventBus, Subscription
from meshwatch.instrumentation.catalogue import (
    AUDIT_EVENTS_DROPPED,
    AUDIT_EVENTS_WRITTEN,
    AUDIT_QUEUE_DEPTH,
)
from meshwatch.instrumentation.drops import RateLimitedLog
from meshwatch.instrumentation.events import EventType, HypervisorEvent, trace_of
from meshwatch.instrumentation.logs import json_safe
from meshwatch.instrumentation.trace import CausalTraceId
from meshwatch.instrumentation.values import (
    CardinalityGuard,
    CounterStore,
    MetricFamilySnapshot,
)

logger = logging.getLogger(__name__)
_log = RateLimitedLog(logger)

# "MSHW": marks the file as ours in the SQLite header (PRAGMA application_id).
APPLICATION_ID = 0x4D534857
SCHEMA_VERSION = 1
FORMAT_NAME = "meshwatch-audit"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_HEX = re.compile(r"[0-9a-f]+")
_GUARD = CardinalityGuard(max_series=100)
_WRITER_CACHE_KIB = 16 * 1024
_CHECKPOINT_PAGES = 10_000  # about 40 MB of WAL between checkpoints
_WAL_LIMIT_BYTES = 64 * 1024 * 1024

_SCHEMA = f"""
BEGIN;
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('format', '{FORMAT_NAME}');
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    ts_us INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    agent_did TEXT,
    session_id TEXT,
    trace_id TEXT,
    causal_trace_id TEXT,
    payload TEXT NOT NULL
);
CREATE INDEX events_by_time ON events (ts_us);
CREATE INDEX events_by_agent ON events (agent_did, ts_us);
CREATE INDEX events_by_type ON events (event_type, ts_us);
CREATE INDEX events_by_session ON events (session_id, ts_us);
CREATE INDEX events_by_trace ON events (trace_id, ts_us);
COMMIT;
"""
_INSERT = (
    "INSERT INTO events (ts_us, event_id, event_type, agent_did, session_id, trace_id,"
    " causal_trace_id, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_COLUMNS = (
    "seq, ts_us, event_id, event_type, agent_did, session_id, trace_id, causal_trace_id, payload"
)


class AuditDatabaseError(Exception):
    """The audit database cannot be used: corrupt, foreign, too new, or unreachable.

    The message names the file and says why, in one line; ``path`` holds it.
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored event, as read back from the trail."""

    seq: int
    event_id: str
    event_type: str
    timestamp: datetime
    agent_did: str | None
    session_id: str | None
    trace_id: str | None
    causal_trace_id: str | None
    payload: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible, with the same keys as ``HypervisorEvent.to_dict`` plus trace_id."""
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "timestamp": self.timestamp.isoformat(),
            "session_id": self.session_id,
            "agent_did": self.agent_did,
            "causal_trace_id": self.causal_trace_id,
            "trace_id": self.trace_id,
            "payload": dict(self.payload),
        }

    def to_event(self) -> HypervisorEvent:
        """The event again (for replay). Raises ValueError for an event type this version lacks."""
        return HypervisorEvent.from_dict(self.to_dict())


# --- opening and checking the file ---------------------------------------------------


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    try:
        if read_only:
            uri = f"file:{quote(str(path.resolve()))}?mode=ro"
            return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        return sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise AuditDatabaseError(path, f"cannot open the audit database ({exc})") from None


def _check(conn: sqlite3.Connection, path: Path) -> None:
    """Raise AuditDatabaseError unless ``conn`` is a meshwatch audit database we can read."""
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        fmt = None
        if "meta" in tables:
            row = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            fmt = row[0] if row else None
    except sqlite3.DatabaseError as exc:
        raise AuditDatabaseError(
            path, f"not a meshwatch audit database (corrupt or not SQLite: {exc}); left untouched"
        ) from None
    if app_id != APPLICATION_ID:
        raise AuditDatabaseError(
            path,
            f"not a meshwatch audit database (SQLite application_id {app_id:#x}, "
            f"expected {APPLICATION_ID:#x}); left untouched",
        )
    if version > SCHEMA_VERSION:
        raise AuditDatabaseError(
            path,
            f"written by a newer meshwatch (audit schema {version}; this version reads "
            f"up to {SCHEMA_VERSION}); left untouched",
        )
    if fmt != FORMAT_NAME or "events" not in tables:
        raise AuditDatabaseError(path, "damaged meshwatch audit database (tables missing)")


def open_database(path: Path | str, *, create: bool) -> sqlite3.Connection:
    """A checked connection to the audit database at ``path`` (autocommit mode).

    With ``create``, a missing or empty file becomes a new audit database;
    without, the file must exist and is opened read-only. Raises
    :class:`AuditDatabaseError` for anything unusable, before writing a byte.
    """
    path = Path(path)
    is_new = not path.exists() or (path.is_file() and path.stat().st_size == 0)
    if is_new and not create:
        raise AuditDatabaseError(path, "no audit database at this path")
    if path.exists() and not path.is_file():
        raise AuditDatabaseError(path, "not a file")
    if not is_new:
        # Check through a read-only connection first: nothing is written to a
        # file until we know it is ours.
        probe = _connect(path, read_only=True)
        try:
            _check(probe, path)
        finally:
            probe.close()
        if not create:
            return _connect(path, read_only=True)
    conn = _connect(path, read_only=False)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        if is_new:
            conn.executescript(_SCHEMA)
        _check(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise AuditDatabaseError(path, f"cannot initialise the audit database ({exc})") from None
    except AuditDatabaseError:
        conn.close()
        raise
    return conn


# --- rows and queries ------------------------------------------------------------------


def _to_us(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _when(value: datetime | float | int | None, name: str) -> int | None:
    """A query bound as integer microseconds; naive datetimes are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return _to_us(value if value.tzinfo is not None else value.replace(tzinfo=UTC))
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return round(value * 1_000_000)
    raise TypeError(f"{name} must be a datetime or epoch seconds, got {value!r}")


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


def _row(event: HypervisorEvent) -> tuple[object, ...]:
    trace = trace_of(event)
    payload = event.payload
    try:
        text = json.dumps(dict(payload), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError):
        text = json.dumps(json_safe(payload), ensure_ascii=False)
    return (
        _to_us(event.timestamp),
        event.event_id,
        event.event_type.value,
        event.agent_did,
        event.session_id,
        None if trace is None else trace.trace_id_hex32,
        event.causal_trace_id,
        text,
    )


def _record(row: tuple[Any, ...]) -> AuditRecord:
    seq, ts_us, event_id, event_type, agent, session, trace_id, causal, payload = row
    try:
        decoded = json.loads(payload)
    except ValueError:
        decoded = {"_unparsed": payload}
    return AuditRecord(
        seq=seq,
        event_id=event_id,
        event_type=event_type,
        timestamp=_EPOCH + timedelta(microseconds=ts_us),
        agent_did=agent,
        session_id=session,
        trace_id=trace_id,
        causal_trace_id=causal,
        payload=decoded if isinstance(decoded, dict) else {"_value": decoded},
    )


def _where(
    *,
    agent_did: str | None,
    event_type: EventType | str | None,
    session_id: str | None,
    trace_id: str | None,
    since: datetime | float | None,
    until: datetime | float | None,
) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    for column, value in (
        ("agent_did", agent_did),
        ("event_type", event_type.value if isinstance(event_type, EventType) else event_type),
        ("session_id", session_id),
        ("trace_id", None if trace_id is None else normalise_trace_id(trace_id)),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    start, end = _when(since, "since"), _when(until, "until")
    if start is not None:
        clauses.append("ts_us >= ?")
        params.append(start)
    if end is not None:
        clauses.append("ts_us < ?")
        params.append(end)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


class AuditReader:
    """Read-only queries on an audit database (what the CLI uses; never writes).

    Thread-safe: one connection, one lock. Raises :class:`AuditDatabaseError`
    for an unusable file, at construction or (for damage deep in the file) at
    query time.
    """

    def __init__(self, path: Path | str, *, _conn: sqlite3.Connection | None = None) -> None:
        self.path = Path(path)
        self._conn = _conn if _conn is not None else open_database(self.path, create=False)
        self._lock = threading.Lock()

    def query(
        self,
        *,
        agent_did: str | None = None,
        event_type: EventType | str | None = None,
        session_id: str | None = None,
        trace_id: str | None = None,
        since: datetime | float | None = None,
        until: datetime | float | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditRecord]:
        """Stored events matching every given filter, newest first.

        ``since`` is inclusive and ``until`` exclusive (datetimes, naive = UTC,
        or epoch seconds); ``trace_id`` takes any form :func:`normalise_trace_id`
        accepts. Raises ValueError for a negative limit or offset.
        """
        sql, params = self._select(
            agent_did=agent_did,
            event_type=event_type,
            session_id=session_id,
            trace_id=trace_id,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
        return [_record(row) for row in self._run(sql, params)]

    def count(
        self,
        *,
        agent_did: str | None = None,
        event_type: EventType | str | None = None,
        session_id: str | None = None,
        trace_id: str | None = None,
        since: datetime | float | None = None,
        until: datetime | float | None = None,
    ) -> int:
        """How many stored events match the filters."""
        where, params = _where(
            agent_did=agent_did,
            event_type=event_type,
            session_id=session_id,
            trace_id=trace_id,
            since=since,
            until=until,
        )
        return int(self._run(f"SELECT count(*) FROM events{where}", params)[0][0])

    def query_plan(self, **filters: Any) -> list[str]:
        """SQLite's plan for :meth:`query` with these filters (to check index use)."""
        sql, params = self._select(**filters)
        return [str(row[-1]) for row in self._run("EXPLAIN QUERY PLAN " + sql, params)]

    @staticmethod
    def _select(
        *,
        agent_did: str | None = None,
        event_type: EventType | str | None = None,
        session_id: str | None = None,
        trace_id: str | None = None,
        since: datetime | float | None = None,
        until: datetime | float | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[str, list[object]]:
        for name, value in (("limit", limit), ("offset", offset)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        where, params = _where(
            agent_did=agent_did,
            event_type=event_type,
            session_id=session_id,
            trace_id=trace_id,
            since=since,
            until=until,
        )
        sql = f"SELECT {_COLUMNS} FROM events{where} ORDER BY ts_us DESC, seq DESC LIMIT ? OFFSET ?"
        return sql, [*params, limit, offset]

    def _run(self, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
        try:
            with self._lock:
                return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise AuditDatabaseError(self.path, f"query failed ({exc})") from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> AuditReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the writer ------------------------------------------------------------------------


def tune_writer(conn: sqlite3.Connection, synchronous: str = "NORMAL") -> None:
    """The writer connection's settings (also used by the benchmark's raw-SQLite baseline).

    Five indexes with random keys dirty many pages per batch: a larger page
    cache and rarer checkpoints (each one fsyncs) roughly triple throughput.
    """
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute(f"PRAGMA cache_size = -{_WRITER_CACHE_KIB}")
    conn.execute(f"PRAGMA wal_autocheckpoint = {_CHECKPOINT_PAGES}")
    conn.execute(f"PRAGMA journal_size_limit = {_WAL_LIMIT_BYTES}")


class _FlushMarker:
    """Queued behind pending events; set once everything before it is committed."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_open_trails: weakref.WeakSet[AuditTrail] = weakref.WeakSet()


@atexit.register
def _close_open_trails() -> None:
    """Interpreter exit is a clean shutdown too: flush what is queued."""
    for trail in list(_open_trails):
        trail.close()


class AuditTrail(AuditReader):
    """Persists bus events to SQLite on a writer thread. See the module docstring.

    A :class:`~meshwatch.instrumentation.values.MetricSource` of
    ``meshwatch_audit_events_written_total``, ``..._dropped_total{reason}``
    and ``meshwatch_audit_queue_depth``.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        queue_size: int = 10_000,
        batch_size: int = 1024,
        flush_interval: float = 0.5,
        max_age: float | timedelta | None = None,
        max_rows: int | None = None,
        retention_interval: float = 60.0,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    ) -> None:
        for name, value in (("queue_size", queue_size), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name, seconds in (
            ("flush_interval", flush_interval),
            ("retention_interval", retention_interval),
        ):
            if not isinstance(seconds, int | float) or not seconds > 0 or math.isinf(seconds):
                raise ValueError(f"{name} must be positive seconds, got {seconds!r}")
        if isinstance(max_age, timedelta):
            max_age = max_age.total_seconds()
        if max_age is not None and not (isinstance(max_age, int | float) and max_age > 0):
            raise ValueError(f"max_age must be positive seconds or None, got {max_age!r}")
        if max_rows is not None and (
            isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1
        ):
            raise ValueError(f"max_rows must be a positive int or None, got {max_rows!r}")
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}")

        writer = open_database(path, create=True)
        try:
            tune_writer(writer, synchronous)
            reader = _connect(Path(path), read_only=True)
        except sqlite3.Error as exc:  # e.g. locked by another writer past busy_timeout
            writer.close()
            raise AuditDatabaseError(path, f"cannot open the audit database ({exc})") from None
        except BaseException:
            writer.close()
            raise
        super().__init__(path, _conn=reader)

        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_interval = float(flush_interval)
        self.max_age = None if max_age is None else float(max_age)
        self.max_rows = max_rows
        self.retention_interval = float(retention_interval)

        self._queue: deque[HypervisorEvent | _FlushMarker] = deque()
        self._wake = threading.Event()
        self._closed = False
        self._close_lock = threading.Lock()
        self._subscription: Subscription | None = None
        self._written = CounterStore(AUDIT_EVENTS_WRITTEN, guard=_GUARD)
        self._dropped = CounterStore(AUDIT_EVENTS_DROPPED, guard=_GUARD)
        self._writer_conn = writer
        self._thread = threading.Thread(
            target=self._run_writer, name=f"meshwatch-audit-writer:{Path(path).name}", daemon=True
        )
        _open_trails.add(self)
        self._thread.start()

    # -- the emitting side (hot path) --------------------------------------------------

    def record(self, event: HypervisorEvent) -> None:
        """Queue ``event`` for persistence; never blocks, never raises.

        This is the bus handler. A full queue (or a closed trail) drops the event
        and counts it.
        """
        queue = self._queue
        if len(queue) >= self.queue_size or self._closed:
            self._dropped.inc(("closed",) if self._closed else ("queue_full",))
            return
        queue.append(event)
        if len(queue) >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    def attach(self, bus: HypervisorEventBus) -> AuditTrail:
        """Subscribe to every event on ``bus`` (one bus at a time); returns self."""
        self.detach()
        self._subscription = bus.subscribe(event_type=None, handler=self.record)
        return self

    def detach(self) -> None:
        """Stop receiving events from the attached bus (queued events are still written)."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.cancel()

    # -- control ---------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event recorded before this call is committed (or dropped).

        Returns False if ``timeout`` seconds passed first, or the trail is closed.
        """
        if self._closed or not self._thread.is_alive():
            return False
        marker = _FlushMarker()
        self._queue.append(marker)
        self._wake.set()
        return marker.done.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Detach, write everything queued, apply retention, close the database.

        Idempotent. Events recorded after (or racing with) close are dropped and
        counted with reason ``closed``.
        """
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self.detach()
        self._wake.set()
        self._thread.join(timeout)
        _open_trails.discard(self)
        super().close()

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- metrics ---------------------------------------------------------------------

    @property
    def written(self) -> int:
        """Events committed to the database so far (durable against a process crash)."""
        return int(self._written.get(()))

    def dropped(self, reason: str) -> int:
        """Events not persisted for ``reason`` (queue_full, write_error, closed)."""
        return int(self._dropped.get((reason,)))

    @property
    def queue_depth(self) -> int:
        """Events waiting for the writer thread now."""
        return len(self._queue)

    def metric_families(self) -> Iterator[MetricFamilySnapshot]:
        yield self._written.snapshot()
        yield self._dropped.snapshot()
        yield MetricFamilySnapshot(AUDIT_QUEUE_DEPTH, (), {(): float(len(self._queue))})

    # -- the writer thread -----------------------------------------------------------

    def _run_writer(self) -> None:
        conn = self._writer_conn
        last_retention = -math.inf
        try:
            while True:
                self._wake.wait(self.flush_interval)
                self._wake.clear()
                closing = self._closed
                self._drain(conn)
                now = time.monotonic()
                if closing or now - last_retention >= self.retention_interval:
                    self._retain(conn)
                    last_retention = now
                if closing:
                    self._drain(conn)  # whatever raced with close()
                    break
        finally:
            self._abandon_queue()
            conn.close()

    def _drain(self, conn: sqlite3.Connection) -> None:
        """Write everything queued, ``batch_size`` rows per transaction."""
        queue = self._queue
        while queue:
            batch: list[HypervisorEvent] = []
            markers: list[_FlushMarker] = []
            while queue and len(batch) < self.batch_size:
                item = queue.popleft()
                if type(item) is _FlushMarker:
                    markers.append(item)
                    break
                batch.append(item)  # type: ignore[arg-type]
            if batch:
                self._write(conn, batch)
            for marker in markers:
                marker.done.set()

    def _write(self, conn: sqlite3.Connection, batch: list[HypervisorEvent]) -> None:
        rows = []
        for event in batch:
            try:
                rows.append(_row(event))
            except Exception:  # a foreign object on the bus must not stop the writer
                self._dropped.inc(("write_error",))
                _log.warning(
                    "audit-row", "audit: cannot serialise %r; dropped", event, exc_info=True
                )
        if not rows:
            return
        try:
            conn.execute("BEGIN")
            conn.executemany(_INSERT, rows)
            conn.execute("COMMIT")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._dropped.inc(("write_error",), len(rows))
            _log.warning(
                "audit-write",
                "audit: writing %d events to %s failed",
                len(rows),
                self.path,
                exc_info=True,
            )
            return
        self._written.inc((), len(rows))

    def _retain(self, conn: sqlite3.Connection) -> None:
        if self.max_age is None and self.max_rows is None:
            return
        try:
            conn.execute("BEGIN")
            if self.max_age is not None:
                cutoff = _to_us(datetime.now(UTC)) - round(self.max_age * 1_000_000)
                conn.execute("DELETE FROM events WHERE ts_us < ?", (cutoff,))
            if self.max_rows is not None:
                # seq only grows, so the newest max_rows rows are the top max_rows seqs.
                conn.execute(
                    "DELETE FROM events WHERE seq <= (SELECT max(seq) FROM events) - ?",
                    (self.max_rows,),
                )
            conn.execute("COMMIT")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            _log.warning(
                "audit-retention", "audit: retention on %s failed", self.path, exc_info=True
            )

    def _abandon_queue(self) -> None:
        """Empty the queue of a writer that is gone: wake flush() waiters, count lost events.

        Events still queued here were recorded while close() ran (after the
        final drain); they are dropped with reason ``closed`` like those
        recorded after it, so ``written`` plus the drops accounts for every event.
        """
        queue, lost = self._queue, 0
        while queue:
            item = queue.popleft()
            if type(item) is _FlushMarker:
                item.done.set()
            else:
                lost += 1
        if lost:
            self._dropped.inc(("closed",), lost)


__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "AuditDatabaseError",
    "AuditReader",
    "AuditRecord",
    "AuditTrail",
    "normalise_trace_id",
    "open_database",
    "tune_writer",
]
