"""What keeps the receiver from acting twice, or acting too much.

* :class:`SeenAlerts` remembers which firings (fingerprint, ``startsAt``) were
  already decided, so Alertmanager's re-sends of one firing act once. It is
  bounded: the oldest keys go first, and a key is older than any re-send
  Alertmanager would still make long before the bound is reached.
* :class:`RecentlyHandled` remembers which (action, agent) pairs were acted
  on in the last ``cooldown`` seconds, so one agent is handled once however
  many alerts (or tiers of one alert) name it. Bounded like the first.
* :class:`CircuitBreaker` allows at most ``max_actions`` actions in any
  sliding ``window``. The action past that opens it: for ``open_for`` nothing
  is done at all (every decision is refused as ``circuit_open``), and the
  receiver's gauge says so, which is what its own alert reads. A flood of
  distinct alerts therefore costs at most ``max_actions`` actions.

Both take the clock as an argument, so tests drive time instead of sleeping.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable

# Firings remembered for idempotency: far more than Alertmanager re-sends
# between two repeat intervals, and about 200 KiB of keys.
SEEN_CAPACITY = 4096


class SeenAlerts:
    """A bounded set of decided firings, oldest evicted first. Not thread-safe."""

    def __init__(self, capacity: int = SEEN_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._keys: OrderedDict[Hashable, None] = OrderedDict()

    def add(self, key: Hashable) -> bool:
        """Remember ``key``; False if it was already there (a re-send)."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return False
        self._keys[key] = None
        if len(self._keys) > self._capacity:
            self._keys.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._keys)


class RecentlyHandled:
    """(action, agent) pairs claimed within the last ``cooldown`` seconds. Not thread-safe."""

    def __init__(self, cooldown: float, capacity: int = SEEN_CAPACITY) -> None:
        self._cooldown = cooldown
        self._capacity = capacity
        self._claimed: OrderedDict[Hashable, float] = OrderedDict()

    def claim(self, key: Hashable, now: float) -> bool:
        """Claim ``key`` at ``now``; False if it was claimed less than ``cooldown`` ago."""
        since = self._claimed.get(key)
        if since is not None and now - since < self._cooldown:
            return False
        self._claimed[key] = now
        self._claimed.move_to_end(key)
        while len(self._claimed) > self._capacity:
            self._claimed.popitem(last=False)
        return True

    def release(self, key: Hashable) -> None:
        """Forget a claim whose action was not taken after all (the breaker refused it)."""
        self._claimed.pop(key, None)


class CircuitBreaker:
    """At most ``max_actions`` in any ``window`` seconds; then open for ``open_for``. Not thread-safe."""

    def __init__(self, max_actions: int, window: float, open_for: float) -> None:
        if max_actions < 1 or window <= 0 or open_for <= 0:
            raise ValueError("max_actions must be at least 1, window and open_for above 0")
        self._max = max_actions
        self._window = window
        self._open_for = open_for
        self._recent: deque[float] = deque()
        self._open_until = float("-inf")
        self.trips = 0

    def is_open(self, now: float) -> bool:
        """Whether actions are refused at ``now``."""
        return now < self._open_until

    def admit(self, now: float) -> bool:
        """Take one action's slot at ``now``; False (and open) if the window is full."""
        if self.is_open(now):
            return False
        while self._recent and self._recent[0] <= now - self._window:
            self._recent.popleft()
        if len(self._recent) >= self._max:
            self._open_until = now + self._open_for
            self._recent.clear()
            self.trips += 1
            return False
        self._recent.append(now)
        return True
