"""Agent governance overview: the tutorial's dashboard (section 10), made to work.

Questions it answers:

* Which ring transitions (assignments, elevations, demotions, expirations) are
  happening, and how fast? Is any agent breaching its ring boundary, at a rate
  the ``HighRingBreachRate`` alert would fire on?
* Which ring is each agent in right now, which agents run elevated, and for how
  long (against the ``ElevationTooLong`` limit)? Which elevation requests did
  the runtime refuse, and why (an agent probing for privileges it lacks)?
* How many tool calls does policy allow, block and rate-limit; is the denial
  ratio or the rate-limit hit rate at an alerting level?
* Which agents' trust scores are near or under the ``TrustScoreLow`` floor?
* How long does policy evaluation take (p50/p95/p99, against the
  ``GovernanceLatencyHigh`` threshold), and which trace is behind a slow one?
  The p99 query asks for exemplars, so a dot on the graph opens the trace.
* What did a saga do, step by step (trace search and span timeline from Tempo)?
* Which alerts are firing now?

Hypervisor (ring) metrics label agents ``agent_did``; governance metrics label
them ``agent_id``. Trust scores always carry ``agent_id``; decision and latency
series carry it only when agents enable ``GovernanceMetrics(per_agent_labels=True)``
(off by default, because per-agent histograms are expensive). The setting
``dashboards.governance_per_agent_labels`` mirrors that switch: when it is off
the decision and latency panels show the whole fleet and say so, rather than
filtering on a label that does not exist and going blank for a single agent.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from meshwatch.alerts.catalogue import (
    ELEVATION_TOO_LONG,
    GOVERNANCE_DENIAL_RATIO_HIGH,
    GOVERNANCE_LATENCY_HIGH,
    GOVERNANCE_LATENCY_PREDICTED_HIGH,
    HIGH_RING_BREACH_RATE,
    RATE_LIMIT_SURGE,
    TRUST_SCORE_LOW,
)
from meshwatch.alerts.recording import (
    GOVERNANCE_DENIAL_RATIO,
    GOVERNANCE_RATE_LIMIT_RATE,
    RING_BREACH_RATE,
)
from meshwatch.dashboards.common import (
    AGENT_DID,
    AGENT_ID,
    COUNT,
    OPS,
    RATE,
    RATIO,
    REQPS,
    SECONDS,
    Grid,
    agent_variable,
    alert_marks,
    bargauge,
    dashboard,
    datasource_variable,
    gauge,
    piechart,
    prom,
    quantile,
    recorded,
    runbooks,
    sel,
    stat,
    table,
    tempo_variable,
    timeseries,
)
from meshwatch.dashboards.panels import ThresholdStep, UnifiedAlertList, ValueText
from meshwatch.dashboards.tracing import add_saga_traces, trace_id_variable
from meshwatch.instrumentation.catalogue import (
    GOVERNANCE_DECISIONS,
    GOVERNANCE_LATENCY,
    GOVERNANCE_TRUST_SCORE,
    RING_CURRENT,
    RING_ELEVATED,
    RING_ELEVATION_DURATION,
    RING_ELEVATIONS_DENIED,
    RING_TRANSITIONS,
)
from meshwatch.settings import Settings

SLUG = "governance"
# Ring 0 is the most privileged: colour the ring table from red (root) to green (sandbox).
_RING_STEPS = [
    ThresholdStep("red"),
    ThresholdStep("orange", 1),
    ThresholdStep("yellow", 2),
    ThresholdStep("green", 3),
]
_RING_NAMES = [ValueText("0", "0 (root)", index=0), ValueText("3", "3 (sandbox)", index=1)]


def _ring_panels(settings: Settings, grid: Grid) -> None:
    grid.row("Ring enforcement")
    grid.add(
        timeseries(
            "Ring transitions by type",
            "Ring assignments, elevations, demotions and expirations per second.",
            [
                prom(
                    f"sum by (event_type) (rate({sel(RING_TRANSITIONS.name, AGENT_DID)}[{RATE}]))",
                    "{{event_type}}",
                )
            ],
            unit=OPS,
            stack=True,
        ),
        w=10,
        h=8,
    )
    grid.add(
        stat(
            "Ring breach rate (worst agent)",
            "Capability-boundary violations per second (5m rate, as the alert computes it) "
            f"of the agent breaching most. Orange/red where {HIGH_RING_BREACH_RATE.name} fires.",
            [
                prom(
                    f"max({recorded(RING_BREACH_RATE, AGENT_DID)}) or vector(0)",
                    "breaches/s",
                )
            ],
            unit=OPS,
            **alert_marks(settings, HIGH_RING_BREACH_RATE),
        ),
        w=6,
        h=8,
    )
    grid.add(
        table(
            "Current ring per agent",
            "The ring each agent runs in now (0 = root, most privileged; 3 = sandbox).",
            [prom(f"max by (agent_did) ({sel(RING_CURRENT.name, AGENT_DID)})", table=True)],
            unit=COUNT,
            steps=_RING_STEPS,
            mappings=_RING_NAMES,
            rename={"agent_did": "Agent", "Value": "Ring"},
            sort_by="Ring",
            sort_desc=False,
        ),
        w=8,
        h=8,
    )


def _elevation_and_policy_panels(settings: Settings, grid: Grid) -> None:
    matchers, fleet_note = _governance_agent_filter(settings)
    elevated = f"max by (agent_did) ({RING_ELEVATED.name}) == 1"
    grid.row("Elevation, policy decisions and trust")
    grid.add(
        bargauge(
            "Elevated agents: time elevated",
            "Agents running above their assigned ring now, and for how long. "
            f"A bar turns orange where {ELEVATION_TOO_LONG.name} fires.",
            [
                prom(
                    f"max by (agent_did) ({sel(RING_ELEVATION_DURATION.name, AGENT_DID)})"
                    f" and on (agent_did) ({elevated})",
                    "{{agent_did}}",
                    instant=True,
                )
            ],
            unit=SECONDS,
            **alert_marks(settings, ELEVATION_TOO_LONG),
        ),
        w=6,
        h=8,
    )
    grid.add(
        bargauge(
            "Elevations denied, by reason",
            "Ring elevation requests the runtime refused over the dashboard's time range, by "
            "reason (insufficient_trust, duplicate_elevation, ...). A rise is an agent asking "
            "for privileges its trust does not earn.",
            [
                prom(
                    f"sum by (reason) (increase({sel(RING_ELEVATIONS_DENIED.name, AGENT_DID)}"
                    "[$__range]))",
                    "{{reason}}",
                    instant=True,
                )
            ],
            unit=COUNT,
        ),
        w=6,
        h=8,
    )
    grid.add(
        piechart(
            "Policy decisions: allowed vs blocked",
            "Governance decisions over the dashboard's time range, by outcome "
            "(rate-limited calls are blocked by the rate limiter, not by a rule)." + fleet_note,
            [
                prom(
                    f"sum by (decision) (increase({sel(GOVERNANCE_DECISIONS.name, *matchers)}[$__range]))",
                    "{{decision}}",
                    instant=True,
                )
            ],
            unit=COUNT,
            links=runbooks(settings, GOVERNANCE_DENIAL_RATIO_HIGH),
        ),
        w=6,
        h=8,
    )
    grid.add(
        gauge(
            "Trust scores",
            f"Current trust score per agent (0-1000). Red below the {TRUST_SCORE_LOW.name} floor.",
            [
                prom(
                    f"min by (agent_id) ({sel(GOVERNANCE_TRUST_SCORE.name, AGENT_ID)})",
                    "{{agent_id}}",
                    instant=True,
                )
            ],
            unit=COUNT,
            min_value=0,
            max_value=1000,
            **alert_marks(settings, TRUST_SCORE_LOW),
        ),
        w=6,
        h=8,
    )


def _governance_agent_filter(settings: Settings) -> tuple[tuple[str, ...], str]:
    """Matchers that narrow decision/latency series to ``$agent``, and a note for panels.

    Empty (with a note saying the panel covers every agent) unless the agents
    emit the per-agent ``agent_id`` label on those series.
    """
    if settings.dashboards.governance_per_agent_labels:
        return (AGENT_ID,), ""
    return (), (
        " All agents: $agent does not apply, because agents emit these series without "
        "agent_id unless per_agent_labels is on (then set "
        "dashboards.governance_per_agent_labels)."
    )


def _evaluation_panels(settings: Settings, grid: Grid) -> None:
    matchers, fleet_note = _governance_agent_filter(settings)
    bucket = sel(GOVERNANCE_LATENCY.name + "_bucket", *matchers)
    grid.row("Policy evaluation")
    grid.add(
        timeseries(
            "Governance evaluation latency",
            "p50, p95 and p99 of policy evaluation time across all tools. The dashed line "
            f"is the {GOVERNANCE_LATENCY_HIGH.name} threshold (on p99); exemplar dots open the trace "
            "of a slow evaluation in Tempo." + fleet_note,
            [
                prom(quantile(0.5, bucket), "p50"),
                prom(quantile(0.95, bucket), "p95"),
                prom(quantile(0.99, bucket), "p99", exemplar=True),
            ],
            unit=SECONDS,
            **alert_marks(settings, GOVERNANCE_LATENCY_HIGH, GOVERNANCE_LATENCY_PREDICTED_HIGH),
        ),
        w=12,
        h=9,
    )
    grid.add(
        timeseries(
            "Rate-limit hits",
            "Tool calls rejected by the rate limiter per second (5m rate), by tool, all agents. "
            f"The dashed line is the {RATE_LIMIT_SURGE.name} threshold.",
            [prom(recorded(GOVERNANCE_RATE_LIMIT_RATE), "{{tool_name}}")],
            unit=REQPS,
            **alert_marks(settings, RATE_LIMIT_SURGE),
        ),
        w=6,
        h=9,
    )
    grid.add(
        stat(
            "Denial ratio",
            "Share of governance decisions that blocked the call (5m rate, all agents). "
            f"Orange where {GOVERNANCE_DENIAL_RATIO_HIGH.name} fires.",
            [prom(recorded(GOVERNANCE_DENIAL_RATIO), "denied")],
            unit=RATIO,
            **alert_marks(settings, GOVERNANCE_DENIAL_RATIO_HIGH),
        ),
        w=6,
        h=9,
    )


def build(settings: Settings) -> Dashboard:
    """The agent governance overview dashboard."""
    grid = Grid()
    _ring_panels(settings, grid)
    _elevation_and_policy_panels(settings, grid)
    _evaluation_panels(settings, grid)
    grid.row("Sagas")
    add_saga_traces(grid)
    grid.row("Alerts")
    grid.add(
        UnifiedAlertList(
            title="Firing alerts",
            description="Alerts firing or pending now, most severe first, from every rule source.",
            maxItems=30,
        ),
        w=24,
        h=8,
    )
    return dashboard(
        settings,
        slug=SLUG,
        title="Agent governance",
        description=(__doc__ or "").strip().splitlines()[0],
        tags=["governance", "rings", "sagas"],
        grid=grid,
        variables=[
            datasource_variable(),
            tempo_variable(),
            agent_variable(RING_CURRENT),
            trace_id_variable(),
        ],
    )
