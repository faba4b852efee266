"""The demo process with its fleet on the real agent-hypervisor runtime.

:class:`RuntimeDemo` is :class:`~meshwatch.demo.runner.Demo` with a
:class:`~meshwatch.demo.runtime_world.RuntimeWorld`: the same instrumentation,
server, audit trails and shutdown, and the runtime's objects instrumented onto
the demo's bus. ``runtime`` exposes them (``runtime.hypervisor``,
``runtime.elevations``, ``runtime.kill_switch``, ``runtime.quarantine``...)
while the demo runs, for whatever acts on the live runtime (remediation).
"""

from __future__ import annotations

from meshwatch.demo.runner import Demo, DemoConfig
from meshwatch.demo.runtime_world import AgentHypervisorRuntime, RuntimeWorld
from meshwatch.demo.scenario import Scenario
from meshwatch.demo.world import Instruments, World


class RuntimeDemo(Demo):
    """The demo on agent-hypervisor: :meth:`start`, :meth:`run`, :meth:`close` as for :class:`Demo`."""

    def __init__(self, config: DemoConfig) -> None:
        super().__init__(config)
        self.runtime: AgentHypervisorRuntime | None = None

    def make_world(self, scenario: Scenario, instruments: Instruments) -> World:
        self.runtime = AgentHypervisorRuntime(instruments.bus)
        return RuntimeWorld(scenario, instruments, self.runtime)

    def close(self, timeout: float | None = None) -> None:
        """Stop the fleet and the server as :class:`Demo` does, then the runtime's loop."""
        if timeout is None:
            super().close()
        else:
            super().close(timeout)
        if self.runtime is not None:
            self.runtime.close()


__all__ = ["RuntimeDemo"]
