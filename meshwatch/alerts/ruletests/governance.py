"""Cases for the governance alerts: latency (two bucket layouts), forecast, denials, limits, trust."""

from __future__ import annotations

from collections.abc import Mapping

from meshwatch.alerts.catalogue import (
    GOVERNANCE_DENIAL_RATIO_HIGH,
    GOVERNANCE_LATENCY_HIGH,
    GOVERNANCE_LATENCY_PREDICTED_HIGH,
    RATE_LIMIT_SURGE,
    TRUST_SCORE_LOW,
)
from meshwatch.alerts.model import AlertRule
from meshwatch.alerts.recording import GOVERNANCE_LATENCY_P99
from meshwatch.alerts.ruletests.histograms import Layout, bucket_series
from meshwatch.alerts.ruletests.model import (
    AlertCheck,
    Case,
    Series,
    at_minute,
    constant,
    counter,
    fired,
    minutes,
    num,
)
from meshwatch.alerts.ruletests.subjects import AGENTS, TOOLS
from meshwatch.alerts.ruletests.threshold import (
    Signal,
    ThresholdProof,
    Volume,
    eval_minute,
    legible,
    ratio_proof,
    threshold_cases,
)
from meshwatch.instrumentation.catalogue import (
    GOVERNANCE_BLOCKED,
    GOVERNANCE_DECISIONS,
    GOVERNANCE_LATENCY,
    GOVERNANCE_RATE_LIMIT_HITS,
    GOVERNANCE_TRUST_SCORE,
)
from meshwatch.settings import AlertsSettings

P99 = {"quantile": "0.99"}


def _latency(layout: Layout) -> Signal:
    def signal(value: float, at: int, subject: int) -> list[Series]:
        """p99 = ``value``, from evaluations split over two decisions (summed by ``le``)."""
        return [
            *bucket_series(
                GOVERNANCE_LATENCY.name,
                {"decision": "allowed"},
                value,
                0.99,
                at + 2,
                layout=layout,
                per_minute=40,
            ),
            *bucket_series(
                GOVERNANCE_LATENCY.name,
                {"decision": "blocked"},
                value,
                0.99,
                at + 2,
                layout=layout,
                per_minute=20,
            ),
        ]

    return signal


def _denials(value: float, at: int, subject: int, per_second: float) -> list[Series]:
    """``per_second`` decisions each second, ``value`` of them blocking the call."""
    tool = {"tool_name": TOOLS[0]}
    blocked = value * per_second
    return [
        Series(
            GOVERNANCE_DECISIONS.name,
            {"decision": "allowed", **tool},
            counter(per_second - blocked, at + 2),
        ),
        Series(
            GOVERNANCE_DECISIONS.name, {"decision": "blocked", **tool}, counter(blocked, at + 2)
        ),
        Series(GOVERNANCE_BLOCKED.name, tool, counter(blocked, at + 2)),
    ]


def _rate_limits(value: float, at: int, subject: int) -> list[Series]:
    """Rejections of one tool at ``value`` per second, split over two agents (opt-in label)."""
    return [
        Series(
            GOVERNANCE_RATE_LIMIT_HITS.name,
            {"tool_name": TOOLS[subject], "agent_id": a},
            counter(value / 2, at + 2),
        )
        for a in AGENTS
    ]


def _trust(value: float, at: int, subject: int) -> list[Series]:
    return [
        Series(GOVERNANCE_TRUST_SCORE.name, {"agent_id": AGENTS[subject]}, constant(value, at + 2))
    ]


