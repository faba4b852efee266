"""The cases every threshold alert gets, computed from its settings.

Input values are placed relative to the configured thresholds, so the rendered
tests prove the rules a deployment actually runs: a value between the warning
and critical levels fires the base tier only, a value past the critical level
fires both tiers, a value on the safe side fires nothing. Where a second
subject (another agent, tool) sits on the safe side in the same case, the
case also proves the alert names only the offending one.

A ratio alert also gets two cases around its minimum-volume guard
(``min_events``): at a ratio that would fire, it stays silent with too few
events in the window and fires with enough. Its other cases run at a volume
well past the minimum, so they prove the threshold, not the guard.

A case the settings make impossible is left out rather than faked: a ratio
alert whose threshold is already 1 can never fire, so it has no firing case,
and one with ``min_events`` 0 has no guard to prove.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from meshwatch.alerts.catalogue import AlertDef, Direction
from meshwatch.alerts.model import AlertRule
from meshwatch.alerts.ruletests.model import (
    AlertCheck,
    Case,
    ExpectedAlert,
    Series,
    at_minute,
    fired,
    minutes,
)
from meshwatch.settings import AlertsSettings, Duration, ThresholdAlert

#: Builds the input series that make the alert's expression equal ``value`` for
#: ``subject`` (0 or 1) at minute ``eval_minute``.
Signal = Callable[[float, int, int], Sequence[Series]]
#: A ratio's :data:`Signal` with its denominator's events per second as a fourth argument.
ScaledSignal = Callable[[float, int, int, float], Sequence[Series]]


@dataclass(frozen=True)
class Volume:
    """A ratio alert's denominator: what it counts and how to drive it at a chosen rate.

    ``counted`` names the events for case names ("ended tasks"); ``window``
    and ``min_events`` are the alert's rate window and minimum-volume setting.
    """

    counted: str
    signal: ScaledSignal
    window: Duration
    min_events: int

    def per_second(self, events: float) -> float:
        """The rate at which ``events`` happen over the window."""
        return events / self.window.seconds

    @property
    def plenty(self) -> float:
        """One event a second, or more where the minimum needs it: well past the guard."""
        return max(1.0, self.per_second(3 * self.min_events))

    def at_rate(self, per_second: float) -> Signal:
        """The proof's :data:`Signal` with ``per_second`` events of the denominator."""
        return lambda value, at, subject: self.signal(value, at, subject, per_second)


@dataclass(frozen=True)
class ThresholdProof:
    """How to drive one threshold alert's expression to a chosen value.

    ``measure`` names what the value is, for case names ("the breach rate of
    an agent"). ``warmup`` is how long the expression needs data before it is
    defined (a rate window). ``bound`` is the largest value the measure can
    take (1 for ratios). ``subject_labels`` are the labels the expression
    result carries for a subject; with ``per_subject`` false the measure is
    fleet-wide and there is no second subject. A ratio alert's ``volume`` adds
    the cases of its minimum-volume guard (build it with :func:`ratio_proof`).
    """

    alert: AlertDef
    measure: str
    signal: Signal
    subject_labels: Callable[[int], Mapping[str, str]]
    warmup: Duration | None = None
    bound: float | None = None
    per_subject: bool = True
    volume: Volume | None = None

    @property
    def direction(self) -> Direction:
        return self.alert.direction


def ratio_proof(
    alert: AlertDef,
    measure: str,
    volume: Volume,
    subject_labels: Callable[[int], Mapping[str, str]],
    *,
    per_subject: bool = True,
) -> ThresholdProof:
    """The proof of a ratio alert: bounded by 1, warmed up over the window, at plenty of volume."""
    return ThresholdProof(
        alert,
        measure,
        volume.at_rate(volume.plenty),
        subject_labels,
        warmup=volume.window,
        bound=1.0,
        per_subject=per_subject,
        volume=volume,
    )


def _beyond(level: float, bound: float | None) -> float | None:
    """A value past ``level`` on the high side, or None if the bound leaves no room."""
    if bound is not None:
        return (level + bound) / 2 if level < bound else None
    return level * 2 if level > 0 else 1.0


def legible(value: float, away: int, bound: float | None = None) -> float:
    """``value``, nudged 1% ``away`` (+1 up, -1 down) if it sits on a humanize boundary.

    Prometheus' ``humanize`` switches prefix at powers of 1000 and
    ``humanizeDuration`` truncates to whole seconds, so an input whose exact
    value is ``1`` or ``600`` may come out of PromQL as ``0.9999999999`` and be
    printed ``1000m`` or ``9m 59s``. Off the boundary, the last bit no longer
    changes the text the case expects.
    """
    if value == 0:
        return value
    power = math.log10(abs(value)) / 3
    on_integer = abs(value - round(value)) <= 1e-9 * abs(value)
    if not on_integer and abs(power - round(power)) > 1e-9:
        return value
    nudged = value * (1 + 0.01 * away)
    return value * 0.99 if bound is not None and nudged > bound else nudged


def _legible(value: float | None, away: int, bound: float | None) -> float | None:
    return None if value is None else legible(value, away, bound)


