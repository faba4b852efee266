"""promtool unit tests as typed values: input series, named cases, expected alerts and samples.

A :class:`Case` is one promtool test group, named for what it proves ("fires
when ...", "stays silent when ..."). :func:`fired` builds an expected alert
from the rule itself, so the expected labels include the severity the
settings gave it and the annotations are the rule's templates expanded (see
:mod:`meshwatch.alerts.ruletests.templates`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshwatch.alerts.model import AlertRule, label_matchers
from meshwatch.alerts.promql import duration
from meshwatch.alerts.ruletests.templates import expand
from meshwatch.settings import Duration

#: Sample spacing of every input series and the rule evaluation interval.
STEP = Duration("1m")


def num(value: float) -> str:
    """A float as promtool reads it back exactly: ``60`` not ``60.0``, full precision otherwise."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def counter(per_second: float, minutes: int, start: float = 0.0) -> str:
    """Expanding notation for a counter growing at ``per_second`` for ``minutes`` samples."""
    return f"{num(start)}+{num(per_second * 60)}x{minutes}"


def constant(value: float, minutes: int) -> str:
    """Expanding notation for a gauge that holds ``value``."""
    return f"{num(value)}+0x{minutes}"


def explicit(values: Iterable[float]) -> str:
    """Space-separated sample values, for shapes the expanding notation cannot say."""
    return " ".join(num(v) for v in values)


@dataclass(frozen=True)
class Series:
    """One input series: a metric with labels and its samples, one per :data:`STEP`."""

    metric: str
    labels: Mapping[str, str]
    values: str

    def to_dict(self) -> dict[str, str]:
        return {"series": self.metric + label_matchers(self.labels), "values": self.values}


@dataclass(frozen=True)
class ExpectedAlert:
    labels: Mapping[str, str]
    annotations: Mapping[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"exp_labels": dict(self.labels), "exp_annotations": dict(self.annotations)}


def fired(rule: AlertRule, labels: Mapping[str, str], value: float) -> ExpectedAlert:
    """The alert ``rule`` raises for an expression result with ``labels`` and ``value``."""
    if rule.severity is None:
        raise ValueError(f"{rule.alert}: expected alerts need the conventions pass applied")
    annotations = {k: expand(v, labels, value) for k, v in rule.all_annotations.items()}
    return ExpectedAlert({**labels, **rule.labels, "severity": rule.severity}, annotations)


@dataclass(frozen=True)
class AlertCheck:
    """At ``at``, exactly ``expect`` alerts named ``alertname`` fire (none: it stays silent)."""

    at: Duration
    alertname: str
    expect: tuple[ExpectedAlert, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "alertname": self.alertname,
            "eval_time": str(self.at),
            "exp_alerts": [a.to_dict() for a in self.expect],
        }


@dataclass(frozen=True)
class Sample:
    labels: Mapping[str, str]
    value: float
    metric: str = ""


def _sample_labels(metric: str, labels: Mapping[str, str]) -> str:
    return (metric + label_matchers(labels)) or "{}"


@dataclass(frozen=True)
class ExprCheck:
    """At ``at``, ``expr`` returns exactly ``expect``.

    promtool compares values exactly, so ``round_to`` wraps the expression in
    ``round(expr, round_to)`` where the true result is not a short binary
    fraction (a quantile interpolated inside a bucket).
    """

    expr: str
    at: Duration
    expect: tuple[Sample, ...] = ()
    round_to: float | None = None

    def to_dict(self) -> dict[str, Any]:
        rounded = self.round_to is not None
        expr = f"round({self.expr}, {num(self.round_to or 0)})" if rounded else self.expr
        return {
            "eval_time": str(self.at),
            "exp_samples": [
                # round() drops the metric name, as every function does.
                {"labels": _sample_labels("" if rounded else s.metric, s.labels), "value": s.value}
                for s in self.expect
            ],
            "expr": expr,
        }


@dataclass(frozen=True)
class Case:
    """One promtool test group: a name saying what it proves, inputs and checks."""

    name: str
    series: tuple[Series, ...]
    checks: tuple[AlertCheck | ExprCheck, ...]

    def __post_init__(self) -> None:
        if not self.name.startswith(("fires ", "stays silent ", "records ", "resolves ")):
            raise ValueError(f"case name must say what it proves: {self.name!r}")
        if not self.checks:
            raise ValueError(f"case {self.name!r} checks nothing")

    @property
    def fires(self) -> bool:
        """True if some check expects an alert to fire."""
        return any(isinstance(c, AlertCheck) and c.expect for c in self.checks)

    @property
    def silent(self) -> bool:
        """True if some check expects no alert."""
        return any(isinstance(c, AlertCheck) and not c.expect for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "interval": str(STEP),
            "input_series": [s.to_dict() for s in self.series],
        }
        alerts = [c.to_dict() for c in self.checks if isinstance(c, AlertCheck)]
        exprs = [c.to_dict() for c in self.checks if isinstance(c, ExprCheck)]
        if alerts:
            out["alert_rule_test"] = alerts
        if exprs:
            out["promql_expr_test"] = exprs
        return out


@dataclass(frozen=True)
class UnitTestFile:
    """A promtool test file: the rule files it loads, the order of their groups, and its cases.

    Without ``group_eval_order`` promtool evaluates the groups of one step in
    the order of a Go map, so an alert reads either this step's recorded
    series or the previous step's, from run to run. Listing every group,
    recording groups first, makes an alert read what was recorded at the same
    minute, which the SLO cases' expected values depend on.
    """

    rule_files: tuple[str, ...]
    cases: tuple[Case, ...] = field(default=())
    group_order: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "evaluation_interval": str(STEP),
            "rule_files": list(self.rule_files),
            "tests": [case.to_dict() for case in self.cases],
        }
        if self.group_order:
            out["group_eval_order"] = list(self.group_order)
        return out


def minutes(d: Duration | float) -> int:
    """Whole minutes covering ``d`` (a duration or seconds), rounded up."""
    seconds = d.seconds if isinstance(d, Duration) else float(d)
    return int(-(-seconds // 60))


def at_minute(m: int) -> Duration:
    """The evaluation time ``m`` minutes into a case."""
    return duration(m * 60)
