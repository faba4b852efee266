"""The simulated fleet's shared state, and the one place its agents touch the instrumentation.

Agents (:mod:`meshwatch.demo.agents`) describe what they do; this module turns
it into the real signals an instrumented fleet produces: hypervisor events on
the bus, governance decisions, work metrics, GenAI spans, and messages whose
headers carry the W3C trace context from one agent to the next.

Messages travel as the OpenTelemetry messaging conventions describe: a
``send <type>`` PRODUCER span on the sender, a ``process <type>`` CONSUMER
span on the receiver (its parent extracted from the headers), and the
receiver's ``invoke_agent`` span inside it. Each agent role exports as its own
``service.name``, so Tempo's service graph draws producer -> consumer edges
between agents.

With tracing off, spans are no-ops and the causal trace is kept by hand:
every agent turn runs under a ``child()`` of the causal span it was called
from, so events and log lines still carry a correct causal tree.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from meshwatch.demo import latency
from meshwatch.demo.scenario import Dice, Scenario
from meshwatch.demo.sim import Inbox, Simulation
from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.instrumentation.context import current_trace, use_trace
from meshwatch.instrumentation.events import EventType, HypervisorEvent
from meshwatch.instrumentation.genai import (
    GEN_AI_CONVERSATION_ID,
    GENAI_METRICS,
    GenAIMetrics,
    GenAISpanMetrics,
    inject,
    invoke_agent,
    invoke_workflow,
    receive,
)
from meshwatch.instrumentation.governance import GovernanceMetrics
from meshwatch.instrumentation.logs import log_context
from meshwatch.instrumentation.trace import CausalTraceId
from meshwatch.instrumentation.work_metrics import AgentMetrics

log = logging.getLogger("meshwatch.demo")

TRACER_SCOPE = "meshwatch.demo"
MESSAGING_SYSTEM = "meshwatch"
NO_TRACING = trace.NoOpTracerProvider()

ALLOWED, BLOCKED, RATE_LIMITED = "allowed", "blocked", "rate_limited"


@dataclass(frozen=True)
class AgentSpec:
    """One agent of the fleet: identity, role (its service and GenAI agent name), ring, trust."""

    did: str
    name: str
    ring: int
    trust: float


ORCHESTRATOR = AgentSpec("did:mesh:orchestrator", "orchestrator", 1, 920.0)
RESEARCHERS = (
    AgentSpec("did:mesh:researcher-1", "researcher", 2, 860.0),
    AgentSpec("did:mesh:researcher-2", "researcher", 2, 820.0),
)
WRITER = AgentSpec("did:mesh:writer", "writer", 2, 880.0)
PUBLISHER = AgentSpec("did:mesh:publisher", "publisher", 2, 780.0)
TOOL_SEARCH = AgentSpec("did:mesh:tool-search", "tool-search", 3, 700.0)
TOOL_CODE = AgentSpec("did:mesh:tool-code", "tool-code", 3, 650.0)
LEGACY = AgentSpec("did:mesh:legacy-crawler", "legacy-crawler", 3, 450.0)

# The orchestrator spawns the rest; the legacy crawler comes and goes on its own.
FLEET = (ORCHESTRATOR, *RESEARCHERS, WRITER, PUBLISHER, TOOL_SEARCH, TOOL_CODE)
SERVICES = tuple(dict.fromkeys(a.name for a in (*FLEET, LEGACY)))

TRUST_FLOOR = 50.0
TRUST_MAX = 1000.0
BLOCK_PENALTY = 15.0
BREACH_PENALTY = 3.0


class DemoFailure(Exception):
    """Something that goes wrong inside the simulated fleet (never a bug of the demo)."""


class PolicyDenied(DemoFailure):
    """Governance refused a tool call."""


class RateLimited(DemoFailure):
    """The rate limiter refused a tool call before the policy ran."""


class ToolTimeout(DemoFailure):
    """A tool did not answer in time."""


class DraftRejected(DemoFailure):
    """The writer's draft failed its own checks."""


@dataclass
class Message:
    """An inter-agent message; ``headers`` carry the W3C trace context."""

    type: str
    sender: AgentSpec
    body: dict[str, Any]
    size: int
    headers: dict[str, str] = field(default_factory=dict)
    reply_to: Inbox | None = None

    @property
    def conversation_id(self) -> str | None:
        return self.body.get("conversation_id")


