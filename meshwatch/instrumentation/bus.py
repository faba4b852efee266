"""The event bus: a bounded, indexed, thread-safe event log with pub/sub.

Design, and why:

* **Bounded forever.** The log keeps the newest ``max_events`` events. When a
  new event pushes the oldest out, the oldest also leaves every index. Because
  the evicted event is the oldest overall, it is also the oldest entry of each
  index it appears in, so removing it is a ``popleft`` per index: O(1), no
  scans, no lazy tombstones. Index keys whose last event left are deleted, so
  a stream of one-off session ids cannot grow the index dicts either.
* **Cheap per key.** A session or agent seen once (the common case for
  sessions) is indexed by the event itself, a key with a few events by a
  tuple of them (up to ``_SMALL``), and only a key with more by a deque. A
  deque costs ~600 bytes even when nearly empty, a tuple 40 plus 8 per event,
  a bare reference 8; appending to or trimming a tuple of at most ``_SMALL``
  events is a bounded copy.
* **Exact under threads.** One lock guards the log, the indexes and the
  counts. Emit holds it for a few dict and deque operations only.
* **Bounded in bytes too.** A count alone does not bound memory (3,000 events
  with 1 MB payloads hold 3 GB), so each payload is measured once
  (:mod:`~meshwatch.instrumentation.payloads`, an estimate bounded in work):
  a flat one (strings and numbers) when its event is built, a nested one by
  the first bus that emits it, and the event carries the size from then on.
  One over ``max_payload_bytes`` (64 KiB by default) is cut to its small
  values before anyone sees it, counted in
  ``meshwatch_events_dropped_total{component="bus",reason="payload_truncated"}``;
  and the log also evicts its oldest events while the retained estimate
  exceeds ``max_bytes`` (256 MiB by default, about 600 bytes per event plus
  its payload).
* **Subscribers outside the lock.** Handlers run after the lock is released,
  on the emitting thread, so a slow or re-entrant handler (one that emits)
  cannot deadlock or stall other emitters. A handler that raises is logged
  (rate-limited) and counted in ``meshwatch_bus_subscriber_errors_total``; the
  remaining handlers still run and ``emit`` returns normally.
* **Type-specific dispatch.** Handlers subscribed to one event type are looked
  up by that type, so a saga span exporter costs nothing on ring events.
  Type-specific handlers run first, then batched subscriptions, then wildcard
  handlers, each group in subscription order.
* **Batched subscriptions** (:meth:`HypervisorEventBus.subscribe_batched`).
  A collector whose state is read rather than pushed (the ring metrics) has
  its events queued and applies them 64 at a time, and whenever it is read:
  the bus appends to a deque instead of calling a handler per event.

The bus is also a :class:`~meshwatch.instrumentation.stores.MetricSource`:
events emitted per type, events retained, subscriber errors.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta

from meshwatch.instrumentation.catalogue import (
    BUS_EVENTS,
    BUS_RETAINED_EVENTS,
    BUS_SUBSCRIBER_ERRORS,
)
from meshwatch.instrumentation.drops import RateLimitedLog, record_event_drop
from meshwatch.instrumentation.events import (
    UNMEASURED,
    EventType,
    HypervisorEvent,
    event_microseconds,
    record_payload_size,
)
from meshwatch.instrumentation.payloads import DEFAULT_MAX_PAYLOAD_BYTES, capped, payload_bytes
from meshwatch.instrumentation.stores import CounterStore, LabelValues, MetricFamilySnapshot

Handler = Callable[[HypervisorEvent], object]
BatchHandler = Callable[[deque[HypervisorEvent]], object]

_log = RateLimitedLog(logging.getLogger(__name__))
DEFAULT_MAX_EVENTS = 100_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
# What a retained event costs besides its payload (the event, its ids, its
# index entries): about what benchmarks/bench_instrumentation.py measures.
EVENT_OVERHEAD_BYTES = 600

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

# An index entry: the single event of a key, a tuple of up to _SMALL of its events,
# or a deque of more (oldest first).
_Entry = HypervisorEvent | tuple[HypervisorEvent, ...] | deque[HypervisorEvent]
_SMALL = 16


def _entry_events(entry: _Entry | None) -> list[HypervisorEvent]:
    if entry is None:
        return []
    if isinstance(entry, tuple | deque):
        return list(entry)
    return [entry]


def _as_utc(moment: datetime | None, name: str) -> datetime | None:
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime or None, got {moment!r}")
    if moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)  # naive datetimes are taken as UTC
    return moment


class Subscription:
    """What :meth:`HypervisorEventBus.subscribe` returns; ``cancel()`` unsubscribes."""

    __slots__ = ("_bus", "event_type", "handler")

    def __init__(self, bus: HypervisorEventBus, event_type: EventType | None, handler: Handler):
        self._bus = bus
        self.event_type = event_type
        self.handler = handler

    def cancel(self) -> bool:
        """Unsubscribe; True if the handler was still subscribed."""
        return self._bus.unsubscribe(self.event_type, self.handler)


class BatchSubscription:
    """What :meth:`HypervisorEventBus.subscribe_batched` returns: events queued for a batch.

    The bus appends each event of the subscribed types to :attr:`pending` and
    calls ``apply(pending)`` once ``batch`` events wait; ``apply`` takes them
    from the left (``popleft`` until empty) and must hold its own lock while
    it does, so two threads applying at once keep the events in order.
    A subscriber that reads its state calls :meth:`flush` first, so what it
    reads includes every event emitted before the read.
    """

    __slots__ = ("_bus", "apply", "batch", "event_types", "pending")

    def __init__(
        self,
        bus: HypervisorEventBus,
        event_types: tuple[EventType, ...],
        apply: BatchHandler,
        batch: int,
    ) -> None:
        self._bus = bus
        self.event_types = event_types
        self.apply = apply
        self.batch = batch
        # deque.append and popleft are atomic: an emitter on another thread never
        # loses an event to a batch being applied.
        self.pending: deque[HypervisorEvent] = deque()

    def flush(self) -> None:
        """Apply the queued events now (a no-op when none wait)."""
        if self.pending:
            self.apply(self.pending)

    def cancel(self) -> bool:
        """Stop queueing; True if it was still subscribed. Queued events stay for :meth:`flush`."""
        return self._bus._unsubscribe_batched(self)


class _Route:
    """What the bus keeps per event type: its emit count and who hears it.

    One record per type, made for every type up front, so an emit finds its
    count, handlers and batched subscriptions with one dict lookup that
    always hits, instead of one per table. The handler tuples are replaced,
    never changed (copy-on-write under the bus lock), so emit reads them
    without the lock.
    """

    __slots__ = ("batched", "emitted", "handlers")

    def __init__(self) -> None:
        self.emitted = 0
        self.handlers: tuple[Handler, ...] = ()
        self.batched: tuple[BatchSubscription, ...] = ()


class HypervisorEventBus:
    """Append-only (newest ``max_events`` retained) event store with indexes and pub/sub.

    >>> bus = HypervisorEventBus(max_events=2)
    >>> for _ in range(3):
    ...     bus.emit(HypervisorEvent(EventType.SESSION_CREATED, session_id="s"))
    >>> bus.event_count, len(bus.query_by_session("s")), bus.emitted_count
    (2, 2, 3)
    """

    def __init__(
        self,
        max_events: int = DEFAULT_MAX_EVENTS,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        for name, value in (
            ("max_events", max_events),
            ("max_bytes", max_bytes),
            ("max_payload_bytes", max_payload_bytes),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self._max_events = max_events
        self._max_bytes = max_bytes
        # A cap at UNMEASURED or above is no cap at all: the same as one just below it.
        self._max_payload_bytes = min(max_payload_bytes, UNMEASURED - 1)
        # The retained events' estimate: their payloads plus EVENT_OVERHEAD_BYTES each.
        self._bytes = 0
        self._lock = threading.Lock()
        self._log: deque[HypervisorEvent] = deque()
        self._by_type: dict[EventType, deque[HypervisorEvent]] = {}
        self._by_session: dict[str, _Entry] = {}
        self._by_agent: dict[str, _Entry] = {}
        self._routes = {event_type: _Route() for event_type in EventType}
        # The indexes are built on the first query after emits, not by emit (the hot
        # path): the log's oldest ``_indexed`` events are in them, the rest not yet.
        self._indexed = 0
        # Copy-on-write handler tuples (and those of the routes): emit reads them
        # without the lock.
        self._wildcard: tuple[Handler, ...] = ()
        self._subscriber_errors = CounterStore(BUS_SUBSCRIBER_ERRORS)

    @property
    def max_events(self) -> int:
        return self._max_events

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    @property
    def retained_bytes(self) -> int:
        """The estimated bytes the retained events hold (bounded by ``max_bytes``)."""
        return self._bytes

    # -- emit --------------------------------------------------------------------

    def emit(self, event: HypervisorEvent) -> None:
        """Record ``event`` and deliver it to its subscribers. Never raises for a valid event.

        It is the hot path every instrumented action pays, so it only appends,
        counts and evicts: the session, agent and type indexes are brought up
        to date by the next query (:meth:`_catch_up`), not here.
        """
        if type(event) is not HypervisorEvent and not isinstance(event, HypervisorEvent):
            raise TypeError(f"emit takes a HypervisorEvent, got {type(event).__name__}")
        # Measured when the event was built; UNMEASURED (a nested payload) is over every cap.
        size = event._payload_size
        if size > self._max_payload_bytes:
            event, size = self._measured(event)
        # EventType is a StrEnum, hashed as its value string: a C hash, not Enum's.
        route = self._routes[event.event_type]
        lock = self._lock
        lock.acquire()  # not ``with``: acquire/release in try/finally is ~90 ns cheaper
        try:
            log = self._log
            log.append(event)
            route.emitted += 1
            if len(log) > self._max_events:  # the steady state: one in, the oldest out
                oldest = log.popleft()
                self._bytes += size - oldest._payload_size  # the overheads cancel
                if self._indexed:
                    self._unindex(oldest)
                    self._indexed -= 1
            else:
                self._bytes += size + EVENT_OVERHEAD_BYTES
            if self._bytes > self._max_bytes:
                self._evict()
        finally:
            lock.release()
        for handler in route.handlers:
            try:
                handler(event)
            except Exception:
                self._subscriber_failed(event, handler)
        for queue in route.batched:
            pending = queue.pending
            pending.append(event)
            if len(pending) >= queue.batch:
                try:
                    queue.apply(pending)
                except Exception:
                    self._subscriber_failed(event, queue.apply)
        if self._wildcard:
            for handler in self._wildcard:
                try:
                    handler(event)
                except Exception:
                    self._subscriber_failed(event, handler)

    def _measured(self, event: HypervisorEvent) -> tuple[HypervisorEvent, int]:
        """``event`` and its payload size, for one whose size the hot path cannot take as is.

        Either its payload was not measured when it was built (it holds nested
        values: measured here by the walk, bounded by this bus's cap, and
        recorded on the event for the eviction), or it is over the cap: then
        the event is replaced by its capped copy before anyone sees it.
        """
        limit = self._max_payload_bytes
        if event._payload_size == UNMEASURED:
            size = payload_bytes(event.payload, limit)
            if size <= limit:
                record_payload_size(event, size)
                return event, size
        event = capped(event, limit)
        size = payload_bytes(event.payload, limit)
        record_payload_size(event, size)
        record_event_drop("bus", "payload_truncated")
        return event, size

    def _evict(self) -> None:
        """Drop the oldest events until both bounds hold (called with the lock held)."""
        log = self._log
        while len(log) > self._max_events or (self._bytes > self._max_bytes and len(log) > 1):
            oldest = log.popleft()
            self._bytes -= oldest._payload_size + EVENT_OVERHEAD_BYTES
            if self._indexed:
                self._unindex(oldest)
                self._indexed -= 1

    def _unindex(self, oldest: HypervisorEvent) -> None:
        """Drop the log's oldest event from the indexes (called with the lock held).

        The oldest event is also the oldest entry of each of its indexes, so
        this is a popleft per index.
        """
        typed = self._by_type[oldest.event_type]
        typed.popleft()
        if not typed:
            del self._by_type[oldest.event_type]
        for index, key in (
            (self._by_session, oldest.session_id),
            (self._by_agent, oldest.agent_did),
        ):
            if key is None:
                continue
            entry = index[key]
            if isinstance(entry, tuple):
                index[key] = entry[1] if len(entry) == 2 else entry[1:]
            elif isinstance(entry, deque):
                entry.popleft()
                if len(entry) <= _SMALL // 2:  # small again: the compact form
                    index[key] = tuple(entry) if len(entry) > 1 else entry[0]
            else:
                del index[key]

    def _catch_up(self) -> None:
        """Index the events emitted since the last query (called with the lock held)."""
        log = self._log
        new = len(log) - self._indexed
        if new <= 0:
            return
        fresh = list(itertools.islice(reversed(log), new))
        fresh.reverse()
        by_type = self._by_type
        for event in fresh:
            typed = by_type.get(event.event_type)
            if typed is None:
                typed = by_type[event.event_type] = deque()
            typed.append(event)
            for index, key in (
                (self._by_session, event.session_id),
                (self._by_agent, event.agent_did),
            ):
                if key is None:
                    continue
                entry = index.get(key)
                if entry is None:
                    index[key] = event
                elif isinstance(entry, tuple):
                    index[key] = (*entry, event) if len(entry) < _SMALL else deque((*entry, event))
                elif isinstance(entry, deque):
                    entry.append(event)
                else:
                    index[key] = (entry, event)
        self._indexed = len(log)

    def _subscriber_failed(self, event: HypervisorEvent, handler: Handler | BatchHandler) -> None:
        self._subscriber_errors.inc((event.event_type.value,))
        _log.warning(
            f"subscriber:{id(handler)}",
            "bus subscriber %r raised on %s; event delivered to the other subscribers",
            handler,
            event.event_type.value,
            exc_info=True,
        )

    # -- subscribe ---------------------------------------------------------------

    def subscribe(
        self, event_type: EventType | None = None, handler: Handler | None = None
    ) -> Subscription:
        """Call ``handler(event)`` for every event of ``event_type`` (None: every event).

        Returns a :class:`Subscription` whose ``cancel()`` undoes this;
        ``unsubscribe(event_type, handler)`` does the same.
        """
        if handler is None or not callable(handler):
            raise TypeError(f"handler must be callable, got {handler!r}")
        if event_type is not None:
            event_type = EventType(event_type)
        with self._lock:
            if event_type is None:
                self._wildcard = (*self._wildcard, handler)
            else:
                route = self._routes[event_type]
                route.handlers = (*route.handlers, handler)
        return Subscription(self, event_type, handler)

    def subscribe_batched(
        self, event_types: Iterable[EventType], apply: BatchHandler, *, batch: int = 64
    ) -> BatchSubscription:
        """Queue every event of ``event_types``; call ``apply(queue)`` each ``batch`` events.

        For a subscriber whose state is read, not pushed (metric collectors):
        applying a batch in one loop costs less per event than one
        handler call each (no call, no lock per event), and the work stays on
        the emitting threads. The subscriber flushes the queue before every
        read (:meth:`BatchSubscription.flush`). A raising ``apply`` is counted
        and logged as a subscriber error, as a raising handler is.
        """
        if not callable(apply):
            raise TypeError(f"apply must be callable, got {apply!r}")
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive int, got {batch!r}")
        types = tuple(dict.fromkeys(EventType(t) for t in event_types))
        subscription = BatchSubscription(self, types, apply, batch)
        with self._lock:
            for event_type in types:
                route = self._routes[event_type]
                route.batched = (*route.batched, subscription)
        return subscription

    def _unsubscribe_batched(self, subscription: BatchSubscription) -> bool:
        found = False
        with self._lock:
            for event_type in subscription.event_types:
                route = self._routes[event_type]
                remaining = tuple(s for s in route.batched if s is not subscription)
                found = found or len(remaining) < len(route.batched)
                route.batched = remaining
        return found

    def unsubscribe(
        self, event_type: EventType | None = None, handler: Handler | None = None
    ) -> bool:
        """Remove one subscription of ``handler`` to ``event_type``; True if there was one."""
        if event_type is not None:
            event_type = EventType(event_type)
        with self._lock:
            current = self._wildcard if event_type is None else self._routes[event_type].handlers
            for i, subscribed in enumerate(current):
                if subscribed == handler:
                    remaining = current[:i] + current[i + 1 :]
                    break
            else:
                return False
            if event_type is None:
                self._wildcard = remaining
            else:
                self._routes[event_type].handlers = remaining
            return True

    # -- query -------------------------------------------------------------------

    def query_by_type(self, event_type: EventType) -> list[HypervisorEvent]:
        """Retained events of one type, oldest first."""
        event_type = EventType(event_type)
        with self._lock:
            self._catch_up()
            return list(self._by_type.get(event_type, ()))

    def query_by_session(self, session_id: str) -> list[HypervisorEvent]:
        """Retained events of one session, oldest first."""
        with self._lock:
            self._catch_up()
            return _entry_events(self._by_session.get(session_id))

    def query_by_agent(self, agent_did: str) -> list[HypervisorEvent]:
        """Retained events of one agent, oldest first."""
        with self._lock:
            self._catch_up()
            return _entry_events(self._by_agent.get(agent_did))

    def query_by_time_range(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> list[HypervisorEvent]:
        """Retained events with ``start <= timestamp <= end`` (either bound optional).

        Naive datetimes are taken as UTC. The result is in emit order; event
        timestamps need not be monotonic (callers may set them), so this is a
        scan of the retained log, not a bisection.
        """
        return self.query(start=start, end=end)

    def query(
        self,
        event_type: EventType | None = None,
        session_id: str | None = None,
        agent_did: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> list[HypervisorEvent]:
        """Retained events matching every given filter (AND), oldest first.

        ``limit`` keeps the NEWEST ``limit`` matches (still oldest first):
        when asking "what happened", the recent end is the useful one.
        """
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
        if event_type is not None:
            event_type = EventType(event_type)
        start, end = _as_utc(start, "start"), _as_utc(end, "end")
        with self._lock:
            self._catch_up()
            candidates: list[HypervisorEvent]
            # Start from the narrowest index given; filter the rest below.
            sources: list[list[HypervisorEvent]] = []
            if session_id is not None:
                sources.append(_entry_events(self._by_session.get(session_id)))
            if agent_did is not None:
                sources.append(_entry_events(self._by_agent.get(agent_did)))
            if event_type is not None:
                sources.append(list(self._by_type.get(event_type, ())))
            candidates = min(sources, key=len) if sources else list(self._log)
        # Times compare as whole microseconds, as the events store them (no datetimes built).
        lo = None if start is None else (start - _EPOCH) // _US
        hi = None if end is None else (end - _EPOCH) // _US
        matches = [
            e
            for e in candidates
            if (event_type is None or e.event_type is event_type)
            and (session_id is None or e.session_id == session_id)
            and (agent_did is None or e.agent_did == agent_did)
            and (lo is None or event_microseconds(e) >= lo)
            and (hi is None or event_microseconds(e) <= hi)
        ]
        if limit is not None:
            matches = matches[len(matches) - limit :] if limit else []
        return matches

    # -- statistics ----------------------------------------------------------------

    @property
    def event_count(self) -> int:
        """Events currently retained (at most ``max_events``)."""
        return len(self._log)

    @property
    def emitted_count(self) -> int:
        """Events ever emitted on this bus, retained or not."""
        with self._lock:
            return sum(route.emitted for route in self._routes.values())

    def type_counts(self) -> dict[str, int]:
        """Retained events per event type value, e.g. ``{"ring.assigned": 1}``."""
        with self._lock:
            self._catch_up()
            return {t.value: len(events) for t, events in self._by_type.items()}

    def emitted_counts(self) -> dict[str, int]:
        """Events ever emitted per event type value (what ``meshwatch_bus_events_total`` counts)."""
        with self._lock:
            return {t.value: r.emitted for t, r in self._routes.items() if r.emitted}

    @property
    def all_events(self) -> list[HypervisorEvent]:
        """A copy of the retained log, oldest first."""
        with self._lock:
            return list(self._log)

    def subscriber_errors(self) -> dict[str, float]:
        """Subscriber exceptions so far, per event type value."""
        return {key[0]: n for key, n in self._subscriber_errors.items().items()}

    def metric_families(self) -> Iterator[MetricFamilySnapshot]:
        """The bus's own metrics, for the Prometheus adapter."""
        with self._lock:
            emitted: dict[LabelValues, float] = {
                (t.value,): float(r.emitted) for t, r in self._routes.items() if r.emitted
            }
            retained = float(len(self._log))
        yield MetricFamilySnapshot(BUS_EVENTS, BUS_EVENTS.labels, emitted)
        yield MetricFamilySnapshot(BUS_RETAINED_EVENTS, BUS_RETAINED_EVENTS.labels, {(): retained})
        yield self._subscriber_errors.snapshot()


__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_EVENTS",
    "EVENT_OVERHEAD_BYTES",
    "BatchSubscription",
    "Handler",
    "HypervisorEventBus",
    "Subscription",
]
