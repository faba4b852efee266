"""Every point of agent-hypervisor the integration relies on, and a check that it is still there.

The hooks wrap public methods and state-machine transitions, and read a few
public fields of the values those return. :data:`HOOK_POINTS` lists each
method with the parameter names the hook reads, and :data:`FIELDS` each field;
:func:`check_hook_points` compares both with the installed package and names
every difference. :func:`~meshwatch.integrations.agent_hypervisor.instrument`
runs it first and refuses to hook a runtime that moved, instead of hooking it
wrongly; the unit tests run it against the installed release, so an upstream
release that moves a hook point fails the build loudly.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Final

DISTRIBUTION: Final = "agent-hypervisor"
# The releases the integration is tested against (the extra pins the same range).
TESTED_VERSIONS: Final = ">=3.7.0,<3.8"
TESTED_MIN: Final = (3, 7, 0)
TESTED_BELOW: Final = (3, 8)


class IncompatibleRuntimeError(RuntimeError):
    """The installed agent-hypervisor no longer has a hook point the integration needs."""


@dataclass(frozen=True)
class HookPoint:
    """A method the integration wraps, and the parameters (after self) its hook reads."""

    module: str
    cls: str
    method: str
    params: tuple[str, ...]
    coroutine: bool = False


HOOK_POINTS: Final[tuple[HookPoint, ...]] = (
    # sessions
    HookPoint("hypervisor.core", "Hypervisor", "create_session", ("config", "creator_did"), True),
    HookPoint(
        "hypervisor.session",
        "SharedSessionObject",
        "join",
        ("agent_did", "sigma_raw", "eff_score", "ring"),
    ),
    HookPoint("hypervisor.session", "SharedSessionObject", "activate", ()),
    HookPoint("hypervisor.session", "SharedSessionObject", "terminate", ()),
    HookPoint("hypervisor.session", "SharedSessionObject", "archive", ()),
    HookPoint(
        "hypervisor.session", "SharedSessionObject", "update_ring", ("agent_did", "new_ring")
    ),
    # rings
    HookPoint(
        "hypervisor.rings.elevation",
        "RingElevationManager",
        "request_elevation",
        ("agent_did", "session_id", "current_ring", "target_ring", "ttl_seconds"),
    ),
    HookPoint(
        "hypervisor.rings.elevation", "RingElevationManager", "revoke_elevation", ("elevation_id",)
    ),
    HookPoint("hypervisor.rings.elevation", "RingElevationManager", "tick", ()),
    HookPoint(
        "hypervisor.rings.breach_detector",
        "RingBreachDetector",
        "record_call",
        ("agent_did", "session_id", "agent_ring", "called_ring"),
    ),
    HookPoint(
        "hypervisor.rings.breach_detector",
        "RingBreachDetector",
        "reset_breaker",
        ("agent_did", "session_id"),
    ),
    # sagas: the orchestrator's factories, then the two state machines
    HookPoint("hypervisor.saga.orchestrator", "SagaOrchestrator", "create_saga", ("session_id",)),
    HookPoint(
        "hypervisor.saga.orchestrator",
        "SagaOrchestrator",
        "add_step",
        ("saga_id", "action_id", "agent_did"),
    ),
    HookPoint("hypervisor.saga.state_machine", "Saga", "transition", ("new_state",)),
    HookPoint("hypervisor.saga.state_machine", "SagaStep", "transition", ("new_state",)),
    HookPoint(
        "hypervisor.saga.fan_out", "FanOutOrchestrator", "execute", ("group_id", "executors"), True
    ),
    # security
    HookPoint(
        "hypervisor.security.kill_switch",
        "KillSwitch",
        "kill",
        ("agent_did", "session_id", "reason", "in_flight_steps"),
    ),
    # liability
    HookPoint(
        "hypervisor.liability.vouching",
        "VouchingEngine",
        "vouch",
        ("voucher_did", "vouchee_did", "session_id"),
    ),
    HookPoint("hypervisor.liability.vouching", "VouchingEngine", "release_bond", ("vouch_id",)),
    HookPoint(
        "hypervisor.liability.vouching", "VouchingEngine", "release_session_bonds", ("session_id",)
    ),
    HookPoint(
        "hypervisor.liability.slashing", "SlashingEngine", "slash", ("vouchee_did", "session_id")
    ),
    HookPoint(
        "hypervisor.liability.quarantine",
        "QuarantineManager",
        "quarantine",
        ("agent_did", "session_id", "reason"),
    ),
    HookPoint(
        "hypervisor.liability.quarantine",
        "QuarantineManager",
        "release",
        ("agent_did", "session_id"),
    ),
    HookPoint("hypervisor.liability.quarantine", "QuarantineManager", "tick", ()),
    # audit
    HookPoint("hypervisor.audit.gc", "EphemeralGC", "collect", ("session_id",)),
    HookPoint(
        "hypervisor.audit.commitment",
        "CommitmentEngine",
        "commit",
        ("session_id", "hash_chain_root"),
    ),
)

# Fields of upstream values the hooks read: (module, dataclass, field names).
FIELDS: Final[tuple[tuple[str, str, tuple[str, ...]], ...]] = (
    ("hypervisor.models", "SessionParticipant", ("agent_did", "ring", "eff_score")),
    (
        "hypervisor.rings.elevation",
        "RingElevation",
        (
            "elevation_id",
            "agent_did",
            "session_id",
            "original_ring",
            "elevated_ring",
            "granted_at",
            "expires_at",
            "reason",
            "is_active",
        ),
    ),
    (
        "hypervisor.rings.breach_detector",
        "BreachEvent",
        ("agent_did", "session_id", "severity", "anomaly_score", "actual_rate", "timestamp"),
    ),
    (
        "hypervisor.saga.state_machine",
        "Saga",
        ("saga_id", "session_id", "steps", "state", "completed_at"),
    ),
    (
        "hypervisor.saga.state_machine",
        "SagaStep",
        (
            "step_id",
            "action_id",
            "agent_did",
            "state",
            "error",
            "started_at",
            "completed_at",
            "retry_count",
            "max_retries",
        ),
    ),
    (
        "hypervisor.saga.fan_out",
        "FanOutGroup",
        ("group_id", "saga_id", "branches", "policy_satisfied"),
    ),
    (
        "hypervisor.security.kill_switch",
        "KillResult",
        (
            "kill_id",
            "agent_did",
            "session_id",
            "reason",
            "timestamp",
            "handoffs",
            "terminated",
            "compensation_triggered",
        ),
    ),
    (
        "hypervisor.security.kill_switch",
        "StepHandoff",
        ("step_id", "saga_id", "from_agent", "to_agent", "status"),
    ),
    (
        "hypervisor.liability.vouching",
        "VouchRecord",
        ("vouch_id", "voucher_did", "vouchee_did", "session_id", "created_at"),
    ),
    (
        "hypervisor.liability.slashing",
        "SlashResult",
        ("slash_id", "vouchee_did", "reason", "timestamp"),
    ),
    (
        "hypervisor.liability.quarantine",
        "QuarantineRecord",
        ("quarantine_id", "agent_did", "session_id", "reason", "entered_at"),
    ),
    (
        "hypervisor.audit.gc",
        "GCResult",
        ("session_id", "purged_vfs_files", "retained_deltas", "gc_at"),
    ),
)


def installed_version() -> str | None:
    """The installed agent-hypervisor release (its distribution metadata), or None."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return None


