"""What the simulated agents do: one generator per agent process (see :mod:`meshwatch.demo.sim`).

A conversation: a user request reaches the orchestrator, which plans, delegates
research to one or two researchers in parallel (they call search tools through
the tool-search agent), settles a conflict when their findings disagree, has
the writer draft the answer (charts through the tool-code agent), and often
asks the publisher to publish it, which runs a saga. Every hop is a message
whose headers carry the trace context, so one conversation is one trace.

Beside conversations run the fleet's background life: maintenance sagas, short
ring elevations, the publisher's long routine elevation, rare stray breaches,
trust drift, a nightly-style bulk import, and a legacy crawler that misbehaves
in the ways instrumentation has to survive (malformed events, URLs as label
values). The incident scenario adds :func:`incident`.

Timing: yields are virtual seconds; the runner maps them to real time.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any

from meshwatch.demo.llm import runaway_agent, think
from meshwatch.demo.sim import Inbox, Process
from meshwatch.demo.world import (
    BLOCKED,
    FLEET,
    LEGACY,
    ORCHESTRATOR,
    PUBLISHER,
    RATE_LIMITED,
    RESEARCHERS,
    TOOL_CODE,
    TOOL_SEARCH,
    WRITER,
    AgentSpec,
    DemoFailure,
    DraftRejected,
    Message,
    PolicyDenied,
    RateLimited,
    ToolTimeout,
    World,
    log,
)
from meshwatch.instrumentation.context import current_trace, use_trace
from meshwatch.instrumentation.events import EventType, HypervisorEvent
from meshwatch.instrumentation.genai import execute_tool

# A sub-process: yields like a process and returns a value to ``yield from``.
Step = Generator["float | Inbox", Any, Any]

TOPICS = (
    "quarterly churn drivers",
    "gpu spot pricing",
    "eu ai act obligations",
    "incident postmortem trends",
    "supplier risk scores",
    "customer sentiment shift",
)
SEARCH_TOOLS = ("web_search", "fetch_url", "vector_search")
PRIVILEGED_TOOLS = ("shell_exec", "send_email")
SECTIONS = ("wiki", "tickets", "docs", "hr", "finance")

# (step_id, action, compensating action or None). Actions name span kinds
# (saga.step.<action>), so they are a fixed vocabulary.
Steps = tuple[tuple[str, str, str | None], ...]
PUBLISH_STEPS: Steps = (
    ("reserve", "reserve_slot", "release_slot"),
    ("stage", "stage_report", "unstage_report"),
    ("publish", "publish_report", "unpublish_report"),
    ("notify", "notify_subscribers", None),
)
MAINTENANCE_SAGAS: tuple[tuple[str, Steps], ...] = (
    (
        "rotate-keys",
        (
            ("snapshot", "snapshot_keys", "discard_snapshot"),
            ("rotate", "rotate_keys", "restore_keys"),
            ("verify", "verify_keys", None),
        ),
    ),
    (
        "reindex",
        (
            ("freeze", "freeze_index", "unfreeze_index"),
            ("rebuild", "rebuild_index", "restore_index"),
            ("swap", "swap_index", "swap_back_index"),
        ),
    ),
)
STEP_TIMEOUT = 8.0
PUBLISH_SHARE = 0.6
TWO_RESEARCHERS_SHARE = 0.5
CHART_SHARE = 0.4
BULK_IMPORT_FILES = 300
LEGACY_FIRST_RUN_PAGES = 8


def _size(rng: random.Random, median: float) -> int:
    """A message size in bytes, log-normal around ``median``."""
    return max(16, int(median * rng.lognormvariate(0.0, 0.6)))


def _quality(rng: random.Random) -> float:
    return rng.betavariate(8.0, 2.0)


# --- the fleet ----------------------------------------------------------------------------


def bootstrap(world: World) -> Process:
    """The orchestrator spawns the fleet (one causal tree), then every process starts."""
    yield 0.0
    with world.turn(ORCHESTRATOR, None):
        world.join(ORCHESTRATOR)
        spawner = current_trace()
        assert spawner is not None  # a turn always runs under a causal trace
        spawned = None
        for agent in FLEET[1:]:
            spawned = spawner.child() if spawned is None else spawned.sibling()
            with use_trace(spawned):
                world.join(agent)
    spawn = world.sim.spawn
    for agent in RESEARCHERS:
        spawn(researcher(world, agent))
    spawn(writer(world))
    spawn(publisher(world))
    spawn(tool_agent(world, TOOL_SEARCH))
    spawn(tool_agent(world, TOOL_CODE))
    spawn(user_requests(world))
    spawn(maintenance(world))
    spawn(short_elevations(world))
    spawn(stray_breaches(world))
    spawn(routine_elevation(world))
    spawn(trust_drift(world))
    spawn(bulk_import(world))
    spawn(legacy_crawler(world))
    if world.scenario.incident is not None:
        spawn(incident(world))
        spawn(runaway_agent(world))


# --- conversations ------------------------------------------------------------------------


def user_requests(world: World) -> Process:
    """User requests arrive at the orchestrator (Poisson arrivals)."""
    rng = world.dice.stream()
    yield 0.3
    for n in itertools.count():
        world.sim.spawn(conversation(world, n))
        yield rng.expovariate(1.0 / world.scenario.request_interval)


def conversation(world: World, n: int) -> Process:
    """One user request handled end to end: one trace, ``gen_ai.conversation.id`` ``conv-N``."""
    rng = world.dice.stream()
    me = ORCHESTRATOR
    metrics = world.work(me)
    cid = f"conv-{n:06d}"
    world.open_conversations += 1
    metrics.set_queue_length(world.open_conversations)
    try:
        with world.workflow(me, "conversation", cid), world.turn(me, cid):
            try:
                with metrics.task("handle_request"):
                    outcome = yield from _handle_request(world, rng, cid)
            except DemoFailure as failure:
                log.warning(
                    "conversation %s failed: %s",
                    cid,
                    failure,
                    extra={"conversation_id": cid, "outcome": "failed"},
                )
                raise
            log.info(
                "conversation %s %s",
                cid,
                outcome,
                extra={"conversation_id": cid, "outcome": outcome},
            )
    except DemoFailure:
        pass  # counted (task failed, span in error) and logged above
    finally:
        world.open_conversations -= 1
        metrics.set_queue_length(world.open_conversations)


def _handle_request(world: World, rng: random.Random, cid: str) -> Step:
    me = ORCHESTRATOR
    metrics = world.work(me)
    replies = world.sim.inbox()
    yield from think(world, rng, me)  # planning
    metrics.record_decision("route", confidence=_quality(rng), options_considered=rng.randint(2, 5))
    team = RESEARCHERS if rng.random() < TWO_RESEARCHERS_SHARE else (rng.choice(RESEARCHERS),)
    topic = rng.choice(TOPICS)
    for agent in team:
        body = {"conversation_id": cid, "topic": topic}
        world.send(me, agent, "delegate", body, _size(rng, 600), reply_to=replies)
    findings: list[Message] = []
    with metrics.waiting_on_dependency():
        for _ in team:
            answer = yield replies
            world.received(me, answer)
            findings.append(answer)
    if len(findings) == 2 and world.dice.chance(rng, "conflict", world.scenario.odds.conflict):
        yield from _settle_conflict(world, rng, cid, findings, replies)
    world.send(
        me, WRITER, "draft_request", {"conversation_id": cid}, _size(rng, 12_000), reply_to=replies
    )
    with metrics.waiting_on_dependency():
        draft = yield replies
    world.received(me, draft)
    if not draft.body["ok"]:
        raise DraftRejected(draft.body["error"])
    if rng.random() >= PUBLISH_SHARE:
        return "answered"
    world.send(
        me,
        PUBLISHER,
        "publish_request",
        {"conversation_id": cid},
        _size(rng, 20_000),
        reply_to=replies,
    )
    with metrics.waiting_on_dependency():
        published = yield replies
    world.received(me, published)
    return f"publish {published.body['outcome']}"


def _settle_conflict(
    world: World, rng: random.Random, cid: str, findings: list[Message], replies: Inbox
) -> Step:
    """The researchers disagree: one of them reconciles, which works out or does not."""
    me = ORCHESTRATOR
    metrics = world.work(me)
    conflict_id = f"{cid}-findings"
    metrics.conflict_started(conflict_id)
    world.emit(
        EventType.VFS_CONFLICT,
        me,
        {"path": f"/reports/{cid}.md", "agents": [f.sender.did for f in findings]},
    )
    body = {"conversation_id": cid}
    world.send(me, findings[0].sender, "reconcile", body, _size(rng, 3_000), reply_to=replies)
    answer = yield replies
    world.received(me, answer)
    if world.dice.chance(rng, "conflict_failed", world.scenario.odds.conflict_failed):
        metrics.conflict_failed(conflict_id)
    else:
        metrics.conflict_resolved(conflict_id)


def call_tool(
    world: World,
    rng: random.Random,
    me: AgentSpec,
    tool_agent: AgentSpec,
    tool: str,
    cid: str | None,
    replies: Inbox,
) -> Step:
    """Ask ``tool_agent`` to run ``tool``; back off and retry once when rate-limited."""
    outcome = RATE_LIMITED
    for _ in range(2):
        body = {"conversation_id": cid, "tool": tool}
        world.send(me, tool_agent, "tool_request", body, _size(rng, 400), reply_to=replies)
        with world.work(me).waiting_on_dependency():
            answer = yield replies
        world.received(me, answer)
        outcome = answer.body["outcome"]
        if outcome != RATE_LIMITED:
            break
        yield rng.uniform(0.5, 1.5)
    return outcome


def researcher(world: World, me: AgentSpec) -> Process:
    rng = world.dice.stream()
    box = world.inbox(me)
    metrics = world.work(me)
    tools = world.sim.inbox()
    while True:
        request = yield box
        cid = request.conversation_id
        with world.handling(me, request):
            if request.type == "reconcile":
                with metrics.task("reconcile"):
                    yield rng.uniform(1.0, 4.0)
                world.reply(me, request, "reconciled", {}, _size(rng, 2_000))
                continue
            with metrics.task("research"):
                metrics.record_decision(
                    "source_selection",
                    confidence=_quality(rng),
                    options_considered=rng.randint(3, 8),
                )
                for _ in range(rng.randint(1, 3)):
                    yield from call_tool(
                        world, rng, me, TOOL_SEARCH, rng.choice(SEARCH_TOOLS), cid, tools
                    )
                    yield from think(world, rng, me)  # reading what came back
                metrics.record_task_quality("research", _quality(rng))
            world.reply(me, request, "findings", {}, _size(rng, 8_000))


def writer(world: World) -> Process:
    rng = world.dice.stream()
    me = WRITER
    box = world.inbox(me)
    metrics = world.work(me)
    tools = world.sim.inbox()
    while True:
        request = yield box
        cid = request.conversation_id
        with world.handling(me, request):
            result: dict[str, Any] = {"ok": True}
            try:
                with metrics.task("write"):
                    metrics.record_decision(
                        "outline", confidence=_quality(rng), options_considered=rng.randint(1, 4)
                    )
                    if rng.random() < CHART_SHARE:
                        yield from call_tool(world, rng, me, TOOL_CODE, "code_exec", cid, tools)
                    yield from think(world, rng, me)  # drafting
                    if world.dice.chance(rng, "task_failure", world.scenario.odds.task_failure):
                        raise DraftRejected("draft failed its fact check")
                    yield from call_tool(world, rng, me, TOOL_CODE, "write_file", cid, tools)
                    metrics.record_task_quality("write", _quality(rng))
            except DraftRejected as rejected:
                result = {"ok": False, "error": str(rejected)}
            world.reply(me, request, "draft", result, _size(rng, 15_000))


def tool_agent(world: World, me: AgentSpec) -> Process:
    """Runs tools for other agents, each call checked by governance first."""
    rng = world.dice.stream()
    box = world.inbox(me)
    calls = itertools.count()
    while True:
        request = yield box
        with world.handling(me, request):
            outcome = yield from _run_tool(
                world,
                rng,
                me,
                request.body["tool"],
                f"call-{me.name}-{next(calls)}",
                request.conversation_id,
            )
            world.reply(me, request, "tool_result", {"outcome": outcome}, _size(rng, 6_000))


def _run_tool(
    world: World, rng: random.Random, me: AgentSpec, tool: str, call_id: str, cid: str | None
) -> Step:
    """One tool call: ok, error (a failed task), or a policy refusal (a completed task)."""
    try:
        with world.work(me).task("tool_call"):
            decision = world.decide(rng, me, tool)
            try:
                with execute_tool(
                    tool,
                    call_id=call_id,
                    tool_type="function",
                    conversation_id=cid,
                    tracer_provider=world.inst.tracer_provider(me.name),
                    metrics=world.inst.genai,
                ):
                    if decision == BLOCKED:
                        raise PolicyDenied(f"policy denies {tool} to {me.did}")
                    if decision == RATE_LIMITED:
                        raise RateLimited(f"{me.did} is over its {tool} budget")
                    yield min(20.0, rng.lognormvariate(math.log(0.4), 0.8))
                    if world.dice.chance(rng, "tool_error", world.scenario.odds.tool_error):
                        raise ToolTimeout(f"{tool} did not answer in time")
            except (PolicyDenied, RateLimited):
                return decision
    except ToolTimeout:
        return "error"
    return "ok"


# --- sagas --------------------------------------------------------------------------------


def publisher(world: World) -> Process:
    rng = world.dice.stream()
    me = PUBLISHER
    box = world.inbox(me)
    metrics = world.work(me)
    while True:
        request = yield box
        with world.handling(me, request):
            outcome = "completed"
            try:
                with metrics.task("publish"):
                    outcome = yield from run_saga(
                        world, rng, me, f"publish-{request.conversation_id}", PUBLISH_STEPS
                    )
                    if outcome != "completed":
                        raise DemoFailure(f"publish saga {outcome}")
            except DemoFailure:
                pass  # the task counts the failure; the orchestrator gets the outcome
            world.reply(me, request, "published", {"outcome": outcome}, _size(rng, 500))


def maintenance(world: World) -> Process:
    """The publisher's own sagas (key rotation, reindexing), beside the publish requests."""
    rng = world.dice.stream()
    delays = itertools.chain(
        (1.0, 7.0), iter(lambda: rng.expovariate(1.0 / world.scenario.saga_interval), None)
    )
    for k, delay in enumerate(delays):
        yield delay
        name, steps = MAINTENANCE_SAGAS[k % len(MAINTENANCE_SAGAS)]
        world.sim.spawn(_maintenance_saga(world, f"{name}-{k:05d}", steps))


