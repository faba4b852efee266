"""The unit tier's rule, enforced: no process spawned, no network socket bound or connected.

A unit test exercises one module inside the test's own process. Starting a
process or using an IP socket makes a test depend on the scheduler, the
kernel's port table and the machine's load; those tests belong to
``tests/integration`` (servers, child interpreters, anything that listens or
connects) or ``tests/rules`` (short runs of the real Prometheus tools over
generated files). docs/architecture.md ("Test tiers") states the rule.

What counts, and how it is caught:

- a process: ``_posixsubprocess.fork_exec`` (which every ``subprocess.Popen``
  and multiprocessing's spawn/forkserver go through, ``subprocess``'s own alias too), ``os.fork``,
  ``os.forkpty``, ``os.posix_spawn``/``posix_spawnp`` and ``os.system``;
- the network: ``bind``, ``listen``, ``connect``, ``connect_ex`` and ``sendto``
  on an ``AF_INET``/``AF_INET6`` socket. Unix-domain sockets and
  ``socket.socketpair`` stay allowed: they are in-process plumbing (asyncio's
  self-pipe uses one), not ports.

Each attempt raises :class:`UnitTierViolation` (not an ``OSError``, so code
that tolerates network errors does not quietly absorb it) *and* is recorded,
so a test still fails when the code under test catches every exception, as an
exporter running in a background thread does.
"""

from __future__ import annotations

import _posixsubprocess
import os
import socket
import subprocess
import threading
from collections.abc import Callable
from typing import Any

import pytest

WHERE_INSTEAD = (
    "unit tests run in-process only: move this test to tests/integration (servers, child "
    "processes, sockets) or tests/rules (promtool/amtool over generated files); "
    "see 'Test tiers' in docs/architecture.md"
)

_NETWORK_METHODS = ("bind", "listen", "connect", "connect_ex", "sendto")
_IP_FAMILIES = (socket.AF_INET, socket.AF_INET6)


class UnitTierViolation(AssertionError):
    """A unit test tried to start a process or use an IP socket."""


class Guard:
    """Patches the process and socket entry points while a unit test's phase runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._violations: list[str] = []
        self._saved: list[tuple[object, str, object]] = []

    def install(self) -> None:
        """Replace each entry point with one that refuses; :meth:`uninstall` restores them."""
        if self._saved:
            raise RuntimeError("the unit-tier guard is already installed")
        self.take()
        for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system"):
            if hasattr(os, name):
                self._patch(os, name, self._refuse_process(f"os.{name}"))
        # subprocess holds its own reference (``from _posixsubprocess import fork_exec``).
        self._patch(_posixsubprocess, "fork_exec", self._refuse_fork_exec())
        self._patch(subprocess, "_fork_exec", self._refuse_fork_exec())
        for method in _NETWORK_METHODS:
            self._patch(socket.socket, method, self._refuse_ip(method))

    def uninstall(self) -> None:
        while self._saved:
            owner, name, original = self._saved.pop()
            setattr(owner, name, original)

    def take(self) -> list[str]:
        """The violations recorded since the last call, and forget them."""
        with self._lock:
            taken, self._violations = self._violations, []
        return taken

    def _patch(self, owner: object, name: str, replacement: object) -> None:
        self._saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)

    def _refuse(self, what: str) -> UnitTierViolation:
        with self._lock:
            self._violations.append(what)
        return UnitTierViolation(f"{what}: {WHERE_INSTEAD}")

    def _refuse_process(self, name: str) -> Callable[..., Any]:
        def refuse(*args: object, **kwargs: object) -> Any:
            shown = f" {str(args[0])[:120]}" if args else ""
            raise self._refuse(f"spawns a process ({name}{shown})")

        return refuse

    def _refuse_fork_exec(self) -> Callable[..., Any]:
        def refuse(args: object, *rest: object) -> Any:
            argv = [os.fsdecode(a) for a in args] if isinstance(args, list | tuple) else [args]
            shown = " ".join(map(str, argv))[:120]
            raise self._refuse(f"spawns a process ({shown})")

        return refuse

    def _refuse_ip(self, method: str) -> Callable[..., Any]:
        original = getattr(socket.socket, method)

        def refuse(sock: socket.socket, *args: Any, **kwargs: Any) -> Any:
            if sock.family not in _IP_FAMILIES:
                return original(sock, *args, **kwargs)
            address = sock.getsockname() if method == "listen" else (args or [None])[-1]
            # Closed here: callers such as socket.create_connection close only on OSError.
            sock.close()
            raise self._refuse(f"uses the network (socket.{method} {address!r})")

        return refuse


def fail_on(violations: list[str], nodeid: str) -> None:
    """Fail the running phase of ``nodeid`` when it made any attempt, caught or not."""
    if violations:
        listed = "; ".join(dict.fromkeys(violations))
        pytest.fail(f"{nodeid} {listed}. {WHERE_INSTEAD}", pytrace=False)
