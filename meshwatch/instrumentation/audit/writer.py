"""The audit writer: bus events persisted to SQLite on a thread of its own.

::

    trail = AuditTrail("audit.db", max_age=30 * 86400).attach(bus)
    ...
    trail.reader.query(AuditFilter(agent_did="did:mesh:analyst"), limit=20)
    trail.close()  # flushes what is queued

**The agent does not wait for the disk while the queue has room.** The bus
calls :meth:`AuditTrail.record` on the emitting thread; it only appends the
(immutable) event to a deque of at most ``queue_size`` events. One writer
thread serialises events and commits them in batches of ``batch_size`` rows per
transaction, waking when a batch is ready or every ``flush_interval`` seconds.

**Nothing is lost to a burst (backpressure).** When the queue is full, the
emitting thread waits for the writer to take a batch, at most
``block_timeout`` seconds (30 by default; 0 never waits) per event, so a burst of any size is
persisted whole and, while the writer lags, emitters run at the writer's pace.
Only an event that found no room within ``block_timeout`` (the disk is stuck,
not slow) is dropped and counted
(``meshwatch_audit_events_dropped_total{reason="queue_full"}``); after such a
timeout the trail is *stalled* and later events are dropped at once instead of
each waiting again, until the writer makes room, so a dead disk costs the agent
one ``block_timeout``, not one per event. Several threads emitting at once may
overshoot ``queue_size`` by at most one event each (the length check and the
append are not one atomic step; making them one would put a lock on the hot
path).

**Payloads are bounded in bytes.** A payload whose JSON exceeds
``max_payload_bytes`` (64 KiB by default) is stored truncated: its large values
are replaced by ``"<truncated: N bytes>"`` and ``_truncated_bytes`` records the
original size; counted in ``meshwatch_events_dropped_total{component="audit",
reason="payload_truncated"}``.

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

**A writer holds a reader.** :attr:`AuditTrail.reader` is an
:class:`~meshwatch.instrumentation.audit.query.AuditReader` on a read-only
connection of its own, so queries never wait behind a write transaction; the
trail itself only writes.

Retention deletes by age (``max_age`` seconds) and by row count (``max_rows``),
on the writer thread, every ``retention_interval`` seconds and at close.
"""

from __future__ import annotations

import atexit
import logging
import math
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Literal

from meshwatch.instrumentation.audit.query import AuditReader
from meshwatch.instrumentation.audit.schema import (
    INSERT,
    AuditDatabaseError,
    Row,
    connect_reader,
    encode,
    open_database,
    to_us,
    tune_writer,
)
from meshwatch.instrumentation.bus import HypervisorEventBus, Subscription
from meshwatch.instrumentation.catalogue import (
    AUDIT_EVENTS_DROPPED,
    AUDIT_EVENTS_WRITTEN,
    AUDIT_QUEUE_DEPTH,
)
from meshwatch.instrumentation.drops import RateLimitedLog, record_event_drop
from meshwatch.instrumentation.events import HypervisorEvent
from meshwatch.instrumentation.payloads import DEFAULT_MAX_PAYLOAD_BYTES
from meshwatch.instrumentation.stores import (
    CardinalityGuard,
    CounterStore,
    MetricFamilySnapshot,
)

logger = logging.getLogger(__name__)
_log = RateLimitedLog(logger)
_GUARD = CardinalityGuard(max_series=100)
DEFAULT_BLOCK_TIMEOUT = 30.0


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