def _maintenance_saga(world: World, saga_id: str, steps: Steps) -> Process:
    rng = world.dice.stream()
    with world.turn(PUBLISHER, None):
        yield from run_saga(world, rng, PUBLISHER, saga_id, steps)


def run_saga(world: World, rng: random.Random, me: AgentSpec, saga_id: str, steps: Steps) -> Step:
    """Run ``steps`` as a saga; returns ``completed``, ``failed`` (compensated) or ``escalated``.

    The first step is a reservation that does not fail here, so a failure
    always has something to compensate. A step whose outcome is unknown (it
    timed out) cannot be compensated safely: the saga escalates and the step
    is left open, which the span exporter counts as an unfinished span.
    """
    if world.saga_runner is not None:
        return (yield from world.saga_runner(world, rng, me, saga_id, steps))
    odds = world.scenario.odds
    world.emit(EventType.SAGA_CREATED, me, {"saga_id": saga_id, "steps": len(steps)})
    committed: list[tuple[str, str, str | None]] = []
    for index, (step_id, action, compensation) in enumerate(steps):
        ids = {"saga_id": saga_id, "step_id": step_id, "step_action": action}
        world.emit(EventType.SAGA_STEP_STARTED, me, ids)
        if index > 0 and world.dice.chance(rng, "step_in_doubt", odds.step_in_doubt):
            yield STEP_TIMEOUT
            reason = f"step {step_id} timed out after {STEP_TIMEOUT:.0f}s; outcome unknown, not compensated"
            world.emit(EventType.SAGA_ESCALATED, me, {"saga_id": saga_id, "reason": reason})
            log.warning("saga %s escalated: %s", saga_id, reason, extra={"saga_id": saga_id})
            return "escalated"
        yield min(30.0, rng.lognormvariate(math.log(0.8), 0.6))
        if index > 0 and world.dice.chance(rng, "step_failure", odds.step_failure):
            error = rng.choice(("connection_timeout", "quota_exceeded", "validation_failed"))
            world.emit(
                EventType.SAGA_STEP_FAILED,
                me,
                {**ids, "error": error, "reason": f"{action} failed"},
            )
            yield from _compensate(world, rng, me, saga_id, committed, step_id)
            world.emit(
                EventType.SAGA_FAILED, me, {"saga_id": saga_id, "reason": f"{step_id}: {error}"}
            )
            return "failed"
        world.emit(EventType.SAGA_STEP_COMMITTED, me, {**ids, "result": "ok"})
        committed.append((step_id, action, compensation))
    world.emit(EventType.SAGA_COMPLETED, me, {"saga_id": saga_id})
    return "completed"


