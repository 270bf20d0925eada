"""The log analyzer on Logs Insights as AWS runs it (the proxy's `insights` rule): queries that
stay Running, the account's concurrency limit, StopQuery. moto finishes every query inside
StartQuery, so without the proxy none of this is ever exercised."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.logs import AnalyzerConfig, LogAnalyzer
from aiops_agent.logs.analyzer import LOOP_NAME
from aiops_agent.logs.queries import InsightsSource
from aiops_agent.notify.sns import LogNotifier
from aiops_agent.obs.health import Health
from aiops_agent.obs.metrics import Metrics
from aiops_agent.settings import Settings
from aiops_agent.store.tables import PATTERNS_ATTRIBUTE_DEFINITIONS, PATTERNS_KEY_SCHEMA
from tests.aws_proxy import AwsProxy

pytestmark = pytest.mark.timeout(120)


class NowClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Rig:
    proxy: AwsProxy
    through: AwsClients
    analyzer: LogAnalyzer
    health: Health
    metrics: Metrics
    table: str
    group: str


@pytest.fixture
async def rig(aws: AwsClients, moto_endpoint: str, unique: str) -> AsyncIterator[Rig]:
    group, table = f"/insights/{unique}", f"patterns-{unique}"
    await (await aws.client("dynamodb")).create_table(
        TableName=table,
        KeySchema=PATTERNS_KEY_SCHEMA,
        AttributeDefinitions=PATTERNS_ATTRIBUTE_DEFINITIONS,
        BillingMode="PAY_PER_REQUEST",
    )
    logs = await aws.client("logs")
    await logs.create_log_group(logGroupName=group)
    await logs.create_log_stream(logGroupName=group, logStreamName="s")
    now_ms = int(time.time()) * 1000
    await logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[
            {"timestamp": now_ms - 5000 + i, "message": f"ERROR boom {i}"} for i in range(5)
        ],
    )
    async with (
        AwsProxy(moto_endpoint) as proxy,
        AwsClients(endpoint_url=proxy.url, max_attempts=1) as through,
    ):
        settings = Settings(
            aws_endpoint_url=proxy.url,
            log_groups=[group],
            log_poll_seconds=2,
            patterns_table=table,
        )
        metrics = Metrics()
        health = Health(metrics)
        source = InsightsSource(through, poll_s=0.1, deadline_s=60)
        analyzer = LogAnalyzer(
            settings,
            through,
            None,
            LogNotifier(),
            metrics,
            health,
            NowClock(),
            source=source,
            config=AnalyzerConfig(backfill_windows=2, max_windows_per_cycle=2),
            owner="me",
        )
        analyzer.beat_every_s = 0.2
        yield Rig(proxy, through, analyzer, health, metrics, table, group)


def _beats(health: Health) -> int:
    return int(health.alive()[1][LOOP_NAME]["beats"])


def _windows(metrics: Metrics, outcome: str) -> float:
    return metrics.log_windows.labels(outcome=outcome)._value.get()


async def _lease(aws: AwsClients, rig: Rig) -> object:
    got = await (await aws.client("dynamodb")).get_item(
        TableName=rig.table, Key={"pk": {"S": f"loggroup#{rig.group}"}, "sk": {"S": "lease"}}
    )
    return got.get("Item")


async def _until(check: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_the_loop_beats_while_a_query_runs_and_stop_stops_it(
    rig: Rig, aws: AwsClients
) -> None:
    """A query that stays Running keeps the loop alive (it is progress, not a hang); on stop the
    query is stopped and the group lease released at once."""
    insights = rig.proxy.insights(running_for=3600)
    stop = asyncio.Event()
    task = asyncio.ensure_future(rig.analyzer.run(stop))
    try:
        await _until(lambda: insights.running >= 1, 30, "a running query")
        before = _beats(rig.health)
        await _until(lambda: _beats(rig.health) >= before + 5, 30, "beats while the query runs")
        assert rig.health.alive()[0]
        assert await _lease(aws, rig) is not None
        stop.set()
        async with asyncio.timeout(10):
            await task
    finally:
        task.cancel()
    assert insights.stopped >= 1 and insights.running == 0
    assert await _lease(aws, rig) is None


async def test_the_concurrency_limit_backs_off_and_the_window_is_analyzed(rig: Rig) -> None:
    """Another client holds the account's only Insights slot: StartQuery fails with
    LimitExceededException; the analyzer waits for a slot instead of failing the window."""
    insights = rig.proxy.insights(polls=10**6, concurrency=1)
    logs = await rig.through.client("logs")
    await logs.start_query(  # someone else's query, never polled: it holds the slot
        logGroupName=rig.group, startTime=0, endTime=int(time.time()), queryString="fields @message"
    )
    cycle = asyncio.ensure_future(rig.analyzer.run_once())
    try:
        await _until(lambda: insights.rejected >= 2, 30, "StartQuery refused twice")
        assert not cycle.done()
        insights.finish()  # the other query ends: the slot is free
        async with asyncio.timeout(60):
            await cycle
    finally:
        cycle.cancel()
    assert _windows(rig.metrics, "error") == 0
    assert _windows(rig.metrics, "timeout") == 0
    assert _windows(rig.metrics, "ok") + _windows(rig.metrics, "empty") >= 1
