"""InsightsSource end to end against the moto server, through the recording proxy.

moto's Logs Insights completes every query inside StartQuery and understands neither `filter`
nor `stats` (EMULATORS.md): it answers our query with one `@ptr` row per event. So what is
checked here is the real-AWS path as far as moto goes: the StartQuery request on the wire (the
query string, the window in epoch seconds, the row limit), the one GetQueryResults that finds it
Complete, no StopQuery for a query that ended, and moto's rows read without a crash. An abandoned
query is stopped, and moto's HTTP 500 on StopQuery is logged, never raised over the real error.
Queries that stay Running and the concurrency limit: tests/integration/test_log_insights.py.
"""

from __future__ import annotations

import time

import pytest
from structlog.testing import capture_logs

from aiops_agent.aws.clients import AwsClients
from aiops_agent.logs.queries import RESULT_CAP, InsightsSource, insights_query
from tests.aws_proxy import AwsProxy

pytestmark = pytest.mark.timeout(120)

BASE = (int(time.time()) - 3600) * 1000
"""An hour ago, on a whole second."""


async def _group(aws: AwsClients, group: str) -> None:
    logs = await aws.client("logs")
    await logs.create_log_group(logGroupName=group)
    await logs.create_log_stream(logGroupName=group, logStreamName="s")
    messages = ["ERROR db refused", "INFO fine", "ERROR db refused", "request timed out"]
    await logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": BASE + 100 * i, "message": m} for i, m in enumerate(messages)],
    )


async def test_a_window_is_one_query_started_read_once_and_not_stopped(
    aws: AwsClients, unique: str
) -> None:
    group = f"/insights-moto/{unique}"
    await _group(aws, group)
    async with (
        AwsProxy(aws.endpoint_url or "") as proxy,
        AwsClients(endpoint_url=proxy.url, max_attempts=1) as through,
    ):
        counts = await InsightsSource(through, poll_s=0.1).count(group, BASE, BASE + 60_000)

    (start,) = proxy.select("StartQuery")
    assert start.status == 200
    assert start.params["logGroupName"] == group
    assert start.params["queryString"] == insights_query()
    # StartQuery takes epoch seconds, both ends inclusive: [BASE, BASE + 60 s) is 0..59.
    assert (start.params["startTime"], start.params["endTime"]) == (BASE // 1000, BASE // 1000 + 59)
    assert start.params["limit"] == RESULT_CAP
    (results,) = proxy.select("GetQueryResults")
    assert results.status == 200 and results.params["queryId"]
    assert proxy.count("StopQuery", outcome=None) == 0  # it completed: nothing to stop
    # moto returns `@ptr` rows only (no `stats`): nothing to count, and nothing breaks.
    assert counts.total == 0 and counts.truncated is False


async def test_an_abandoned_query_is_stopped_and_motos_500_is_only_logged(
    aws: AwsClients, unique: str
) -> None:
    group = f"/insights-moto/{unique}"
    await _group(aws, group)
    async with (
        AwsProxy(aws.endpoint_url or "") as proxy,
        AwsClients(endpoint_url=proxy.url, max_attempts=1) as through,
    ):
        stall = proxy.stall("GetQueryResults")  # held until released: the call times out
        source = InsightsSource(through, poll_s=0.1, call_timeout_s=1.0)
        with capture_logs() as logs, pytest.raises(TimeoutError):
            await source.count(group, BASE, BASE + 60_000)
        stall.release(forward=False)

    assert proxy.count("StartQuery") == 1
    (asked,) = proxy.select("GetQueryResults", outcome="dropped")
    (stop,) = proxy.select("StopQuery", outcome=None)
    assert stop.outcome == "forwarded" and stop.status == 500  # moto's StopQuery
    assert stop.params["queryId"] == asked.params["queryId"]  # the query it gave up on
    failed = [e for e in logs if e["event"] == "logs.stop_query_failed"]
    assert len(failed) == 1 and failed[0]["query_id"] == stop.params["queryId"]