def _compensate(
    world: World,
    rng: random.Random,
    me: AgentSpec,
    saga_id: str,
    committed: list[tuple[str, str, str | None]],
    failed_step: str,
) -> Step:
    """Undo the committed steps, newest first; each undo is a timed compensation span."""
    for step_id, _, compensation in reversed(committed):
        if compensation is None:
            continue
        undo = {"saga_id": saga_id, "step_id": f"{step_id}-undo", "step_action": compensation}
        world.emit(EventType.SAGA_STEP_STARTED, me, undo)
        yield rng.uniform(0.2, 1.5)
        world.emit(EventType.SAGA_COMPENSATING, me, {**undo, "reason": f"{failed_step} failed"})


# --- rings, trust, background ---------------------------------------------------------------


def short_elevations(world: World) -> Process:
    """Researchers and the writer are elevated now and then, briefly."""
    rng = world.dice.stream()
    yield 2.0
    candidates = (*RESEARCHERS, WRITER)
    while True:
        idle = [a for a in candidates if a.did not in world.elevated]
        if idle:
            agent = rng.choice(idle)
            world.sim.spawn(_short_elevation(world, agent, rng.uniform(5.0, 45.0)))
        if world.dice.chance(rng, "elevation_denied", world.scenario.odds.elevation_denied):
            world.deny_elevation(rng.choice((TOOL_SEARCH, TOOL_CODE)), "insufficient_trust")
        yield rng.expovariate(1.0 / world.scenario.short_elevation_interval)