def _latency_cases(s: AlertsSettings, tiers: list[AlertRule]) -> list[Case]:
    cfg = s.governance_latency_high
    proof = ThresholdProof(
        GOVERNANCE_LATENCY_HIGH,
        "the p99 evaluation latency",
        _latency("fine"),
        lambda _: P99,
        warmup=s.rate_window,
        per_subject=False,
    )
    found = threshold_cases(proof, s, tiers)
    at = eval_minute(proof, cfg.for_)
    slow = legible(cfg.threshold * 2 if cfg.threshold > 0 else 0.01, 1)
    coarse = _latency("coarse")
    found.append(
        Case(
            f"fires with a coarser bucket layout when the p99 latency is {slow:.4g}s",
            tuple(coarse(slow, at, 0)),
            (
                AlertCheck(
                    at_minute(at),
                    GOVERNANCE_LATENCY_HIGH.name,
                    tuple(
                        fired(rule, P99, slow)
                        for rule, limit in zip(
                            tiers, (cfg.threshold, cfg.critical_threshold), strict=False
                        )
                        if limit is not None and slow > limit
                    ),
                ),
            ),
        )
    )
    if cfg.threshold > 0:
        fast = legible(cfg.threshold / 2, -1)
        found.append(
            Case(
                f"stays silent with a coarser bucket layout when the p99 latency is {fast:.4g}s",
                tuple(coarse(fast, at, 0)),
                (AlertCheck(at_minute(at), GOVERNANCE_LATENCY_HIGH.name),),
            )
        )
    return found


def _forecast_cases(s: AlertsSettings, rule: AlertRule) -> list[Case]:
    """The recorded p99 climbs linearly; ``predict_linear`` of a line is exact."""
    cfg = s.governance_latency_predicted
    limit = s.governance_latency_high.threshold
    base = limit if limit > 0 else 0.01
    at = minutes(cfg.lookback) + minutes(cfg.for_) + 3
    start = 0.1 * base
    # Steep enough that from the first minute of ``for`` on, the forecast is past the limit.
    slope = 1.5 * (base - start) / ((at - minutes(cfg.for_)) * 60 + cfg.horizon.seconds)
    predicted = start + slope * (at * 60 + cfg.horizon.seconds)
    series = Series(GOVERNANCE_LATENCY_P99.record, P99, f"{num(start)}+{num(slope * 60)}x{at + 2}")
    flat = Series(GOVERNANCE_LATENCY_P99.record, P99, constant(limit / 2, at + 2))
    return [
        Case(
            f"fires when the p99 latency trend reaches {limit:g}s within {cfg.horizon}",
            (series,),
            (AlertCheck(at_minute(at), rule.alert, (fired(rule, P99, predicted),)),),
        ),
        Case(
            f"stays silent when the p99 latency holds steady at {limit / 2:.4g}s",
            (flat,),
            (AlertCheck(at_minute(at), rule.alert),),
        ),
    ]


def cases(s: AlertsSettings, rules: Mapping[str, list[AlertRule]]) -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}
    if GOVERNANCE_LATENCY_HIGH.name in rules:
        out[GOVERNANCE_LATENCY_HIGH.name] = _latency_cases(s, rules[GOVERNANCE_LATENCY_HIGH.name])
    if GOVERNANCE_LATENCY_PREDICTED_HIGH.name in rules:
        out[GOVERNANCE_LATENCY_PREDICTED_HIGH.name] = _forecast_cases(
            s, rules[GOVERNANCE_LATENCY_PREDICTED_HIGH.name][0]
        )
    proofs = (
        ratio_proof(
            GOVERNANCE_DENIAL_RATIO_HIGH,
            "the share of blocked decisions",
            Volume(
                "policy decisions",
                _denials,
                s.rate_window,
                s.governance_denial_ratio.min_events,
            ),
            lambda _: {},
            per_subject=False,
        ),
        ThresholdProof(
            RATE_LIMIT_SURGE,
            "a tool's rate-limit rejections per second",
            _rate_limits,
            lambda i: {"tool_name": TOOLS[i]},
            warmup=s.rate_window,
        ),
        ThresholdProof(
            TRUST_SCORE_LOW,
            "an agent's trust score",
            _trust,
            lambda i: {"agent_id": AGENTS[i]},
        ),
    )
    for proof in proofs:
        if proof.alert.name in rules:
            out[proof.alert.name] = threshold_cases(proof, s, rules[proof.alert.name])
    return out
