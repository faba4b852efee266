"""meshwatch.integrations: make third-party agent runtimes observable without emit calls.

Each integration lives in its own subpackage and needs its own optional extra
(``pip install 'meshwatch[agent-hypervisor]'``); importing this package needs
none of them. An integration hooks the runtime at narrow, stable points and
turns its state changes into :class:`~meshwatch.instrumentation.events.HypervisorEvent`
values on a meshwatch bus, so the standard collectors see them.
"""