def _short_elevation(world: World, agent: AgentSpec, hold: float) -> Process:
    rng = world.dice.stream()
    world.elevate(agent, "needs the private corpus")
    yield hold
    expired = world.dice.chance(rng, "elevation_expires", world.scenario.odds.elevation_expires)
    world.demote(agent, "elevation window over" if expired else "task done", expired=expired)


def routine_elevation(world: World) -> Process:
    """The publisher holds a long elevation for its release window, over and over.

    Steady: 240 s on, 30 s off, under ElevationTooLong's 300 s. In the incident
    scenario the incident owns the publisher's ring until it ends.
    """
    scenario = world.scenario
    if scenario.incident is not None:
        if scenario.incident.duration is None:
            return
        yield scenario.incident.duration + scenario.long_elevation_rest
    else:
        yield 5.0
    while True:
        world.elevate(PUBLISHER, "release window")
        yield scenario.long_elevation
        world.demote(PUBLISHER, "release window closed")
        yield scenario.long_elevation_rest


def stray_breaches(world: World) -> Process:
    """Now and then an agent tries a tool above its ring (steady: far below the alert)."""
    rng = world.dice.stream()
    yield 4.0
    candidates = (TOOL_SEARCH, TOOL_CODE, *RESEARCHERS)
    while True:
        world.breach(rng, rng.choice(candidates), rng.choice(PRIVILEGED_TOOLS))
        yield rng.expovariate(1.0 / world.scenario.stray_breach_interval)


