"""The demo process: real instrumentation wired up, the fleet advanced in real time, a clean stop.

:class:`Demo` owns every part and the order they start and stop in:

* the event bus with the standard collectors (:func:`~meshwatch.instrumentation.instrument`),
  governance and work metrics, GenAI duration histograms;
* two audit trails in SQLite: the primary one, and a "compliance mirror"
  deliberately sized too small for the bulk import's burst, so the audit drop
  counter shows what an undersized trail that never waits does (block_timeout=0:
  drop and count);
* with an OTLP endpoint, one tracer provider per agent role (its
  ``service.name``), each behind the bounded batch processor: a dead or slow
  collector costs the fleet nothing but counted drops;
* ``/metrics`` on ``addr:port`` (loopback by default).

The loop maps virtual time to wall-clock seconds since start, sleeping at most
``TICK`` at a time, so an idle demo wakes a few times a second and a stop
request is seen within a tick. Stopping ends every agent process (their open
spans end), closes the server, then flushes spans and audit trails within
``SHUTDOWN_TIMEOUT`` seconds in total, whatever state the collector is in.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, ProcessCollector

from meshwatch.demo.agents import bootstrap
from meshwatch.demo.llm import new_llm_metrics
from meshwatch.demo.remediation import KillSimulatedAgent
from meshwatch.demo.scenario import Scenario
from meshwatch.demo.world import LEGACY, ORCHESTRATOR, PUBLISHER, SERVICES, Instruments, World
from meshwatch.instrumentation.audit import AuditTrail
from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.instrumentation.genai import GENAI_METRICS
from meshwatch.instrumentation.governance import GovernanceMetrics
from meshwatch.instrumentation.otel import SPAN_EXPORT_METRICS, OTelSpanSink, configure_tracing
from meshwatch.instrumentation.prometheus import MetricsServer, serve_metrics
from meshwatch.instrumentation.stores import CardinalityGuard, MetricFamilySnapshot, MetricSource
from meshwatch.instrumentation.wiring import Instrumented, instrument
from meshwatch.instrumentation.work_metrics import AgentMetrics
from meshwatch.remediation import RemediationReceiver, start_remediation
from meshwatch.settings.remediation import RemediationSettings

log = logging.getLogger("meshwatch.demo")

TICK = 0.25
# Steps run between two looks at stop and --duration: a few milliseconds of
# work, so a fleet that cannot keep up with real time still stops at once.
STEP_BUDGET = 1_000
SHUTDOWN_TIMEOUT = 5.0
SERVICE_NAMESPACE = "meshwatch-demo"
# Spans reach Tempo a second after they end, not the SDK's default five.
EXPORT_DELAY_MILLIS = 1000
# The legacy crawler's work metrics keep this many series per metric; the rest
# of its URL-labelled tasks fold into __overflow__ (and are counted).
LEGACY_SERIES_CAP = 5
# The demo never queries its bus: keep its retained log (and memory) small.
BUS_RETENTION = 20_000
AUDIT_MAX_ROWS = 200_000
# The scheduler thread emits: a stuck disk may hold it this long, not the
# library's 30 s, so a SIGTERM is still honoured within seconds.
AUDIT_BLOCK_TIMEOUT = 2.0
MIRROR_QUEUE_SIZE = 64
MIRROR_MAX_ROWS = 20_000
BRIDGE_FAILS_EVERY = 30


@dataclass(frozen=True)
class DemoConfig:
    """What ``meshwatch demo`` was asked to do."""

    scenario: Scenario
    metrics_port: int = 8000
    addr: str = "127.0.0.1"
    duration: float | None = None
    otlp_endpoint: str | None = None
    audit_dir: Path | None = None
    # With settings, the demo serves the remediation receiver (its kill_agent
    # acts on the simulated fleet); ``remediation_port`` overrides their port.
    remediation: RemediationSettings | None = None
    remediation_port: int | None = None

    def __post_init__(self) -> None:
        if self.duration is not None and not self.duration > 0:
            raise ValueError(f"duration must be positive seconds, got {self.duration}")
        if not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"metrics port must be 0-65535, got {self.metrics_port}")


class LegacyMetricsBridge:
    """The legacy crawler's metrics, read through a bridge that times out now and then.

    It fails on the first scrape (a cold connection) and every
    ``fail_every``-th after. The Prometheus adapter skips a source that raises,
    logs it (rate-limited) and counts it in ``meshwatch_scrape_errors_total``,
    and serves everything else: one broken source never blanks a scrape.
    """

    def __init__(self, source: MetricSource, *, fail_every: int = BRIDGE_FAILS_EVERY) -> None:
        self._source = source
        self._fail_every = fail_every
        self._scrapes = itertools.count()

    def metric_families(self) -> Iterable[MetricFamilySnapshot]:
        if next(self._scrapes) % self._fail_every == 0:
            raise TimeoutError("legacy metrics bridge timed out")
        return self._source.metric_families()


class Demo:
    """The running demo: :meth:`start`, :meth:`run` until stopped, :meth:`close`."""

    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self.world: World | None = None
        self.server: MetricsServer | None = None
        self.instrumented: Instrumented | None = None
        self.providers: dict[str, TracerProvider] = {}
        self.trails: list[AuditTrail] = []
        self.receiver: RemediationReceiver | None = None
        self._own_audit_dir: Path | None = None
        self._closed = False

    @property
    def url(self) -> str:
        """The /metrics URL (with the real port when started on port 0)."""
        if self.server is None:
            raise RuntimeError("the demo is not started")
        return self.server.url

    def start(self) -> None:
        """Build the instrumentation and the fleet, and serve /metrics. Cleans up on failure."""
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        config = self.config
        audit_dir = config.audit_dir
        if audit_dir is None:
            audit_dir = self._own_audit_dir = Path(tempfile.mkdtemp(prefix="meshwatch-demo-"))
        audit_dir.mkdir(parents=True, exist_ok=True)
        if config.otlp_endpoint:
            self.providers = {
                service: configure_tracing(
                    service,
                    endpoint=config.otlp_endpoint,
                    resource_attributes={"service.namespace": SERVICE_NAMESPACE},
                    schedule_delay_millis=EXPORT_DELAY_MILLIS,
                    set_global=False,
                )
                for service in SERVICES
            }
        bus = HypervisorEventBus(max_events=BUS_RETENTION)
        governance = GovernanceMetrics()
        llm = new_llm_metrics()
        work = AgentMetrics(ORCHESTRATOR.did)
        legacy_work = AgentMetrics(LEGACY.did, guard=CardinalityGuard(max_series=LEGACY_SERIES_CAP))
        primary = AuditTrail(
            audit_dir / "audit.db", max_rows=AUDIT_MAX_ROWS, block_timeout=AUDIT_BLOCK_TIMEOUT
        )
        self.trails.append(primary.attach(bus))
        mirror = AuditTrail(  # never waits for room: shows what an undersized trail drops
            audit_dir / "audit-mirror.db",
            queue_size=MIRROR_QUEUE_SIZE,
            max_rows=MIRROR_MAX_ROWS,
            block_timeout=0,
        )
        self.trails.append(mirror.attach(bus))
        sink = OTelSpanSink(self.providers[PUBLISHER.name]) if self.providers else None
        self.instrumented = instrument(
            bus,
            governance=governance,
            span_sink=sink,
            extra_sources=(
                work,
                LegacyMetricsBridge(legacy_work),
                GENAI_METRICS,
                llm,
                SPAN_EXPORT_METRICS,
                primary,
                mirror,
            ),
        )
        instruments = Instruments(
            bus,
            governance,
            work,
            legacy_work,
            tracers=dict(self.providers),
            tracing=bool(self.providers),
            llm=llm,
        )
        self.world = self.make_world(config.scenario, instruments)
        self.world.sim.spawn(bootstrap(self.world))
        sources: list[MetricSource] = list(self.instrumented)
        if config.remediation is not None:
            self.receiver = start_remediation(
                config.remediation,
                [KillSimulatedAgent(self.world)],
                bus=bus,
                port=config.remediation_port,
            )
            sources.append(self.receiver)
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        self.server = serve_metrics(
            config.metrics_port, config.addr, registry=registry, sources=sources
        )

    def make_world(self, scenario: Scenario, instruments: Instruments) -> World:
        """The world the fleet lives in; a runtime demo puts it on a real runtime."""
        return World(scenario, instruments)

    def run(self, stop: threading.Event) -> None:
        """Advance the fleet in real time until ``stop`` is set or the duration is over."""
        if self.world is None:
            raise RuntimeError("start() the demo before run()")
        sim = self.world.sim
        duration = self.config.duration
        began = time.monotonic()
        while not stop.is_set():
            now = time.monotonic() - began
            if duration is not None and now >= duration:
                break
            if sim.run_until(now, max_steps=STEP_BUDGET) >= STEP_BUDGET:
                continue  # behind real time: catch up, but look at stop and duration first
            due = sim.next_time()
            wait = TICK if due is None else min(TICK, due - now)
            if duration is not None:
                wait = min(wait, duration - now)
            stop.wait(max(wait, 0.0))

    def close(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Stop everything, flushing spans and audit trails within ``timeout`` seconds in total."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        if self.world is not None:
            self.world.close()
        if self.receiver is not None:
            self.receiver.stop()
        if self.server is not None:
            self.server.close()
        if self.instrumented is not None:
            self.instrumented.close()
        _within(deadline, [p.shutdown for p in self.providers.values()], "span export")
        _within(deadline, [t.close for t in self.trails], "audit trail")
        if self._own_audit_dir is not None:
            shutil.rmtree(self._own_audit_dir, ignore_errors=True)


def _within(deadline: float, closers: list[Callable[[], object]], what: str) -> None:
    """Run ``closers`` in parallel threads; give up on the stragglers at ``deadline``.

    The threads are daemons: a collector that never answers cannot keep the
    process alive past its shutdown budget.
    """
    threads = [
        threading.Thread(target=closer, name=f"meshwatch-demo-close-{i}", daemon=True)
        for i, closer in enumerate(closers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = sum(thread.is_alive() for thread in threads)
    if stuck:
        log.warning(
            "%s: %d of %d did not finish before the shutdown deadline", what, stuck, len(threads)
        )
