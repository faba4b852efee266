"""Snapshots of meshwatch's stores as prometheus_client metric families.

One family per catalogue metric, however many sources report it: counter and
histogram series with equal labels are summed, and for a gauge the first
source wins. Histogram buckets keep their trace-id exemplars.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Exemplar as PromExemplar
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from meshwatch.instrumentation.catalogue import MetricDef, MetricType
from meshwatch.instrumentation.stores import (
    Exemplar,
    HistogramValue,
    LabelValues,
    MetricFamilySnapshot,
    SampleValue,
)

_Series = tuple[tuple[str, ...], Mapping[LabelValues, SampleValue]]
_le_cache: dict[tuple[float, ...], tuple[str, ...]] = {}


def family(snapshots: list[MetricFamilySnapshot]) -> Metric:
    """One prometheus_client family from every source's snapshot of one metric."""
    metric = snapshots[0].metric
    kind = metric.type
    unit = metric.unit if metric.family.endswith("_" + metric.unit) else ""
    family = Metric(metric.family, metric.help, kind.value, unit)
    series = _merged(snapshots)
    unlabelled = all(not names for names, _ in series)
    if unlabelled and kind is not MetricType.GAUGE and not any(s for _, s in series):
        series = [((), {(): _zero(metric)})]
    if kind is MetricType.HISTOGRAM:
        _add_histograms(family, metric.name, series)
    else:
        sample_name = metric.name
        out = family.samples
        for names, samples in series:
            for key, value in samples.items():
                # Counters and gauges hold floats; only histograms hold a HistogramValue.
                out.append(
                    Sample(sample_name, dict(zip(names, key, strict=True)), cast(float, value))
                )
    return family


def _zero(metric: MetricDef) -> SampleValue:
    if metric.type is MetricType.HISTOGRAM:
        return HistogramValue(metric.buckets, (0,) * (len(metric.buckets) + 1), 0.0)
    return 0.0


def _merged(snapshots: list[MetricFamilySnapshot]) -> list[_Series]:
    """One mapping per label-name tuple; equal series of several sources combined."""
    if len(snapshots) == 1:
        return [(snapshots[0].label_names, snapshots[0].samples)]
    kind = snapshots[0].metric.type
    merged: dict[tuple[str, ...], dict[LabelValues, Any]] = {}
    for snapshot in snapshots:
        target = merged.setdefault(snapshot.label_names, {})
        for key, value in snapshot.samples.items():
            previous = target.get(key)
            if previous is None:
                target[key] = value
            elif kind is MetricType.COUNTER:
                target[key] = previous + value
            elif kind is MetricType.HISTOGRAM:
                target[key] = _sum_histograms(previous, cast(HistogramValue, value))
    return list(merged.items())


def _sum_histograms(a: HistogramValue, b: HistogramValue) -> HistogramValue:
    if a.bounds != b.bounds:
        raise ValueError(f"cannot merge histograms with buckets {a.bounds} and {b.bounds}")
    counts = tuple(x + y for x, y in zip(a.cumulative_counts, b.cumulative_counts, strict=True))
    exemplars: tuple[Exemplar | None, ...] = ()
    if a.exemplars or b.exemplars:
        ea = a.exemplars or (None,) * len(counts)
        eb = b.exemplars or (None,) * len(counts)
        exemplars = tuple(
            y if x is None or (y is not None and y.timestamp > x.timestamp) else x
            for x, y in zip(ea, eb, strict=True)
        )
    return HistogramValue(a.bounds, counts, a.sum + b.sum, exemplars)


def _le_strings(bounds: tuple[float, ...]) -> tuple[str, ...]:
    les = _le_cache.get(bounds)
    if les is None:
        les = _le_cache[bounds] = (*(floatToGoString(b) for b in bounds), "+Inf")
    return les


def _add_histograms(family: Metric, name: str, series: list[_Series]) -> None:
    out = family.samples
    bucket_name, count_name, sum_name = f"{name}_bucket", f"{name}_count", f"{name}_sum"
    for names, samples in series:
        for key, sample in samples.items():
            value = cast(HistogramValue, sample)
            labels = dict(zip(names, key, strict=True))
            exemplars = value.exemplars
            for i, (le, count) in enumerate(
                zip(_le_strings(value.bounds), value.cumulative_counts, strict=True)
            ):
                exemplar = exemplars[i] if exemplars else None
                out.append(
                    Sample(
                        bucket_name,
                        {**labels, "le": le},
                        count,
                        None,
                        None
                        if exemplar is None
                        else PromExemplar(
                            dict(exemplar.labels), exemplar.value, exemplar.timestamp
                        ),
                    )
                )
            out.append(Sample(count_name, labels, value.count))
            out.append(Sample(sum_name, labels, value.sum))


__all__ = ["family"]