def trust_drift(world: World) -> Process:
    rng = world.dice.stream()
    while True:
        yield world.scenario.trust_interval
        world.drift_trust(rng)


def bulk_import(world: World) -> Process:
    """The writer imports a document corpus: a burst of events in one go.

    The burst is larger than the compliance mirror's audit queue (see the
    runner), so the mirror drops and counts while the primary trail keeps up.
    """
    rng = world.dice.stream()
    yield 2.0
    while True:
        with world.turn(WRITER, None):
            for i in range(BULK_IMPORT_FILES):
                path = f"/corpus/doc-{i:04d}.md"
                world.emit(EventType.VFS_WRITE, WRITER, {"path": path, "bytes": _size(rng, 9_000)})
            world.emit(EventType.VFS_SNAPSHOT, WRITER, {"files": BULK_IMPORT_FILES})
            log.info("bulk import of %d documents", BULK_IMPORT_FILES)
        yield world.scenario.bulk_import_interval


def legacy_crawler(world: World) -> Process:
    """A legacy batch job with old, careless instrumentation, running now and then.

    Each page it crawls emits a malformed event (a ring named by a string, a
    saga step without a saga id), which the collectors drop and count, and is
    recorded as a task labelled with the page's URL: unbounded label values,
    folded into ``__overflow__`` by its metric group's cardinality guard.
    """
    rng = world.dice.stream()
    metrics = world.inst.legacy_work
    pages = LEGACY_FIRST_RUN_PAGES
    malformed = itertools.count()
    yield 1.0
    while True:
        world.join(LEGACY)
        for _ in range(pages):
            world.emit_raw(_malformed_event(world, next(malformed)))
            url = f"https://intranet.example/{rng.choice(SECTIONS)}/{rng.randint(1, 99_999)}"
            with metrics.task(f"crawl {url}"):
                yield rng.uniform(0.3, 1.5)
        world.leave(LEGACY)
        pages = rng.randint(3, 8)
        yield rng.expovariate(1.0 / world.scenario.legacy_interval)


