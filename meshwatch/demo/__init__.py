"""``meshwatch demo``: a simulated multi-agent fleet that drives the real instrumentation.

* :mod:`~meshwatch.demo.sim`: the deterministic discrete-event scheduler;
* :mod:`~meshwatch.demo.scenario`: the steady and incident timelines, the seeded dice;
* :mod:`~meshwatch.demo.latency`: governance latency as policy engines show it;
* :mod:`~meshwatch.demo.world`: the fleet's state and its one door to the instrumentation;
* :mod:`~meshwatch.demo.agents`: what each agent does;
* :mod:`~meshwatch.demo.runner`: the process: wiring, real-time loop, clean stop;
* :mod:`~meshwatch.demo.command_line`: its flags, and the argv the stack runs it with.

This package imports none of them: the stack, the Kubernetes target and the
commands import ``meshwatch.demo.command_line`` to build the demo's argv, and
must not load the runner (and prometheus_client and OpenTelemetry with it) for
that. Import what you need from its module (``meshwatch.demo.runner.Demo``).
"""