@dataclass
class Instruments:
    """The real instrumentation the simulated fleet drives.

    ``tracers`` maps each service (agent role) to its tracer provider;
    ``tracing`` is False when they are all no-ops. ``legacy_work`` is a
    separate work-metrics group with a tight cardinality guard: the legacy
    crawler labels tasks with URLs, and the guard folds them into
    ``__overflow__``. ``llm`` holds the fleet's LLM calls (:mod:`meshwatch.demo.llm`).
    """

    bus: HypervisorEventBus
    governance: GovernanceMetrics
    work: AgentMetrics
    legacy_work: AgentMetrics
    tracers: Mapping[str, trace.TracerProvider] = field(default_factory=dict)
    tracing: bool = False
    genai: GenAIMetrics = GENAI_METRICS
    llm: GenAISpanMetrics = field(default_factory=GenAISpanMetrics)

    def tracer_provider(self, service: str) -> trace.TracerProvider:
        return self.tracers.get(service, NO_TRACING)


class PagerBridge:
    """A bus subscriber forwarding security events to a flaky pager gateway.

    The gateway times out on the first delivery (a cold connection) and every
    ``fail_every``-th after; the exception escapes to the bus, which logs it
    (rate-limited), counts it in ``meshwatch_bus_subscriber_errors_total`` and
    still delivers the event to every other subscriber. That isolation is
    what this subscriber is here to show.
    """

    def __init__(self, bus: HypervisorEventBus, *, fail_every: int = 7) -> None:
        self.attempts = 0
        self._fail_every = fail_every
        self._subscriptions = [
            bus.subscribe(EventType.RING_BREACH_DETECTED, self.forward),
            bus.subscribe(EventType.SAGA_ESCALATED, self.forward),
        ]

    def forward(self, event: HypervisorEvent) -> None:
        attempt = self.attempts
        self.attempts += 1
        if attempt % self._fail_every == 0:
            raise ConnectionError(f"pager gateway timed out forwarding {event.event_type.value}")

    def close(self) -> None:
        for subscription in self._subscriptions:
            subscription.cancel()


