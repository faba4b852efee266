"""Starting, stopping and checking the generated stack: compose where Docker runs, else native.

* :class:`NativeStack`: Prometheus, Alertmanager and the demo as host
  processes (process groups, pid files, readiness polling, guaranteed cleanup).
* :class:`ComposeStack`: the generated docker-compose.yml as one compose project.
* :func:`docker_available`: whether a Docker engine answers, within a bound.

Both run from a :class:`Workdir` (generated files, logs, data, pid files) and
raise :class:`StackError` with a message that says what to do.
"""

from meshwatch.stack.runner.compose import ComposeStack, docker_available
from meshwatch.stack.runner.health import ComponentStatus
from meshwatch.stack.runner.native import NATIVE_COMPONENTS, NativeStack
from meshwatch.stack.runner.state import ProcessRecord
from meshwatch.stack.runner.workdir import StackError, Workdir

__all__ = [
    "NATIVE_COMPONENTS",
    "ComponentStatus",
    "ComposeStack",
    "NativeStack",
    "ProcessRecord",
    "StackError",
    "Workdir",
    "docker_available",
]