class AuditTrail:
    """Persists bus events to SQLite on a writer thread. See the module docstring.

    A :class:`~meshwatch.instrumentation.stores.MetricSource` of
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
        block_timeout: float = DEFAULT_BLOCK_TIMEOUT,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        for name, value in (
            ("queue_size", queue_size),
            ("batch_size", batch_size),
            ("max_payload_bytes", max_payload_bytes),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name, seconds in (
            ("flush_interval", flush_interval),
            ("retention_interval", retention_interval),
        ):
            if not isinstance(seconds, int | float) or not seconds > 0 or math.isinf(seconds):
                raise ValueError(f"{name} must be positive seconds, got {seconds!r}")
        if (
            isinstance(block_timeout, bool)
            or not isinstance(block_timeout, int | float)
            or not 0 <= block_timeout < math.inf
        ):
            raise ValueError(f"block_timeout must be seconds >= 0, got {block_timeout!r}")
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
            reader = connect_reader(path)
            self.reader = AuditReader(path, connection=reader)
        except sqlite3.Error as exc:  # e.g. locked by another writer past busy_timeout
            writer.close()
            raise AuditDatabaseError(path, f"cannot open the audit database ({exc})") from None
        except BaseException:
            writer.close()
            raise
        self.path = Path(path)

        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_interval = float(flush_interval)
        self.max_age = None if max_age is None else float(max_age)
        self.max_rows = max_rows
        self.retention_interval = float(retention_interval)
        self.block_timeout = float(block_timeout)
        self.max_payload_bytes = max_payload_bytes

        self._queue: deque[HypervisorEvent | _FlushMarker] = deque()
        self._wake = threading.Event()
        # Emitters wait on this for room in a full queue; the writer notifies after a batch.
        self._room = threading.Condition()
        self._stalled = False
        self._closed = False
        # record()'s shortcut: below this many queued items, appending one can neither
        # fill the queue nor complete a batch (the writer's wake-up), so it only appends.
        # close() sets it to 0, sending every later event through the closed check.
        self._append_below = min(queue_size, batch_size - 1)
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
        """Queue ``event`` for persistence; never raises.

        This is the bus handler. While the queue has room it only appends. A
        full queue makes the caller wait for room, up to ``block_timeout``
        seconds (see the module docstring); a closed trail drops and counts.

        The common case (open, room left, no batch completed) is one length
        check against ``_append_below`` and the append: it is the cost every
        emit pays with the trail attached. Every other case falls through to
        the full checks below, so they decide exactly as if there were no
        shortcut.
        """
        queue = self._queue
        if len(queue) < self._append_below:
            queue.append(event)
            return
        if (len(queue) >= self.queue_size or self._closed) and not self._wait_for_room():
            return
        queue.append(event)
        if len(queue) >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    def _wait_for_room(self) -> bool:
        """The full-queue path: True once there is room, False if the event was dropped."""
        if self._closed:
            self._dropped.inc(("closed",))
            return False
        if self._stalled or not self.block_timeout:
            if len(self._queue) >= self.queue_size:
                self._dropped.inc(("queue_full",))
                return False
            self._stalled = False
            return True
        self._wake.set()
        deadline = time.monotonic() + self.block_timeout
        with self._room:
            while len(self._queue) >= self.queue_size and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    self._stalled = True
                    self._dropped.inc(("queue_full",))
                    _log.warning(
                        "audit-stalled",
                        "audit: no room in the queue of %s for %.1f s; dropping events"
                        " until the writer catches up",
                        self.path,
                        self.block_timeout,
                    )
                    return False
                self._wake.set()
                self._room.wait(remaining)
        if self._closed:
            self._dropped.inc(("closed",))
            return False
        return True

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
            self._append_below = 0
        with self._room:  # emitters waiting for room give up: the trail is closing
            self._room.notify_all()
        self.detach()
        # The reader first: the writer's connection must close last, so SQLite
        # checkpoints and removes the -wal and -shm files.
        self.reader.close()
        self._wake.set()
        self._thread.join(timeout)
        _open_trails.discard(self)

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
            with self._room:  # the batch left the queue: room for waiting emitters
                self._room.notify_all()
            if batch:
                self._write(conn, batch)
            for marker in markers:
                marker.done.set()

    def _write(self, conn: sqlite3.Connection, batch: list[HypervisorEvent]) -> None:
        rows: list[Row] = []
        for event in batch:
            try:
                row, truncated = encode(event, self.max_payload_bytes)
            except Exception:  # a foreign object on the bus must not stop the writer
                self._dropped.inc(("write_error",))
                _log.warning(
                    "audit-row", "audit: cannot serialise %r; dropped", event, exc_info=True
                )
            else:
                rows.append(row)
                if truncated:
                    record_event_drop("audit", "payload_truncated")
        if not rows:
            return
        try:
            conn.execute("BEGIN")
            conn.executemany(INSERT, rows)
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
                cutoff = to_us(datetime.now(UTC)) - round(self.max_age * 1_000_000)
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


__all__ = ["DEFAULT_BLOCK_TIMEOUT", "AuditTrail"]