def is_tested_version(release: str) -> bool:
    """Whether ``release`` (e.g. "3.7.0") is inside :data:`TESTED_VERSIONS`."""
    try:
        parts = tuple(int(p) for p in release.split(".")[:3])
    except ValueError:
        return False
    return parts >= TESTED_MIN and parts[:2] < TESTED_BELOW


def hook_point_problems() -> list[str]:
    """Every hook point or field that the installed package lacks or changed, one line each."""
    problems: list[str] = []
    for point in HOOK_POINTS:
        where = f"{point.module}.{point.cls}.{point.method}"
        try:
            cls = getattr(import_module(point.module), point.cls)
        except (ImportError, AttributeError) as exc:
            problems.append(f"{point.module}.{point.cls}: cannot import ({exc})")
            continue
        method = getattr(cls, point.method, None)
        if method is None or not callable(method):
            problems.append(f"{where}: no such method")
            continue
        if inspect.iscoroutinefunction(method) != point.coroutine:
            kind = "a coroutine function" if point.coroutine else "a plain method"
            problems.append(f"{where}: is no longer {kind}")
        names = list(inspect.signature(method).parameters)[1:]
        if names[: len(point.params)] != list(point.params):
            problems.append(
                f"{where}: parameters are {tuple(names)}, the hook reads {point.params} in that order"
            )
    for module, cls_name, wanted in FIELDS:
        try:
            cls = getattr(import_module(module), cls_name)
            have = {f.name for f in dataclasses.fields(cls)}
        except (ImportError, AttributeError, TypeError) as exc:
            problems.append(f"{module}.{cls_name}: cannot read its fields ({exc})")
            continue
        missing = [name for name in wanted if name not in have]
        if missing:
            problems.append(f"{module}.{cls_name}: no field {', '.join(missing)}")
    return problems


def check_hook_points() -> None:
    """Raise :class:`IncompatibleRuntimeError` naming every moved hook point, if any."""
    problems = hook_point_problems()
    if problems:
        raise IncompatibleRuntimeError(
            f"agent-hypervisor {installed_version()} moved hook points meshwatch relies on "
            f"(tested: {TESTED_VERSIONS}): " + "; ".join(problems)
        )


__all__ = [
    "FIELDS",
    "HOOK_POINTS",
    "TESTED_VERSIONS",
    "HookPoint",
    "IncompatibleRuntimeError",
    "check_hook_points",
    "hook_point_problems",
    "installed_version",
    "is_tested_version",
]
