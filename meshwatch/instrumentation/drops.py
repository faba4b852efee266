"""Process-wide counts of what instrumentation threw away, and log throttling.

Instrumentation never raises into an agent's code path because an event was
malformed or a sink failed: it drops the event (or span), counts it here and
logs. These counters are process-wide, like prometheus_client's default
registry, because several components report into the same metric
(``meshwatch_events_dropped_total{component,reason}``): one store per metric
means one family in the exposition, whichever collectors exist.

:data:`DROPS` is their :class:`~meshwatch.instrumentation.stores.MetricSource`;
``ScrapeExporter`` (and so ``serve_metrics``) exposes it by default, as
part of its self-metrics. :class:`RateLimitedLog` keeps a flood of bad
events from flooding the log: the first occurrence of a key is logged at
WARNING, repeats within the interval only at DEBUG, with a suppressed count
reported on the next warning.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from meshwatch.instrumentation.catalogue import EVENTS_DROPPED, SPANS_DROPPED
from meshwatch.instrumentation.stores import (
    CardinalityGuard,
    CounterStore,
    MetricFamilySnapshot,
)

# Components and reasons are code constants, never user data, so the series
# count is small by construction; the cap only guards against misuse.
_SELF_GUARD = CardinalityGuard(max_series=1_000)

_EVENTS_DROPPED = CounterStore(EVENTS_DROPPED, guard=_SELF_GUARD)
_SPANS_DROPPED = CounterStore(SPANS_DROPPED, guard=_SELF_GUARD)


def record_event_drop(component: str, reason: str) -> None:
    """Count one event that ``component`` ignored for ``reason``."""
    _EVENTS_DROPPED.inc((component, reason))


def record_span_drop(reason: str, count: int = 1) -> None:
    """Count ``count`` spans lost before export for ``reason`` (sink_error, queue_full, ...)."""
    _SPANS_DROPPED.inc((reason,), count)


def event_drops(component: str, reason: str) -> float:
    """How many events ``component`` dropped for ``reason`` so far (for tests and tools)."""
    return _EVENTS_DROPPED.get((component, reason))


def span_drops(reason: str) -> float:
    """How many spans were dropped for ``reason`` so far."""
    return _SPANS_DROPPED.get((reason,))


class _DropMetrics:
    """The MetricSource view of the process-wide drop counters."""

    def metric_families(self) -> Iterator[MetricFamilySnapshot]:
        yield _EVENTS_DROPPED.snapshot()
        yield _SPANS_DROPPED.snapshot()


DROPS = _DropMetrics()


class RateLimitedLog:
    """Log each key at WARNING at most once per ``interval`` seconds, else at DEBUG.

    Used for problems that can repeat at event rate (a subscriber that always
    raises, a sink that is down): the first one is visible, the rest cannot
    flood the log, and the next warning says how many were suppressed.
    """

    def __init__(self, logger: logging.Logger, *, interval: float = 60.0) -> None:
        self._logger = logger
        self._interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args: object, exc_info: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            loud = last is None or now - last >= self._interval
            if loud:
                if len(self._last) >= 1_000 and key not in self._last:
                    self._last.clear()
                    self._suppressed.clear()
                self._last[key] = now
                suppressed = self._suppressed.pop(key, 0)
            else:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
        if loud:
            if suppressed:
                msg += " (%d similar messages suppressed)"
                args = (*args, suppressed)
            self._logger.warning(msg, *args, exc_info=exc_info)
        else:
            self._logger.debug(msg, *args, exc_info=exc_info)


__all__ = [
    "DROPS",
    "RateLimitedLog",
    "event_drops",
    "record_event_drop",
    "record_span_drop",
    "span_drops",
]
