"""Polling with a deadline: how integration tests wait for a live system, never by sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The condition did not hold before the deadline; says what was last seen."""


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.25,
    what: str = "condition",
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that value.

    Exceptions the predicate raises while the system is still coming up
    (connection refused, a query that has no data yet) count as "not yet"; the
    last one is reported if the deadline passes, so a failure says why instead
    of only that it timed out. The predicate always runs at least once, and
    once more at the deadline, so a slow machine gets the full ``timeout``.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
        except Exception as exc:  # the system under test is allowed to be not ready yet
            last = exc
        else:
            if value:
                return value
            last = value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
        time.sleep(min(interval, remaining))
