"""The events each SLI kind counts, as fleet-wide PromQL rates over a window.

Every SLI is bad events out of all events, both summed over every label, so an
SLO is about the service the fleet gives, not one agent. Each side is filled
with ``or vector(0)``: a counter exists only once it was incremented, so a
fleet that never failed a task has no failure series, and without the fill
its error ratio would be missing (read as "no data") instead of 0.

The governance latency SLI reads the histogram's cumulative bucket at the
target: evaluations counted in ``le="<target>"`` finished within it, and the
rest of ``_count`` did not. That is exact only at a bucket bound, so a target
between bounds is a settings error naming the bounds there are.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.utils import floatToGoString

from meshwatch.alerts.promql import sum_rate
from meshwatch.instrumentation.catalogue import (
    GOVERNANCE_LATENCY,
    LLM_CALL_ERRORS,
    LLM_CALLS,
    SAGAS,
    TASKS_COMPLETED,
    TASKS_FAILED,
)
from meshwatch.settings import SettingsError, Slo, SloSettings


@dataclass(frozen=True)
class SliEvents:
    """PromQL for the bad and the total events per second of one SLO, over ``window``."""

    slo: Slo

    def bad(self, window: str) -> str:
        """Bad events per second, 0 (not absent) when none happened."""
        kind = self.slo.sli
        if kind == "governance_latency":
            within = f'{GOVERNANCE_LATENCY.name}_bucket{{le="{latency_le(self.slo)}"}}'
            all_ = f"{GOVERNANCE_LATENCY.name}_count"
            return _filled(f"{sum_rate((), all_, window)} - {sum_rate((), within, window)}")
        if kind == "task_success":
            return _filled(sum_rate((), TASKS_FAILED.name, window))
        if kind == "llm_success":
            return _filled(sum_rate((), LLM_CALL_ERRORS.name, window))
        return _filled(sum_rate((), f'{SAGAS.name}{{outcome="escalated"}}', window))

    def total(self, window: str) -> str:
        """All events per second, 0 (not absent) when none happened."""
        kind = self.slo.sli
        if kind == "governance_latency":
            return _filled(sum_rate((), f"{GOVERNANCE_LATENCY.name}_count", window))
        if kind == "task_success":
            return (
                f"{_filled(sum_rate((), TASKS_COMPLETED.name, window))}"
                f" + {_filled(sum_rate((), TASKS_FAILED.name, window))}"
            )
        if kind == "llm_success":
            return _filled(sum_rate((), LLM_CALLS.name, window))
        return _filled(sum_rate((), SAGAS.name, window))

    def what(self) -> str:
        """The good events, in words, for descriptions and panels."""
        kind = self.slo.sli
        if kind == "governance_latency":
            return f"governance evaluations within {self.slo.latency_target:g}s"
        if kind == "task_success":
            return "ended tasks that completed"
        if kind == "llm_success":
            return "LLM calls without error"
        return "ended sagas that did not escalate"


def _filled(expr: str) -> str:
    return f"({expr} or vector(0))"


def latency_le(slo: Slo) -> str:
    """The ``le`` label value of the bucket at the SLO's latency target, as exposed."""
    if slo.latency_target is None:
        raise ValueError(f"SLO {slo.name} has no latency target")
    exposed: str = floatToGoString(slo.latency_target)
    return exposed


def check_targets(settings: SloSettings) -> None:
    """Refuse a latency target that is not one of the histogram's bucket bounds."""
    bounds = GOVERNANCE_LATENCY.buckets
    for index, slo in enumerate(settings.objectives):
        if slo.latency_target is not None and slo.latency_target not in bounds:
            listed = ", ".join(f"{b:g}" for b in bounds)
            raise SettingsError(
                f"slos.objectives[{index}].latency_target",
                f"{slo.latency_target:g}s is not a bucket bound of {GOVERNANCE_LATENCY.name} "
                f"(bounds: {listed})",
            )