def _malformed_event(world: World, n: int) -> HypervisorEvent:
    session = world.sessions.get(LEGACY.did)
    if n % 2 == 0:
        return HypervisorEvent(
            EventType.RING_ASSIGNED,
            session_id=session,
            agent_did=LEGACY.did,
            payload={"ring": "sandbox"},
        )
    return HypervisorEvent(
        EventType.SAGA_STEP_STARTED,
        session_id=session,
        agent_did=LEGACY.did,
        payload={"step_id": "crawl"},
    )


# --- the incident -----------------------------------------------------------------------------


def incident(world: World) -> Process:
    """Drive the three tutorial alerts (see :mod:`meshwatch.demo.scenario`), then recover."""
    rng = world.dice.stream()
    plan = world.scenario.incident
    assert plan is not None
    started = datetime.now(UTC) - timedelta(seconds=plan.elevation_backdate)
    world.elevate(PUBLISHER, "emergency hotfix", started=started)
    log.warning(
        "incident: %s attempting shell_exec %.1f/s, %s elevated since %s, policy backend degraded",
        TOOL_CODE.did,
        plan.breach_rate,
        PUBLISHER.did,
        started.isoformat(timespec="seconds"),
    )
    killed = False
    while plan.active(world.sim.now):
        if not killed and world.was_killed(TOOL_CODE):
            # Remediation killed the rogue agent: its breaches end with it, and the
            # restarted agent behaves. The rest of the incident runs its course.
            killed = True
            log.warning("incident: %s was killed; restarting it in a new session", TOOL_CODE.did)
            world.restart(TOOL_CODE)
        if not killed:
            world.breach(rng, TOOL_CODE, "shell_exec")
        gap = rng.expovariate(plan.breach_rate)
        if plan.duration is not None:
            gap = min(gap, max(0.0, plan.duration - world.sim.now))
        yield gap
    world.demote(PUBLISHER, "incident resolved")
    log.warning(
        "incident over: breaches stopped, %s demoted, policy backend healthy", PUBLISHER.did
    )
