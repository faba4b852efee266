"""The action protocol: what the receiver calls to act on a firing alert.

An action knows nothing of HTTP, policies or limits; the receiver has decided
to act before it is called. That keeps user-defined actions for other runtimes
small::

    class PauseAgent:
        name = "pause_agent"
        required_labels = ("agent_did",)

        def plan(self, request: ActionRequest) -> str:
            return f"pause {request.labels['agent_did']}"

        def __call__(self, request: ActionRequest) -> str:
            my_runtime.pause(request.labels["agent_did"])
            return "paused"

``plan`` says what the action would do; it is all a dry run records, so it
must not change anything. ``__call__`` acts and returns what it did; raising
marks the remediation failed (the receiver catches, counts and records it, and
never retries: a retry is the next firing alert's decision).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from meshwatch.remediation.payload import Alert


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """One alert handed to one action, with the policy's parameters for it."""

    alert: Alert
    params: Mapping[str, str]

    @property
    def labels(self) -> Mapping[str, str]:
        """The alert's labels (the action's required labels are all present)."""
        return self.alert.labels


@runtime_checkable
class Action(Protocol):
    """Something the receiver can do about a firing alert."""

    @property
    def name(self) -> str:
        """The name policies refer to (``action: kill_agent``)."""
        ...

    @property
    def required_labels(self) -> tuple[str, ...]:
        """Labels an alert must carry for this action; alerts without them are refused."""
        ...

    def plan(self, request: ActionRequest) -> str:
        """What calling the action would do, in one line; changes nothing."""
        ...

    def __call__(self, request: ActionRequest) -> str:
        """Act; return what was done in one line. Raise if it could not be done."""
        ...


class ActionError(RuntimeError):
    """An action could not act (the message says why); the remediation counts as failed."""


def index_actions(actions: tuple[Action, ...] | list[Action]) -> dict[str, Action]:
    """Actions by name; a name given twice is an error, not a silent override."""
    by_name: dict[str, Action] = {}
    for action in actions:
        if not isinstance(action, Action):
            raise TypeError(
                f"{action!r} is not a remediation action (name, required_labels, plan, __call__)"
            )
        if action.name in by_name:
            raise ValueError(f"two remediation actions are named {action.name!r}")
        by_name[action.name] = action
    return by_name
