"""Thread-safe metric value stores with a cardinality guard, and their snapshots.

The pure-Python core keeps its numbers here; the Prometheus adapter reads them
at scrape time through :class:`MetricSource`. Each store guards one dict with
one lock (as prometheus_client does for a metric's children); ``snapshot()``
copies under the lock and builds the result outside it, so a scrape never
holds a lock while formatting.

The cardinality guard bounds memory and Prometheus load:

* ``max_series``: a metric that already holds this many label sets folds every
  new label set into one series whose label values are all ``__overflow__``,
  and counts each folded observation in ``meshwatch_series_overflow_total``.
* ``drop_session_id``: sessions are short-lived and unbounded, so a long-running
  fleet creates a new series per session forever. With this switch the
  ``session_id`` label value is replaced by the empty string, which Prometheus
  treats as "label absent": series aggregate over sessions.

Fused updates: stores built with the same ``lock`` share it, and their
``*_locked`` methods update them while the caller holds it. A collector that
updates a counter and its own state per event (or a task timer that updates a
counter and a histogram) then takes one lock per event instead of one per
store, and a reader taking that lock sees both updates or neither.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from meshwatch.instrumentation.catalogue import SERIES_OVERFLOW, MetricDef, MetricType

OVERFLOW = "__overflow__"
_bisect_left = bisect.bisect_left
SESSION_LABEL = "session_id"

LabelValues = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CardinalityGuard:
    """Limits on how many series one metric may hold. See the module docstring."""

    max_series: int = 10_000
    drop_session_id: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.max_series, bool) or not isinstance(self.max_series, int):
            raise TypeError(f"max_series must be an int, got {self.max_series!r}")
        if self.max_series < 1:
            raise ValueError(f"max_series must be at least 1, got {self.max_series}")


_default_guard = CardinalityGuard()


def default_guard() -> CardinalityGuard:
    """The guard used by stores that were not given one."""
    return _default_guard


def configure_cardinality(
    *, max_series: int | None = None, drop_session_id: bool | None = None
) -> CardinalityGuard:
    """Change the process-wide default guard; returns the guard now in force.

    Series already admitted stay; the new limits apply to label sets seen from now on.
    """
    global _default_guard
    current = _default_guard
    _default_guard = CardinalityGuard(
        max_series=current.max_series if max_series is None else max_series,
        drop_session_id=current.drop_session_id if drop_session_id is None else drop_session_id,
    )
    return _default_guard


# The exemplar label naming a trace; Grafana's Prometheus datasource maps it to Tempo.
EXEMPLAR_TRACE_ID_LABEL = "trace_id"


def finite_number(value: object) -> float | None:
    """``value`` as a finite float, or None when it is not a usable measurement.

    Bools are not numbers here (``True`` as a latency is a caller's bug), and
    NaN or infinity would poison a histogram's sum for good.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class Exemplar:
    """A trace reference attached to one histogram bucket (OpenMetrics exemplar)."""

    labels: Mapping[str, str]
    value: float
    timestamp: float


@dataclass(frozen=True, slots=True)
class HistogramValue:
    """One histogram series: cumulative bucket counts (last one is +Inf), sum, count."""

    bounds: tuple[float, ...]
    cumulative_counts: tuple[int, ...]
    sum: float
    exemplars: tuple[Exemplar | None, ...] = ()

    @property
    def count(self) -> int:
        return self.cumulative_counts[-1] if self.cumulative_counts else 0


SampleValue = float | HistogramValue


@dataclass(frozen=True, slots=True)
class MetricFamilySnapshot:
    """All series of one catalogue metric at one instant."""

    metric: MetricDef
    label_names: tuple[str, ...]
    samples: Mapping[LabelValues, SampleValue] = field(default_factory=dict)


@runtime_checkable
class MetricSource(Protocol):
    """Anything the Prometheus adapter can read at scrape time."""

    def metric_families(self) -> Iterable[MetricFamilySnapshot]:
        """A consistent copy of this source's metrics; called on every scrape."""
        ...


def _as_key(values: Sequence[object]) -> LabelValues:
    """Label values as the tuple of strings a store keys its series by."""
    return tuple(v if type(v) is str else str(v) for v in values)


class _Store:
    """Common part of the stores: label handling and the cardinality guard."""

    kind: MetricType

    def __init__(
        self,
        metric: MetricDef,
        *,
        with_optional_labels: bool = False,
        guard: CardinalityGuard | None = None,
        lock: threading.Lock | None = None,
    ) -> None:
        if metric.type is not self.kind:
            raise TypeError(f"{type(self).__name__} cannot hold {metric.type.value} {metric.name}")
        self.metric = metric
        self.label_names = metric.all_labels(with_optional=with_optional_labels)
        self._guard = guard
        self._session_index = (
            self.label_names.index(SESSION_LABEL) if SESSION_LABEL in self.label_names else -1
        )
        self._lock = threading.Lock() if lock is None else lock
        self._overflow_key = (OVERFLOW,) * len(self.label_names)

    @property
    def lock(self) -> threading.Lock:
        """The lock guarding this store (shared with others built with the same ``lock``)."""
        return self._lock

    @property
    def guard(self) -> CardinalityGuard:
        return self._guard if self._guard is not None else _default_guard

    def _admit(
        self, values: Sequence[object], existing: Mapping[LabelValues, object]
    ) -> LabelValues:
        """Map raw label values to the key they are stored under. Call under the lock.

        The writers try one dict lookup first, for a tuple that already is a
        key (the hot path); only a new label set, or another sequence type such
        as a list (unhashable, so never looked up), is normalised here.
        """
        if len(values) != len(self.label_names):
            raise ValueError(
                f"{self.metric.name} takes labels {self.label_names}, got {len(values)} values"
            )
        key = _as_key(values)
        guard = self.guard
        if guard.drop_session_id and self._session_index >= 0:
            key = (*key[: self._session_index], "", *key[self._session_index + 1 :])
        if key in existing or len(existing) < guard.max_series:
            return key
        if self is not _OVERFLOW_COUNTER:
            _OVERFLOW_COUNTER.inc((self.metric.name,))
        return self._overflow_key

    def __len__(self) -> int:
        with self._lock:
            return len(self._values())

    def _values(self) -> Mapping[LabelValues, object]:
        raise NotImplementedError


class CounterStore(_Store):
    """Monotonic counters keyed by label values."""

    kind = MetricType.COUNTER

    def __init__(self, metric: MetricDef, **kwargs: object) -> None:
        super().__init__(metric, **kwargs)  # type: ignore[arg-type]
        self._data: dict[LabelValues, float] = {}

    def _values(self) -> Mapping[LabelValues, object]:
        return self._data

    def inc(self, label_values: Sequence[object] = (), amount: float = 1.0) -> None:
        if not amount >= 0:  # also rejects NaN
            raise ValueError(f"{self.metric.name}: counters only go up, got {amount!r}")
        lock = self._lock
        lock.acquire()  # not ``with``: acquire/release in try/finally is ~90 ns cheaper
        try:
            data = self._data
            if type(label_values) is tuple:
                value = data.get(label_values)
                if value is not None:  # the hot path: a series seen before
                    data[label_values] = value + amount
                    return
            key = self._admit(label_values, data)
            data[key] = data.get(key, 0.0) + amount
        finally:
            lock.release()

    def inc_locked(self, label_values: LabelValues) -> None:
        """Add 1 to a series while the caller holds :attr:`lock` (a fused update).

        ``label_values`` must be a tuple (the keys the collectors build); a
        new label set is admitted through the cardinality guard as in :meth:`inc`.
        """
        data = self._data
        value = data.get(label_values)
        if value is None:
            key = self._admit(label_values, data)
            data[key] = data.get(key, 0.0) + 1.0
        else:
            data[label_values] = value + 1.0

    def series_locked(self) -> dict[LabelValues, float]:
        """The store's own series dict, for the hot path of a fused update.

        A collector on the emit path fetches it once (at construction, and
        again when it replaces the store) and then, while holding :attr:`lock`,
        adds to a series it finds in it without a method call (~100 ns per
        event). A label set not in it must go through :meth:`inc_locked`, so
        every new series still passes the cardinality guard.
        """
        return self._data

    def get(self, label_values: Sequence[object] = ()) -> float:
        key = _as_key(label_values)
        with self._lock:
            return self._data.get(key, 0.0)

    def items(self) -> dict[LabelValues, float]:
        with self._lock:
            return dict(self._data)

    def snapshot(self) -> MetricFamilySnapshot:
        return MetricFamilySnapshot(self.metric, self.label_names, self.items())


class GaugeStore(_Store):
    """Gauges keyed by label values; ``remove`` forgets a series (an agent that left)."""

    kind = MetricType.GAUGE

    def __init__(self, metric: MetricDef, **kwargs: object) -> None:
        super().__init__(metric, **kwargs)  # type: ignore[arg-type]
        self._data: dict[LabelValues, float] = {}

    def _values(self) -> Mapping[LabelValues, object]:
        return self._data

    def set(self, label_values: Sequence[object], value: float) -> None:
        with self._lock:
            data = self._data
            if type(label_values) is tuple and label_values in data:
                key = label_values
            else:
                key = self._admit(label_values, data)
            data[key] = float(value)

    def inc(self, label_values: Sequence[object] = (), amount: float = 1.0) -> None:
        with self._lock:
            data = self._data
            if type(label_values) is tuple and label_values in data:
                key = label_values
            else:
                key = self._admit(label_values, data)
            data[key] = data.get(key, 0.0) + amount

    def remove(self, label_values: Sequence[object]) -> None:
        key = _as_key(label_values)
        with self._lock:
            self._data.pop(key, None)

    def get(self, label_values: Sequence[object] = ()) -> float | None:
        key = _as_key(label_values)
        with self._lock:
            return self._data.get(key)

    def items(self) -> dict[LabelValues, float]:
        with self._lock:
            return dict(self._data)

    def snapshot(self) -> MetricFamilySnapshot:
        return MetricFamilySnapshot(self.metric, self.label_names, self.items())


class _HistogramSeries:
    __slots__ = ("counts", "exemplars", "sum")

    def __init__(self, n_buckets: int) -> None:
        self.counts = [0] * (n_buckets + 1)
        self.sum = 0.0
        self.exemplars: list[Exemplar | None] = []


class HistogramStore(_Store):
    """Histograms with the catalogue's bucket bounds, keyed by label values.

    Each bucket keeps the most recent exemplar observed into it, when the caller
    passes one (a trace id), so Grafana can jump from a latency spike to a trace.
    """

    kind = MetricType.HISTOGRAM

    def __init__(self, metric: MetricDef, **kwargs: object) -> None:
        super().__init__(metric, **kwargs)  # type: ignore[arg-type]
        self.bounds = metric.buckets
        self._data: dict[LabelValues, _HistogramSeries] = {}

    def _values(self) -> Mapping[LabelValues, object]:
        return self._data

    def observe(
        self,
        label_values: Sequence[object],
        value: float,
        exemplar: Exemplar | None = None,
    ) -> None:
        if math.isnan(value):
            raise ValueError(f"{self.metric.name}: cannot observe NaN")
        lock = self._lock
        lock.acquire()
        try:
            self.observe_locked(
                label_values if type(label_values) is tuple else _as_key(label_values),
                value,
                exemplar,
            )
        finally:
            lock.release()

    def observe_locked(
        self, label_values: LabelValues, value: float, exemplar: Exemplar | None = None
    ) -> None:
        """:meth:`observe` while the caller holds :attr:`lock` (a fused update).

        ``label_values`` must be a tuple and ``value`` a number that is not
        NaN (the caller measured it, e.g. a perf_counter difference). A new
        label set is admitted through the cardinality guard as in :meth:`observe`.
        """
        data = self._data
        series = data.get(label_values)
        if series is None:
            key = self._admit(label_values, data)
            series = data.get(key)
            if series is None:
                series = data[key] = _HistogramSeries(len(self.bounds))
        index = _bisect_left(self.bounds, value)
        series.counts[index] += 1
        series.sum += value
        if exemplar is not None:
            if not series.exemplars:
                series.exemplars = [None] * (len(self.bounds) + 1)
            series.exemplars[index] = exemplar

    def items(self) -> dict[LabelValues, HistogramValue]:
        with self._lock:
            raw = [(k, list(s.counts), s.sum, tuple(s.exemplars)) for k, s in self._data.items()]
        result: dict[LabelValues, HistogramValue] = {}
        for key, counts, total, exemplars in raw:
            cumulative, running = [], 0
            for c in counts:
                running += c
                cumulative.append(running)
            result[key] = HistogramValue(self.bounds, tuple(cumulative), total, exemplars)
        return result

    def snapshot(self) -> MetricFamilySnapshot:
        return MetricFamilySnapshot(self.metric, self.label_names, self.items())


# Process-wide count of observations folded by the guard; exposed by the adapter.
_OVERFLOW_COUNTER = CounterStore(SERIES_OVERFLOW, guard=CardinalityGuard(max_series=100_000))


def overflow_snapshot() -> MetricFamilySnapshot:
    """``meshwatch_series_overflow_total``: folded observations per metric name."""
    return _OVERFLOW_COUNTER.snapshot()


__all__ = [
    "EXEMPLAR_TRACE_ID_LABEL",
    "OVERFLOW",
    "CardinalityGuard",
    "CounterStore",
    "Exemplar",
    "GaugeStore",
    "HistogramStore",
    "HistogramValue",
    "MetricFamilySnapshot",
    "MetricSource",
    "configure_cardinality",
    "default_guard",
    "finite_number",
    "overflow_snapshot",
]
