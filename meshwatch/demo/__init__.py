"""``meshwatch demo``: a simulated multi-agent fleet that drives the real instrumentation.

* :mod:`~meshwatch.demo.sim`: the deterministic discrete-event scheduler;
* :mod:`~meshwatch.demo.scenario`: the steady and incident timelines, the seeded dice;
* :mod:`~meshwatch.demo.latency`: governance latency as policy engines show it;
* :mod:`~meshwatch.demo.world`: the fleet's state and its one door to the instrumentation;
* :mod:`~meshwatch.demo.agents`: what each agent does;
* :mod:`~meshwatch.demo.runner`: the process: wiring, real-time loop, clean stop.
"""

from meshwatch.demo.runner import Demo, DemoConfig
from meshwatch.demo.scenario import SCENARIOS, Incident, Scenario, build_scenario

__all__ = ["SCENARIOS", "Demo", "DemoConfig", "Incident", "Scenario", "build_scenario"]
