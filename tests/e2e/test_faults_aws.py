"""Real AWS, not the emulator: the daemon against AWS behaviour the realism proxy imitates.

Each test runs the agent as its own process behind the proxy (tests/aws_proxy.py) and switches
on one behaviour moto does not have: a dead-letter queue whose SendMessage fails (KMS throttling,
AccessDenied, the network), a long poll that outlives its caller during a rolling deploy, Logs
Insights queries that stay Running, a call that hangs while the daemon is told to stop, an
outage of most of a minute.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aiops_agent.aws.clients import AwsClients
from tests.aws_proxy import AwsProxy
from tests.aws_rules import Exchange, Proceed, Reply, Rule
from tests.e2e.agent_process import (
    ec2_state_event,
    instance_states,
    launch_instances,
    metric,
    queue_depth,
    send_bodies,
    wait_for,
)
from tests.e2e.conftest import MakeStack, StartAgent
from tests.e2e.test_faults_input import health_watch

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.mark.parametrize("error", ["kms_throttle", "access_denied", "network"])
async def test_a_failing_dead_letter_queue_leaves_the_daemon_serving(
    aws: AwsClients,
    make_stack: MakeStack,
    proxy: AwsProxy,
    start_agent: StartAgent,
    error: Any,
) -> None:
    """A poison message whose forward to the DLQ fails: logged, counted, left on the queue (not
    lost), and the daemon handles the next event. Once the DLQ works it gets the message."""
    stack = await make_stack(visibility_timeout=30, max_receive_count=50)
    outage = proxy.fail("SendMessage", error=error)  # every DLQ send fails, until removed
    agent = await start_agent(stack, proxy.url)
    sqs, ec2 = await aws.client("sqs"), await aws.client("ec2")

    async with health_watch(agent) as health:
        await send_bodies(sqs, stack.queue_url, ["not json at all: a poison message"])

        async def tried() -> bool:
            text = await agent.text("/metrics")
            return metric(text, "aiops_sqs_operation_failures_total", operation="dead_letter") >= 2

        await wait_for(tried, within=60, interval=0.5, what="two failed DLQ sends")
        assert agent.alive(), agent.tail()

        (instance,) = await launch_instances(ec2, 1)
        await send_bodies(sqs, stack.queue_url, [json.dumps(ec2_state_event(instance, "stopped"))])

        async def recovered() -> bool:
            return (await instance_states(ec2, [instance]))[instance] == "running"

        await wait_for(recovered, within=60, interval=0.5, what="the next event handled")
        assert await queue_depth(sqs, stack.dead_letter_queue_url) == (0, 0)

        outage.remove()

        async def dead_lettered() -> bool:
            return (await queue_depth(sqs, stack.dead_letter_queue_url))[0] == 1

        await wait_for(dead_lettered, within=60, interval=0.5, what="the poison message in the DLQ")
    assert agent.alive(), agent.tail()
    assert health and all(status == 200 for status in health), health
    assert agent.events("sqs.dead_letter_failed")


class OpenCalls(Rule):
    """Counts matching requests in flight right now (a long poll that is open)."""

    def __init__(self, operation: str) -> None:
        self.operations = frozenset({operation})
        self.open = 0

    async def apply(self, ex: Exchange, proceed: Proceed) -> Reply:
        self.open += 1
        try:
            return await proceed(ex)
        finally:
            self.open -= 1


async def test_an_event_sent_during_a_rolling_restart_is_handled_within_seconds(
    aws: AwsClients, make_stack: MakeStack, proxy: AwsProxy, start_agent: StartAgent
) -> None:
    """SIGTERM while the old task's 20 s long poll is open; the event arrives in that window; the
    new task handles it in seconds, not after the 120 s visibility timeout of a message taken by
    a poll nobody waits for any more."""
    stack = await make_stack(visibility_timeout=120)
    polls = proxy.add(OpenCalls("ReceiveMessage"))
    assert isinstance(polls, OpenCalls)
    old = await start_agent(stack, proxy.url, name="old", AIOPS_RECEIVE_WAIT_SECONDS="20")
    await wait_for(_async(lambda: polls.open >= 1), within=30, what="the old task's long poll")
    ec2, sqs = await aws.client("ec2"), await aws.client("sqs")
    (instance,) = await launch_instances(ec2, 1)

    old.terminate()
    await send_bodies(sqs, stack.queue_url, [json.dumps(ec2_state_event(instance, "stopped"))])
    sent = time.monotonic()
    assert await old.wait_exit(30) == 0, old.tail()
    await start_agent(stack, proxy.url, name="new")

    async def recovered() -> bool:
        return (await instance_states(ec2, [instance]))[instance] == "running"

    await wait_for(recovered, within=60, interval=0.5, what="the event handled by the new task")
    took = time.monotonic() - sent
    assert took < 60, took  # the visibility timeout is 120 s
    assert old.events("sqs.released"), "the old task gave the message back"
    print(f"rolling restart: handled {took:.1f}s after it was sent")


async def _lease(aws: AwsClients, table: str, group: str) -> dict[str, Any] | None:
    ddb = await aws.client("dynamodb")
    got = await ddb.get_item(
        TableName=table, Key={"pk": {"S": f"loggroup#{group}"}, "sk": {"S": "lease"}}
    )
    item: dict[str, Any] | None = got.get("Item")
    return item


async def test_sigterm_with_the_log_analyzer_mid_query_exits_0_within_30s_leases_released(
    aws: AwsClients, make_stack: MakeStack, proxy: AwsProxy, start_agent: StartAgent, unique: str
) -> None:
    """Insights queries that stay Running (as a slow account's do): /healthz stays 200 while the
    analyzer waits; SIGTERM exits 0 within 30 s, stops the running query and releases the group
    lease (another replica takes the group at once instead of after 960 s)."""
    stack = await make_stack()
    logs = await aws.client("logs")
    group = f"/app/{unique}"
    await logs.create_log_group(logGroupName=group)
    insights = proxy.insights(running_for=3600)
    agent = await start_agent(
        stack,
        proxy.url,
        AIOPS_LOG_GROUPS=group,
        AIOPS_LOG_SOURCE="insights",
        AIOPS_LOG_POLL_SECONDS="60",
    )
    async with health_watch(agent) as health:
        await wait_for(_async(lambda: insights.running >= 1), within=60, what="a running query")
        assert await _lease(aws, stack.patterns_table, group) is not None

        await wait_for(_async(lambda: len(health) >= 4), within=30, what="health polls")
        before_stop = list(health)  # while the query runs
        started = time.monotonic()
        agent.terminate()
        code = await agent.wait_exit(45)
        elapsed = time.monotonic() - started
    assert code == 0, agent.tail()
    assert elapsed < 30, elapsed
    assert await _lease(aws, stack.patterns_table, group) is None, "the lease was released"
    assert insights.stopped >= 1 and insights.running == 0, "the running query was stopped"
    assert before_stop and all(status == 200 for status in before_stop), before_stop
    print(f"sigterm mid-query: exit 0 after {elapsed:.1f}s")


async def test_sigterm_while_the_sweeper_resumes_a_step_exits_0_within_30s(
    aws: AwsClients, make_stack: MakeStack, proxy: AwsProxy, start_agent: StartAgent
) -> None:
    """The sweeper resumes an orphaned step whose call hangs; SIGTERM still ends the process
    within 30 s (the step's lease runs out and a replica resumes it, as after a crash)."""
    stack = await make_stack(visibility_timeout=120)
    ec2, sqs = await aws.client("ec2"), await aws.client("sqs")
    (instance,) = await launch_instances(ec2, 1)
    stall = proxy.stall("StartInstances")
    # The first agent's step lease is short, so the second resumes the step within seconds; the
    # second's is long, so its own step deadline (90% of it) is far beyond the stop timeout.
    first = await start_agent(stack, proxy.url, name="first", AIOPS_STEP_LEASE_SECONDS="3")
    await send_bodies(sqs, stack.queue_url, [json.dumps(ec2_state_event(instance, "stopped"))])
    await stall.wait_held(1)
    first.kill()
    await first.wait_exit(10)

    second = await start_agent(stack, proxy.url, name="second", AIOPS_STEP_LEASE_SECONDS="120")
    await stall.wait_held(2, within=60)  # the sweeper resumed the orphaned step: it hangs
    assert second.events("incident.resumed")
    started = time.monotonic()
    second.terminate()
    code = await second.wait_exit(45)
    elapsed = time.monotonic() - started
    stall.release(forward=False)
    assert code == 0, second.tail()
    assert elapsed < 30, elapsed
    assert second.events("sweeper.stopped_mid_sweep")


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def run() -> bool:
        return check()

    return run


async def test_a_minute_long_aws_outage_dead_letters_nothing(
    aws: AwsClients, make_stack: MakeStack, proxy: AwsProxy, start_agent: StartAgent
) -> None:
    """DynamoDB answers 503 for 45 s (the handler fails on every receive meanwhile). With the
    production retry settings and maxReceiveCount 5, the event is handled after the outage
    instead of landing in the dead-letter queue (2..32 s backoffs spent all 5 receives in 62 s)."""
    stack = await make_stack(visibility_timeout=30, max_receive_count=5)
    ec2, sqs = await aws.client("ec2"), await aws.client("sqs")
    (instance,) = await launch_instances(ec2, 1)
    agent = await start_agent(
        stack,
        proxy.url,
        AIOPS_RETRY_BASE_SECONDS="5",  # the production defaults (FAST_AGENT shortens them)
        AIOPS_RETRY_MAX_SECONDS="300",
    )
    outage = proxy.fail(service="dynamodb", error="unavailable", for_seconds=45)
    await send_bodies(sqs, stack.queue_url, [json.dumps(ec2_state_event(instance, "stopped"))])

    async def recovered() -> bool:
        return (await instance_states(ec2, [instance]))[instance] == "running"

    await wait_for(recovered, within=200, interval=1.0, what="the event handled after the outage")
    assert outage.failed > 0 and outage.exhausted
    failures = agent.events("sqs.handler_failed")
    assert len(failures) >= 2, "the handler failed during the outage"
    assert max(int(f["receive_count"]) for f in failures) < 5
    assert await queue_depth(sqs, stack.dead_letter_queue_url) == (0, 0)
    assert agent.alive()
