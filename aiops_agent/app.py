"""The composition root: the only module that constructs things.

Lifecycle (DESIGN.md): signal handlers first; then an AsyncExitStack for clients and the HTTP
server (torn down in reverse); then a TaskGroup for the loops. SIGTERM flips readiness at once,
stops receiving, drains in-flight work within a budget and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import structlog

from aiops_agent import __version__
from aiops_agent.actions.registry import CATALOG, ActionDeps, BoundCatalog
from aiops_agent.analysis.factory import build_analyzer, build_bedrock_clients, build_rules
from aiops_agent.aws.calendars import CalendarReader
from aiops_agent.aws.clients import AwsClients
from aiops_agent.aws.identity import own_principals
from aiops_agent.aws.origin import InstanceOrigin
from aiops_agent.aws.tags import TagReader
from aiops_agent.aws.trails import management_trail
from aiops_agent.console.web import build_console
from aiops_agent.domain.ports import (
    ActionCatalog,
    Analyzer,
    ControlStore,
    Coordination,
    IncidentStore,
    Notifier,
)
from aiops_agent.engine.clock import SystemClock
from aiops_agent.engine.engine import Engine
from aiops_agent.engine.gate import PolicyGate, TagSource
from aiops_agent.engine.planner import Planner
from aiops_agent.engine.runner import CommandRunner
from aiops_agent.intake.envelope import InvalidEvent, parse_event
from aiops_agent.logs import LogAnalyzer
from aiops_agent.logs.assessor import build_log_assessor
from aiops_agent.notify.sns import SnsNotifier
from aiops_agent.obs.health import Health
from aiops_agent.obs.http import start_http_server
from aiops_agent.obs.metrics import Metrics
from aiops_agent.settings import Settings
from aiops_agent.sources.sqs import SqsConsumer
from aiops_agent.sources.sweeper import Sweeper
from aiops_agent.store.control import DynamoControlStore
from aiops_agent.store.coordination import DynamoCoordination
from aiops_agent.store.dynamodb import DynamoIncidentStore

log = structlog.get_logger(__name__)


@dataclass
class Components:
    settings: Settings
    clients: AwsClients
    metrics: Metrics
    health: Health
    store: IncidentStore
    notifier: Notifier
    engine: Engine
    clock: SystemClock
    gate: PolicyGate
    control: ControlStore


def build_clients(settings: Settings, metrics: Metrics | None = None) -> AwsClients:
    return AwsClients(
        endpoint_url=settings.aws_endpoint_url,
        region=settings.region,
        max_attempts=settings.aws_max_attempts,
        on_call=metrics.on_aws_call if metrics is not None else None,
    )


def build_store(settings: Settings, clients: AwsClients) -> DynamoIncidentStore:
    return DynamoIncidentStore(
        clients,
        settings.incident_table,
        ttl_days=settings.incident_ttl_days,
        step_lease=timedelta(seconds=settings.step_lease_seconds),
        audit_table=settings.patterns_table,
        lease_table=settings.patterns_table,  # DynamoCoordination's (build_components)
    )


def build_components(
    settings: Settings,
    clients: AwsClients,
    metrics: Metrics,
    *,
    store: IncidentStore | None = None,
    notifier: Notifier | None = None,
    coordination: Coordination | None = None,
    catalog: ActionCatalog | None = None,
    analyzer: Analyzer | None = None,
    bedrock_clients: AwsClients | None = None,
    own_principals: Sequence[str] = (),
    control: ControlStore | None = None,
    tags: TagSource | None = None,
    monotonic: Callable[[], float] | None = None,
    trail_logged: bool | None = None,
) -> Components:
    """Everything the daemon runs on. `monotonic` drives the policy's caches (a test's clock)."""
    clock = SystemClock()
    store = store or build_store(settings, clients)
    control = control or DynamoControlStore(clients, settings.patterns_table)
    ticks = monotonic or time.monotonic
    gate = PolicyGate(
        control=control,
        store=store,
        tags=tags or TagReader(clients, ttl_s=settings.tags_cache_seconds, monotonic=ticks),
        clock=clock,
        settings=settings.autonomy(),
        metrics=metrics,
        calendars=CalendarReader(
            clients,
            settings.change_calendars,
            ttl_s=settings.control_refresh_seconds,
            monotonic=ticks,
        ),
        refresh_s=settings.control_refresh_seconds,
        monotonic=ticks,
    )
    notifier = notifier or SnsNotifier(clients, settings.sns_topic_arn)
    analyzer = analyzer or build_analyzer(
        settings,
        clients,
        metrics,
        store,
        bedrock_clients=bedrock_clients,
        rules=build_rules(settings, own_principals),
    )
    catalog = catalog or BoundCatalog(
        CATALOG,
        ActionDeps(
            clients=clients,
            codebuild_project=settings.codebuild_project,
            verify_timeout_seconds=settings.verify_timeout_seconds,
        ),
    )
    coordination = coordination or DynamoCoordination(clients, settings.patterns_table)
    planner = Planner(
        store=store,
        coordination=coordination,
        catalog=catalog,
        notifier=notifier,
        clock=clock,
        metrics=metrics,
        config=dataclasses.replace(settings.planner_config(), trail_logged=trail_logged),
        holds=gate,
        origin=InstanceOrigin(clients),
    )
    runner = CommandRunner(
        analyzer=analyzer,
        catalog=catalog,
        planner=planner,
        notifier=notifier,
        gate=gate,
        config=settings.runner_config(),
        clock=clock,
    )
    engine = Engine(
        store=store,
        runner=runner,
        clock=clock,
        policy=settings.policy(),
        metrics=metrics,
        coordination=coordination,
        step_lease=timedelta(seconds=settings.step_lease_seconds),
    )
    return Components(
        settings=settings,
        clients=clients,
        metrics=metrics,
        health=Health(metrics=metrics),
        store=store,
        notifier=notifier,
        engine=engine,
        clock=clock,
        gate=gate,
        control=control,
    )


def event_handler(engine: Engine) -> Callable[[str], Awaitable[None]]:
    async def handle(body: str) -> None:
        for event in parse_event(body):
            await engine.handle_event(event)

    return handle


async def run_daemon(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    install_signal_handlers: bool = True,
    on_started: Callable[[int], None] | None = None,
    metrics: Metrics | None = None,
    catalog: ActionCatalog | None = None,
) -> int:
    """Run until `stop` is set (or SIGTERM/SIGINT); returns the exit code.

    `metrics` and `catalog` let a benchmark or a test observe the daemon and give it actions of
    its own; production passes neither.
    """
    if settings.queue_url is None:
        raise ValueError("AIOPS_QUEUE_URL is required for `run`")
    stop = stop or asyncio.Event()
    metrics = metrics or Metrics()
    loop = asyncio.get_running_loop()
    if install_signal_handlers:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    try:
        async with contextlib.AsyncExitStack() as stack:
            clients = await stack.enter_async_context(build_clients(settings, metrics))
            bedrock_clients = build_bedrock_clients(settings, metrics)
            if bedrock_clients is not None:
                await stack.enter_async_context(bedrock_clients)
            trail = await management_trail(clients)
            if trail.logging is False:
                log.warning("startup.no_cloudtrail_trail", detail=trail.detail)
            elif trail.logging is None:
                log.warning("startup.cloudtrail_unknown", detail=trail.detail)
            parts = build_components(
                settings,
                clients,
                metrics,
                catalog=catalog,
                bedrock_clients=bedrock_clients,
                own_principals=await own_principals(clients),
                trail_logged=trail.logging,
            )
            console = build_console(
                settings,
                parts.store,
                parts.engine.answer_review,
                metrics,
                control=parts.control,
                now=parts.clock.now,
            )
            http = await start_http_server(
                parts.health, metrics, settings.http_host, settings.http_port, console
            )
            stack.push_async_callback(http.close)
            facts = await SqsConsumer.queue_facts(clients, settings.queue_url)
            consumer = SqsConsumer(
                clients=clients,
                queue_url=settings.queue_url,
                handler=event_handler(parts.engine),
                metrics=metrics,
                health=parts.health,
                poison=(InvalidEvent,),
                dead_letter_url=facts.dead_letter_url,
                visibility_timeout=facts.visibility_timeout,
                max_concurrency=settings.max_concurrency,
                wait_seconds=settings.receive_wait_seconds,
                drain_seconds=settings.drain_seconds,
                retry_base_s=settings.retry_base_seconds,
                retry_max_s=settings.retry_max_seconds,
            )
            sweeper = Sweeper(
                store=parts.store,
                engine=parts.engine,
                clock=parts.clock,
                health=parts.health,
                period=settings.sweep_seconds,
                stop_grace_s=settings.drain_seconds,
            )
            parts.health.mark_started()
            log.info(
                "agent.started",
                version=__version__,
                queue_url=settings.queue_url,
                http_port=http.port,
                mode=settings.mode,
                analyzer=settings.analyzer,
                dead_letter_queue=facts.dead_letter_url,
            )
            if on_started is not None:
                on_started(http.port)
            async with asyncio.TaskGroup() as group:
                group.create_task(_mark_draining_on(stop, parts.health))
                group.create_task(consumer.run(stop))
                group.create_task(sweeper.run(stop))
                group.create_task(parts.gate.watch(stop))
                log_analyzer = LogAnalyzer(
                    settings,
                    clients,
                    None,
                    parts.notifier,
                    metrics,
                    parts.health,
                    parts.clock,
                    assessor=build_log_assessor(settings, bedrock_clients or clients, metrics),
                )
                group.create_task(log_analyzer.run(stop))
    finally:
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
    log.info("agent.stopped")
    return 0


async def _mark_draining_on(stop: asyncio.Event, health: Health) -> None:
    await stop.wait()
    health.mark_draining()
    log.info("agent.draining")
