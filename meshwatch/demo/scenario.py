"""The demo's two timelines (steady, incident) and its seeded randomness.

``steady`` is a healthy fleet: it shows every metric and span kind, and it
stays under the default thresholds of the three tutorial alerts (breaches are
rare, the one long elevation ends before 300 s, governance p99 is a few
milliseconds). Rare outcomes (a blocked call, a failed task, an escalated
saga...) are rare, except that the FIRST draw of each is forced, so every
series and span kind exists within seconds of start instead of whenever luck
brings it.

``incident`` adds, from the start and for ``Incident.duration`` seconds (the
whole run by default):

* a rogue tool agent attempting ``shell_exec`` ``breach_rate`` times a second
  (default 5/s, ten times ``HighRingBreachRate``'s 0.5/s and above its 2.0/s
  critical tier), each attempt a ring breach and a blocked governance call;
* the publisher stuck elevated. Its RING_ELEVATED event carries a timestamp
  ``elevation_backdate`` seconds in the past (default 330 s): the elevation
  gauge is computed from event timestamps, so it reads more than 300 s from
  the first scrape and keeps growing in real time, and ``ElevationTooLong``
  only has to wait for its own ``for``. The story: the agent was elevated
  before this process started (a restart mid-incident). Pass 0 to watch the
  clock cross 300 s in real time instead;
* a sick policy backend: governance latency from the degraded model
  (p50 ~80 ms, p99 ~1 s, versus 50 ms for ``GovernanceLatencyHigh``).

When the incident ends, the breaches stop, the publisher is demoted and
latency returns to healthy, so each alert resolves once its rate window has
moved past the incident; the demo keeps serving.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

ScenarioName = Literal["steady", "incident"]
SCENARIOS: tuple[ScenarioName, ...] = ("steady", "incident")

# Outcomes forced on their first draw (see Dice.chance).
FORCED_FIRST = frozenset(
    {
        "blocked",
        "rate_limited",
        "tool_error",
        "task_failure",
        "conflict",
        "conflict_failed",
        "step_failure",
        "step_in_doubt",
        "elevation_expires",
        "elevation_denied",
    }
)


# Bounds of the knobs: far past anything useful, short of what would stall the
# scheduler (a breach rate it cannot keep up with) or overflow a datetime.
MAX_BREACH_RATE = 1_000.0
MAX_BACKDATE = 7 * 86_400.0
MAX_SECONDS = 365 * 86_400.0


@dataclass(frozen=True)
class Incident:
    """What goes wrong in the incident scenario, and for how long."""

    duration: float | None = None
    breach_rate: float = 5.0
    elevation_backdate: float = 330.0

    def __post_init__(self) -> None:
        if self.duration is not None and not 0 < self.duration <= MAX_SECONDS:
            raise ValueError(
                f"incident duration must be positive seconds, at most {MAX_SECONDS:g},"
                f" got {self.duration}"
            )
        if not 0 < self.breach_rate <= MAX_BREACH_RATE:
            raise ValueError(
                f"breach rate must be positive, at most {MAX_BREACH_RATE:g} per second,"
                f" got {self.breach_rate}"
            )
        if not 0 <= self.elevation_backdate <= MAX_BACKDATE:
            raise ValueError(
                f"elevation backdate must be 0 to {MAX_BACKDATE:g} seconds,"
                f" got {self.elevation_backdate}"
            )

    def active(self, now: float) -> bool:
        """Whether the incident is under way at virtual time ``now``."""
        return self.duration is None or now < self.duration


@dataclass(frozen=True)
class Probabilities:
    """How often the rare things happen in steady state (each well under its alert)."""

    blocked: float = 0.04
    rate_limited: float = 0.02
    tool_error: float = 0.04
    task_failure: float = 0.03
    conflict: float = 0.15
    conflict_failed: float = 0.25
    step_failure: float = 0.03
    # A step whose outcome is unknown (timed out) cannot be compensated safely:
    # the saga escalates to a human, which pages. Rare, as it should be.
    step_in_doubt: float = 0.001
    elevation_expires: float = 0.4
    # A tool agent asks for the private corpus and is refused (too little trust).
    elevation_denied: float = 0.1


@dataclass(frozen=True)
class Scenario:
    """Rates of the steady workload, plus the incident when there is one.

    Intervals are mean seconds between occurrences (exponentially distributed).
    """

    seed: int = 42
    incident: Incident | None = None
    request_interval: float = 4.0
    saga_interval: float = 20.0
    short_elevation_interval: float = 30.0
    stray_breach_interval: float = 90.0
    legacy_interval: float = 15.0
    trust_interval: float = 5.0
    bulk_import_interval: float = 600.0
    # The publisher's routine elevation: long enough to watch on a dashboard,
    # shorter than ElevationTooLong's 300 s default, so steady stays quiet.
    long_elevation: float = 240.0
    long_elevation_rest: float = 30.0
    odds: Probabilities = field(default_factory=Probabilities)

    @property
    def name(self) -> ScenarioName:
        return "steady" if self.incident is None else "incident"

    def incident_active(self, now: float) -> bool:
        """Whether incident conditions hold at virtual time ``now``."""
        return self.incident is not None and self.incident.active(now)


def build_scenario(
    name: ScenarioName,
    *,
    seed: int = 42,
    incident_duration: float | None = None,
    breach_rate: float | None = None,
    elevation_backdate: float | None = None,
) -> Scenario:
    """The named scenario; the incident knobs are only valid for ``incident``."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    knobs = {
        "duration": incident_duration,
        "breach_rate": breach_rate,
        "elevation_backdate": elevation_backdate,
    }
    given = {k: v for k, v in knobs.items() if v is not None}
    if name == "steady":
        if given:
            raise ValueError(f"not for the steady scenario: {', '.join(sorted(given))}")
        return Scenario(seed=seed)
    return Scenario(seed=seed, incident=Incident(**given))


class Dice:
    """The demo's randomness: independent seeded streams, first rare outcomes forced.

    Each agent process draws from its own stream (split off the root stream
    when the process starts), so adding a draw in one agent does not reshuffle
    every other agent's choices. The process-wide ``random`` module is never
    touched: causal trace ids and event ids stay unique across runs.
    """

    def __init__(self, seed: int) -> None:
        self._root = random.Random(seed)
        self._pending = set(FORCED_FIRST)

    def stream(self) -> random.Random:
        """A new independent stream, determined by the seed and the order of calls."""
        return random.Random(self._root.getrandbits(64))

    def chance(self, rng: random.Random, kind: str, probability: float) -> bool:
        """True with ``probability``; always True the first time ``kind`` is asked."""
        if kind in self._pending:
            self._pending.discard(kind)
            return True
        return rng.random() < probability
