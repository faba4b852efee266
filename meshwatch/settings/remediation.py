"""Remediation settings: which alerts meshwatch may act on, how, and how often.

Safe by default: remediation is off, and when it is turned on it is a dry run
(decisions are logged, counted and audited, nothing is done) until
``dry_run: false``. A policy acts only on the alert it names and only on
agents its allow-list matches; an empty allow-list matches no agent::

    remediation:
      enabled: true
      dry_run: false
      token_file: /etc/meshwatch/remediation-token
      policies:
        - alert: HighRingBreachRate
          action: kill_agent
          agents: ["did:mesh:*"]
          params: {reason: ring_breach}
      max_actions: 5
      window: 10m

``enabled`` is read by the generators (an Alertmanager receiver and route for
the policies' alerts); the receiver itself reads the rest.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from meshwatch.settings.loader import Duration, check

_ALERT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ACTION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class RemediationPolicy:
    """One alert mapped to one action, for the agents ``agents`` matches (shell globs)."""

    alert: str
    action: str
    agents: tuple[str, ...] = ()
    params: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(bool(_ALERT_NAME.match(self.alert)), "alert", f"is not an alert name: {self.alert!r}")
        check(
            bool(_ACTION_NAME.match(self.action)),
            "action",
            f"must be a lower-case action name such as kill_agent, got {self.action!r}",
        )
        for i, pattern in enumerate(self.agents):
            check(bool(pattern), f"agents[{i}]", "must not be empty")


@dataclass(frozen=True)
class RemediationSettings:
    """The receiver's address, credentials, limits and policies."""

    enabled: bool = False
    dry_run: bool = True
    # Where the receiver listens, inside the process that holds the runtime.
    listen_address: str = "127.0.0.1"
    port: int = 9096
    # Where Alertmanager reaches it; empty: http://<listen_address>:<port>.
    url: str = ""
    # The bearer token, shared by Alertmanager (credentials_file) and the receiver.
    token_file: str = ""
    policies: tuple[RemediationPolicy, ...] = ()
    # The circuit breaker: at most max_actions actions per window across all alerts;
    # past that it stops acting for open_for and its own alert fires.
    max_actions: int = 5
    window: Duration = Duration("10m")
    open_for: Duration = Duration("10m")
    # One action per agent per cooldown, whichever alerts (or tiers) name it.
    cooldown: Duration = Duration("10m")
    max_body_bytes: int = 1024 * 1024
    request_timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        check(
            _is_ip(self.listen_address),
            "listen_address",
            f"must be an IP address, got {self.listen_address!r}",
        )
        check(1 <= self.port <= 65535, "port", f"must be 1 to 65535, got {self.port}")
        check(
            not self.url or self.url.startswith(("http://", "https://")),
            "url",
            f"must be an http:// or https:// URL, got {self.url!r}",
        )
        check(self.max_actions >= 1, "max_actions", f"must be at least 1, got {self.max_actions}")
        check(self.window.seconds > 0, "window", "must be longer than 0s")
        check(self.open_for.seconds > 0, "open_for", "must be longer than 0s")
        check(self.cooldown.seconds > 0, "cooldown", "must be longer than 0s")
        check(
            1024 <= self.max_body_bytes <= 64 * 1024 * 1024,
            "max_body_bytes",
            f"must be 1024 to 67108864, got {self.max_body_bytes}",
        )
        check(
            0 < self.request_timeout_seconds <= 300,
            "request_timeout_seconds",
            f"must be above 0 and at most 300, got {self.request_timeout_seconds}",
        )
        seen: set[str] = set()
        for i, policy in enumerate(self.policies):
            check(
                policy.alert not in seen,
                f"policies[{i}].alert",
                f"{policy.alert} already has a policy; one action per alert",
            )
            seen.add(policy.alert)
        check(
            not (self.enabled and not self.token_file),
            "token_file",
            "is required when remediation is enabled (the receiver accepts only a bearer token)",
        )

    @property
    def receiver_url(self) -> str:
        """The URL Alertmanager posts to."""
        base = self.url or f"http://{self.listen_address}:{self.port}"
        return base.rstrip("/") + "/alerts"

    def policy_for(self, alert: str) -> RemediationPolicy | None:
        """The policy for ``alert``, if it has one."""
        return next((p for p in self.policies if p.alert == alert), None)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