def _values(
    cfg: ThresholdAlert, direction: Direction, bound: float | None
) -> tuple[float | None, float | None, float | None]:
    """(fires the base tier only, fires both tiers, stays silent), None where impossible."""
    t, c = cfg.threshold, cfg.critical_threshold
    if direction == "above":
        base = (t + c) / 2 if c is not None else _beyond(t, bound)
        both = _beyond(c, bound) if c is not None else None
        return base, both, t / 2
    base = (c + t) / 2 if c is not None else (t / 2 if t > 0 else None)
    both = c / 2 if c is not None and c > 0 else None
    safe = _beyond(t, bound) if bound is None or t < bound else None
    return base, both, safe


def eval_minute(proof: ThresholdProof, for_: Duration) -> int:
    """When to evaluate: after the warm-up, the whole ``for`` and a margin of 3 minutes."""
    return (minutes(proof.warmup) if proof.warmup else 0) + minutes(for_) + 3


def threshold_cases(
    proof: ThresholdProof, settings: AlertsSettings, tiers: Sequence[AlertRule]
) -> list[Case]:
    """Firing, two-tier and silent cases for ``proof``'s alert at its configured thresholds."""
    cfg = proof.alert.threshold(settings)
    base, both, safe = _values(cfg, proof.direction, proof.bound)
    up = 1 if proof.direction == "above" else -1
    base = _legible(base, up, proof.bound)
    both = _legible(both, up, proof.bound)
    safe = _legible(safe, -up, proof.bound)
    at = eval_minute(proof, cfg.for_)
    when = at_minute(at)
    side = proof.direction
    cases = []

    def inputs(value: float) -> list[Series]:
        series = list(proof.signal(value, at, 0))
        if proof.per_subject and safe is not None:
            series.extend(proof.signal(safe, at, 1))
        return series

    def alerts(value: float, rules: Sequence[AlertRule]) -> tuple[ExpectedAlert, ...]:
        return tuple(fired(rule, proof.subject_labels(0), value) for rule in rules)

    others = " and names only that one" if proof.per_subject and safe is not None else ""
    if base is not None:
        severity = tiers[0].severity
        cases.append(
            Case(
                f"fires {severity} when {proof.measure} is {base:.4g}, {side} "
                f"{cfg.threshold:g}, for {cfg.for_}{others}",
                tuple(inputs(base)),
                (AlertCheck(when, proof.alert.name, alerts(base, tiers[:1])),),
            )
        )
    if both is not None and len(tiers) > 1:
        cases.append(
            Case(
                f"fires {tiers[0].severity} and critical when {proof.measure} is {both:.4g}, "
                f"{side} the critical level {cfg.critical_threshold:g}",
                tuple(inputs(both)),
                (AlertCheck(when, proof.alert.name, alerts(both, tiers)),),
            )
        )
    if safe is not None:
        cases.append(
            Case(
                f"stays silent when {proof.measure} is {safe:.4g}, not {side} {cfg.threshold:g}",
                tuple(proof.signal(safe, at, 0)),
                (AlertCheck(when, proof.alert.name),),
            )
        )
    if proof.volume is not None:
        worst, crossed = (both, tiers) if both is not None and len(tiers) > 1 else (base, tiers[:1])
        if worst is not None:
            cases.extend(_volume_cases(proof, proof.volume, worst, crossed, safe, at))
    return cases


def _volume_cases(
    proof: ThresholdProof,
    volume: Volume,
    value: float,
    tiers: Sequence[AlertRule],
    safe: float | None,
    at: int,
) -> list[Case]:
    """At a ratio ``value`` that fires ``tiers``: silent below ``min_events``, firing past it.

    Each case has a second subject (for a per-subject ratio) on the other side
    of the guard, so a guard that pooled volume across subjects (``on()``
    instead of ``on(agent_did)``) fails: in the silent case the other subject
    has plenty of events at a safe ratio; in the firing case it has the same
    bad ratio over too few events, and must not be named.
    """
    if volume.min_events <= 0:
        return []
    few, enough = volume.min_events / 2, volume.min_events * 3 / 2
    when = at_minute(at)
    below, past = volume.at_rate(volume.per_second(few)), volume.at_rate(volume.per_second(enough))
    other = proof.per_subject
    quiet = list(below(value, at, 0))
    if other and safe is not None:
        quiet.extend(volume.at_rate(volume.plenty)(safe, at, 1))
    loud = [*past(value, at, 0), *(below(value, at, 1) if other else ())]
    measured = f"{proof.measure} is {value:.4g}"
    minimum = f"the minimum {volume.min_events}"
    only = f", and not for one with only {few:g}" if other else ""
    labels = proof.subject_labels(0)
    severities = " and ".join(str(rule.severity) for rule in tiers)
    return [
        Case(
            f"stays silent when {measured} but only {few:g} {volume.counted} in "
            f"{volume.window}, below {minimum}",
            tuple(quiet),
            (AlertCheck(when, proof.alert.name),),
        ),
        Case(
            f"fires {severities} when {measured} over {enough:g} {volume.counted} in "
            f"{volume.window}, past {minimum}{only}",
            tuple(loud),
            (AlertCheck(when, proof.alert.name, tuple(fired(r, labels, value) for r in tiers)),),
        ),
    ]