class World:
    """Virtual time, the dice, the fleet's state, and the instrumentation facade.

    ``saga_runner``, when set, runs the fleet's sagas instead of the simulated
    ones (:class:`~meshwatch.demo.runtime_world.RuntimeWorld` runs them on a
    real saga orchestrator).
    """

    saga_runner: Any = None

    def __init__(self, scenario: Scenario, instruments: Instruments) -> None:
        self.scenario = scenario
        self.inst = instruments
        self.sim = Simulation()
        self.dice = Dice(scenario.seed)
        self._ids = self.dice.stream()
        self.sessions: dict[str, str] = {}
        self.elevated: set[str] = set()
        self.open_conversations = 0
        self._inboxes: dict[str, Inbox] = {}
        self._work: dict[str, AgentMetrics] = {}
        self._baseline = {a.did: a.trust for a in (*FLEET, LEGACY)}
        self._trust = dict(self._baseline)
        self._trust_lock = threading.Lock()
        self._killed: set[str] = set()
        self._kill_lock = threading.Lock()
        self.pager = PagerBridge(instruments.bus)
        instruments.governance.register_trust_score_gauge(self.trust_scores)
        instruments.governance.register_active_agents_gauge(self.active_agents)

    def close(self) -> None:
        """End every agent process (their open spans end too) and unsubscribe."""
        self.sim.close()
        self.pager.close()

    # -- identity, sessions, rings ---------------------------------------------------

    def join(self, agent: AgentSpec) -> None:
        """A new session of ``agent`` starts and it is assigned its ring."""
        self.sessions[agent.did] = f"sess-{agent.name}-{self._ids.getrandbits(32):08x}"
        self.emit(EventType.SESSION_CREATED, agent, {"role": agent.name})
        self.emit(EventType.IDENTITY_VERIFIED, agent, {"method": "did-auth"})
        self.emit(EventType.RING_ASSIGNED, agent, {"ring": agent.ring})

    def leave(self, agent: AgentSpec) -> None:
        self.emit(EventType.SESSION_TERMINATED, agent, {"reason": "batch finished"})
        self.sessions.pop(agent.did, None)

    def elevate(self, agent: AgentSpec, reason: str, *, started: datetime | None = None) -> None:
        """Raise ``agent`` one ring; ``started`` backdates the event (see scenario)."""
        self.elevated.add(agent.did)
        payload = {"from_ring": agent.ring, "to_ring": agent.ring - 1, "reason": reason}
        self.emit(EventType.RING_ELEVATED, agent, payload, timestamp=started)

    def deny_elevation(self, agent: AgentSpec, reason: str) -> None:
        """``agent`` asked to be raised one ring and was refused for ``reason``."""
        payload = {"from_ring": agent.ring, "to_ring": agent.ring - 1, "reason": reason}
        self.emit(EventType.RING_ELEVATION_DENIED, agent, payload)

    def demote(self, agent: AgentSpec, reason: str, *, expired: bool = False) -> None:
        self.elevated.discard(agent.did)
        event = EventType.RING_ELEVATION_EXPIRED if expired else EventType.RING_DEMOTED
        self.emit(
            event, agent, {"from_ring": agent.ring - 1, "to_ring": agent.ring, "reason": reason}
        )

    def kill(self, did: str, reason: str) -> bool:
        """Kill agent ``did`` (a remediation action, from the receiver's thread).

        Its session ends with a ``security.agent_killed`` event; what it was
        doing wrong stops (:meth:`was_killed`), and the fleet restarts it in a
        new session. False if no running agent has that DID.
        """
        agent = next((a for a in (*FLEET, LEGACY) if a.did == did), None)
        with self._kill_lock:
            if agent is None or agent.did not in self.sessions or agent.did in self._killed:
                return False
            self._killed.add(agent.did)
        self.emit(EventType.AGENT_KILLED, agent, {"reason": reason, "handoffs": 0})
        self.emit(EventType.SESSION_TERMINATED, agent, {"reason": f"killed: {reason}"})
        return True

    def was_killed(self, agent: AgentSpec) -> bool:
        """Whether ``agent`` was killed since it last joined (read by the sim's processes)."""
        with self._kill_lock:
            return agent.did in self._killed

    def restart(self, agent: AgentSpec) -> None:
        """A killed agent comes back in a new session, as an orchestrator would restart it.

        It joins first and is un-marked after: a kill arriving from the
        receiver's thread while it joins finds it still killed, never its ended
        session (which a kill would otherwise end a second time).
        """
        self.join(agent)
        with self._kill_lock:
            self._killed.discard(agent.did)

    def breach(self, rng: random.Random, agent: AgentSpec, tool: str) -> None:
        """``agent`` tried a tool above its ring: a breach, and a blocked governance call."""
        self.emit(
            EventType.RING_BREACH_DETECTED, agent, {"attempted_tool": tool, "ring": agent.ring}
        )
        self.decide(rng, agent, tool, outcome=BLOCKED)
        self.inst.governance.record_audit_event("ring_breach")
        self.adjust_trust(agent, -BREACH_PENALTY)

    # -- events ----------------------------------------------------------------------

    def emit(
        self,
        event_type: EventType,
        agent: AgentSpec,
        payload: Mapping[str, Any] | None = None,
        *,
        timestamp: datetime | None = None,
    ) -> None:
        """Emit an event by ``agent`` under the current causal trace."""
        extra: dict[str, Any] = {} if timestamp is None else {"timestamp": timestamp}
        self.inst.bus.emit(
            HypervisorEvent(
                event_type,
                session_id=self.sessions.get(agent.did),
                agent_did=agent.did,
                causal_trace_id=current_trace(),
                payload=payload or {},
                **extra,
            )
        )

    def emit_raw(self, event: HypervisorEvent) -> None:
        """Emit a prepared event as is (the legacy crawler's malformed ones)."""
        self.inst.bus.emit(event)

    # -- governance and trust ------------------------------------------------------------

    def latency_model(self) -> latency.LatencyModel:
        if self.scenario.incident_active(self.sim.now):
            return latency.DEGRADED
        return latency.HEALTHY

    def decide(
        self, rng: random.Random, agent: AgentSpec, tool: str, *, outcome: str | None = None
    ) -> str:
        """One governance evaluation of ``agent`` calling ``tool``; returns the decision."""
        if outcome is None:
            odds = self.scenario.odds
            if self.dice.chance(rng, "blocked", odds.blocked):
                outcome = BLOCKED
            elif self.dice.chance(rng, "rate_limited", odds.rate_limited):
                outcome = RATE_LIMITED
            else:
                outcome = ALLOWED
        ms = self.latency_model().sample(rng)
        if outcome == RATE_LIMITED:
            ms *= latency.RATE_LIMITER_FACTOR
        governance = self.inst.governance
        governance.record_decision(
            outcome == ALLOWED, agent.did, tool, ms, rate_limited=outcome == RATE_LIMITED
        )
        governance.record_audit_event("policy_decision")
        if outcome == RATE_LIMITED:
            self.emit(EventType.RATE_LIMITED, agent, {"tool": tool})
        if outcome != ALLOWED:
            self.adjust_trust(agent, -BLOCK_PENALTY)
        return outcome

    def adjust_trust(self, agent: AgentSpec, delta: float) -> None:
        with self._trust_lock:
            score = self._trust[agent.did] + delta
            self._trust[agent.did] = min(TRUST_MAX, max(TRUST_FLOOR, score))

    def drift_trust(self, rng: random.Random) -> None:
        """Every agent's trust recovers a tenth of the way to its baseline, plus noise."""
        with self._trust_lock:
            for did, score in self._trust.items():
                score += 0.1 * (self._baseline[did] - score) + rng.gauss(0.0, 4.0)
                self._trust[did] = min(TRUST_MAX, max(TRUST_FLOOR, score))

    def trust_scores(self) -> dict[str, float]:
        """The trust score gauge callback (called at scrape time, on the server thread)."""
        with self._trust_lock:
            return {did: round(score, 1) for did, score in self._trust.items()}

    def active_agents(self) -> float:
        """The active agents gauge callback: agents with an open session."""
        return float(len(self.sessions))

    # -- work metrics and messages -----------------------------------------------------

    def work(self, agent: AgentSpec) -> AgentMetrics:
        metrics = self._work.get(agent.did)
        if metrics is None:
            metrics = self._work[agent.did] = self.inst.work.for_agent(agent.did)
        return metrics

    def inbox(self, agent: AgentSpec) -> Inbox:
        box = self._inboxes.get(agent.did)
        if box is None:
            box = self._inboxes[agent.did] = self.sim.inbox()
        return box

    def send(
        self,
        sender: AgentSpec,
        to: AgentSpec | Inbox,
        message_type: str,
        body: dict[str, Any],
        size: int,
        *,
        reply_to: Inbox | None = None,
    ) -> None:
        """Send a message to an agent (its inbox) or to a reply inbox, trace context injected."""
        destination = to.name if isinstance(to, AgentSpec) else sender.name + ".reply"
        tracer = self.inst.tracer_provider(sender.name).get_tracer(TRACER_SCOPE)
        with tracer.start_as_current_span(
            f"send {message_type}",
            kind=SpanKind.PRODUCER,
            attributes=_messaging("send", destination, body.get("conversation_id")),
        ):
            headers: dict[str, str] = {}
            inject(headers)
        message = Message(message_type, sender, body, size, headers, reply_to)
        self.work(sender).message_sent(message_type, size_bytes=size)
        if isinstance(to, AgentSpec):
            box = self.inbox(to)
            box.put(message)
            self.work(to).set_queue_length(len(box))
        else:
            to.put(message)

    def reply(
        self,
        sender: AgentSpec,
        request: Message,
        message_type: str,
        body: dict[str, Any],
        size: int,
    ) -> None:
        """Answer ``request`` on its reply inbox."""
        if request.reply_to is not None:
            body.setdefault("conversation_id", request.conversation_id)
            self.send(sender, request.reply_to, message_type, body, size)

    def received(self, agent: AgentSpec, message: Message) -> None:
        """Count a message ``agent`` took from an inbox, and its queue now."""
        metrics = self.work(agent)
        metrics.message_received(message.type, size_bytes=message.size)
        box = self._inboxes.get(agent.did)
        if box is not None:
            metrics.set_queue_length(len(box))

    @contextmanager
    def handling(self, agent: AgentSpec, message: Message) -> Iterator[None]:
        """Process ``message`` as ``agent``: its trace continues from the sender's span."""
        self.received(agent, message)
        tracer = self.inst.tracer_provider(agent.name).get_tracer(TRACER_SCOPE)
        with (
            receive(message.headers),
            tracer.start_as_current_span(
                f"process {message.type}",
                kind=SpanKind.CONSUMER,
                attributes=_messaging("process", agent.name, message.conversation_id),
            ),
            self.turn(agent, message.conversation_id),
        ):
            yield

    @contextmanager
    def workflow(self, agent: AgentSpec, name: str, conversation_id: str) -> Iterator[None]:
        """One conversation as an ``invoke_workflow`` span, the root of its trace."""
        with invoke_workflow(
            name,
            conversation_id=conversation_id,
            tracer_provider=self.inst.tracer_provider(agent.name),
            metrics=self.inst.genai,
        ):
            yield

    @contextmanager
    def turn(self, agent: AgentSpec, conversation_id: str | None) -> Iterator[None]:
        """One turn of ``agent``: an ``invoke_agent`` span, log lines tagged with the agent."""
        with (
            invoke_agent(
                agent.name,
                agent_id=agent.did,
                conversation_id=conversation_id,
                provider="meshwatch-demo",
                tracer_provider=self.inst.tracer_provider(agent.name),
                metrics=self.inst.genai,
            ),
            log_context(agent_id=agent.did, session_id=self.sessions.get(agent.did)),
        ):
            if self.inst.tracing:
                yield
            else:
                parent = current_trace()
                with use_trace(parent.child() if parent is not None else CausalTraceId()):
                    yield


def _messaging(operation: str, destination: str, conversation_id: str | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": operation,
        "messaging.destination.name": destination,
    }
    if conversation_id is not None:
        attributes[GEN_AI_CONVERSATION_ID] = conversation_id
    return attributes
