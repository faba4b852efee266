"""Dashboard settings: time range, refresh and naming of the generated dashboards."""

from __future__ import annotations

from dataclasses import dataclass

from meshwatch.settings.loader import Duration, check


@dataclass(frozen=True)
class DashboardSettings:
    """Knobs shared by every generated dashboard; thresholds come from the alert settings."""

    uid_prefix: str = "meshwatch"
    title_prefix: str = "meshwatch"
    refresh: Duration = Duration("30s")
    time_from: str = "now-1h"
    timezone: str = "utc"
    # Mirror of GovernanceMetrics(per_agent_labels=...): governance decision and
    # latency series carry ``agent_id`` only when the agents switch it on. With
    # it off, filtering those panels by $agent would blank them for any single
    # agent, so they show the fleet (and say so) instead.
    governance_per_agent_labels: bool = False

    def __post_init__(self) -> None:
        check(
            bool(self.uid_prefix)
            and len(self.uid_prefix) <= 20
            and all(c.isalnum() or c in "-_" for c in self.uid_prefix),
            "uid_prefix",
            "must be 1-20 characters of letters, digits, '-' or '_' (Grafana uid rules)",
        )
        check(self.time_from.startswith("now-"), "time_from", "must look like now-1h")
