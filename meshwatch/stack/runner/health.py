"""Readiness from each component's own health endpoint, and bounded waiting for it.

A component is ready when its endpoint answers 200: Prometheus and
Alertmanager ``/-/ready``, Tempo ``/ready``, Grafana ``/api/health``, the demo
``/metrics``. Anything else (refused, timed out, 503 while starting) is "not
ready" with the reason, so ``meshwatch status`` can say why.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ComponentStatus:
    """One component's readiness as its health endpoint reports it."""

    name: str
    url: str
    ready: bool
    detail: str
    pid: int | None = None


def probe(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    """``(ready, detail)`` from one GET of ``url``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, str(reason)
    return status == 200, f"HTTP {status}"


def wait_for(
    check: Callable[[], tuple[bool, str]],
    *,
    timeout: float,
    interval: float = 0.2,
) -> tuple[bool, str]:
    """Call ``check`` until it reports ready or ``timeout`` seconds pass; the last result.

    ``check`` runs at least once and once more at the deadline, so a slow
    start still gets the whole timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        ok, detail = check()
        remaining = deadline - time.monotonic()
        if ok or remaining <= 0:
            return ok, detail
        time.sleep(min(interval, remaining))
