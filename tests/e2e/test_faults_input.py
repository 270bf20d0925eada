"""Fault injection: poison input in bulk, and a DynamoDB outage. The daemon never exits for either.

The agent runs as its own process against the fault-injecting proxy in front of the moto server.
A watcher polls `/healthz` throughout and the test checks the process is the one it started.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.models import WorkflowState
from tests.aws_proxy import AwsProxy
from tests.e2e.agent_process import (
    AgentProcess,
    ec2_state_event,
    launch_instances,
    metric,
    metric_samples,
    queue_depth,
    send_bodies,
    wait_for,
)
from tests.e2e.conftest import MakeStack, QueueStack, StartAgent

# Slow (agent processes, fault injection): `python -m pytest -m slow`, run by .ci/run.
pytestmark = pytest.mark.slow

HEALTH_DEADLINE_S = 15.0
"""How long one /healthz poll may take. Generous on purpose: a loaded test machine can be slow to
answer for a second or two; a loop blocked this long (ECS's health check gives up after 5 s, 3
times in a row) is a real defect. Each answer must be 200."""


@asynccontextmanager
async def health_watch(agent: AgentProcess, period: float = 0.5) -> AsyncIterator[list[int | None]]:
    """Poll `/healthz` every `period` s while the block runs; yields the statuses seen so far
    (None: no answer within HEALTH_DEADLINE_S)."""
    seen: list[int | None] = []
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            seen.append(await agent.status("/healthz", deadline_s=HEALTH_DEADLINE_S))
            try:
                async with asyncio.timeout(period):
                    await done.wait()
            except TimeoutError:
                pass

    async with asyncio.TaskGroup() as group:
        group.create_task(watch())
        try:
            yield seen
        finally:
            done.set()


def malformed_bodies(count: int) -> list[str]:
    """`count` distinct payloads the agent cannot judge, of every kind of wrong it must refuse."""
    kinds = [
        lambda n: f"not json at all {n}",
        lambda n: json.dumps([n, "a list, not an object"]),
        lambda n: json.dumps({"n": n, "hello": "no envelope"}),
        lambda n: json.dumps({"source": "aws.ec2", "detail-type": "X", "n": n}),  # no detail
        lambda n: json.dumps({"source": "aws.ec2", "detail-type": "Y", "detail": f"str {n}"}),
        lambda n: json.dumps(
            {
                "id": f"bad-{n}",
                "source": "aws.ec2",
                "detail-type": "EC2 Instance State-change Notification",
                "detail": {"state": "stopped", "instance-id": f"not-an-instance-{n}"},
            }
        ),
        lambda n: json.dumps(
            {
                "id": f"bad-{n}",
                "source": "aws.ec2",
                "detail-type": "EC2 Instance State-change Notification",
                "detail": {"instance-id": "i-0123456789abcdef0", "n": n},  # no state
            }
        ),
        lambda n: json.dumps({"Records": [{"eventName": "StopInstances", "n": n}]}),
        lambda n: "[" * 5000 + str(n) + "]" * 5000,  # nested too deeply to decode
        lambda n: json.dumps({"source": "", "detail-type": "", "detail": {}, "n": n}),
    ]
    return [kinds[n % len(kinds)](n) for n in range(count)]


BAD = 1000
GOOD_FAILURES = 25
GOOD_NORMAL = 75


@pytest.mark.timeout(300)
async def test_1000_malformed_among_100_good_messages(
    aws: AwsClients, make_stack: MakeStack, proxy: AwsProxy, start_agent: StartAgent
) -> None:
    """The good ones complete, every bad one is in the dead-letter queue with its reason, and the
    process lives through it: same pid, one start, `/healthz` 200 at every poll."""
    stack = await make_stack(visibility_timeout=30)
    ec2, sqs = await aws.client("ec2"), await aws.client("sqs")
    instances = await launch_instances(ec2, GOOD_FAILURES)
    good = [json.dumps(ec2_state_event(i, "stopped")) for i in instances]
    good += [
        json.dumps(ec2_state_event(instances[n % GOOD_FAILURES], "pending"))
        for n in range(GOOD_NORMAL)
    ]
    bad = malformed_bodies(BAD)
    bodies = good + bad
    random.Random(1000).shuffle(bodies)
    agent = await start_agent(stack, proxy.url, AIOPS_MAX_CONCURRENCY="20")
    pid = agent.pid
    started = time.monotonic()

    async with health_watch(agent) as health:
        for start in range(0, len(bodies), 100):
            # Keep the queue shallow: moto's SQS slows down with depth.
            await wait_for(
                lambda: _shallow(sqs, stack), within=120, interval=0.5, what="queue below 50"
            )
            await send_bodies(sqs, stack.queue_url, bodies[start : start + 100])
        await wait_for(lambda: _drained(sqs, stack), within=120, interval=0.5, what="drained")

        async def recovered() -> bool:
            found = await stack.store.list_incidents(limit=500)
            return sum(1 for i in found if i.terminal and not i.pending) >= GOOD_FAILURES

        await wait_for(recovered, within=90, interval=0.5, what="the good incidents closed")
    elapsed = time.monotonic() - started

    incidents = await stack.store.list_incidents(limit=500)
    assert Counter(i.workflow_state for i in incidents) == {WorkflowState.COMPLETED: GOOD_FAILURES}
    assert sorted(i.resource_id for i in incidents) == sorted(instances)
    assert await queue_depth(sqs, stack.dead_letter_queue_url) == (BAD, 0)
    forwarded = [
        c.params
        for c in proxy.select("SendMessage")
        if c.params.get("QueueUrl") == stack.dead_letter_queue_url
    ]
    assert sorted(p["MessageBody"] for p in forwarded) == sorted(bad)
    assert all(p["MessageAttributes"]["aiops-reject-reason"]["StringValue"] for p in forwarded)
    sample = await sqs.receive_message(
        QueueUrl=stack.dead_letter_queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    assert len(sample["Messages"]) == 10
    assert all("aiops-reject-reason" in m["MessageAttributes"] for m in sample["Messages"])

    assert agent.alive() and agent.pid == pid
    assert len(agent.events("agent.started")) == 1
    assert health and set(health) == {200}, Counter(health)
    metrics = await agent.text("/metrics")
    assert metric(metrics, "aiops_messages_dead_lettered_total") == BAD
    by_reason = {
        labels["reason"]: value
        for labels, value in metric_samples(metrics, "aiops_messages_dead_lettered_total")
        if value
    }
    assert len(by_reason) >= 5 and "other" not in by_reason, by_reason
    assert metric(metrics, "aiops_sqs_messages_total", outcome="deleted") == len(bodies)
    print(f"malformed: {len(bodies)} messages in {elapsed:.1f}s, {len(health)} health polls")


@pytest.mark.timeout(300)
async def test_dynamodb_outage_leaves_messages_for_later_and_the_daemon_lives(
    aws: AwsClients, make_stack: MakeStack, proxy: AwsProxy, start_agent: StartAgent
) -> None:
    # Redelivered every 3 s while DynamoDB is down; 10 receives before the dead-letter queue, so
    # a slow machine (more rounds before the outage ends) does not dead-letter them.
    stack = await make_stack(visibility_timeout=3, max_receive_count=10)
    ec2, sqs = await aws.client("ec2"), await aws.client("sqs")
    instances = await launch_instances(ec2, 5)
    agent = await start_agent(stack, proxy.url, AIOPS_AWS_MAX_ATTEMPTS="2")
    pid = agent.pid

    async with health_watch(agent) as health:
        outage = proxy.fail(service="dynamodb", error="internal")
        failures = [json.dumps(ec2_state_event(i, "stopped")) for i in instances]
        normal = [json.dumps(ec2_state_event(i, "pending")) for i in instances]
        await send_bodies(sqs, stack.queue_url, failures + normal)

        async def attempted_all() -> bool:
            return len(agent.events("sqs.handler_failed")) >= len(failures)

        await wait_for(attempted_all, within=60, what="every failure event attempted")

        async def attempted_again() -> bool:
            # After the 3 s visibility timeout each one is received again, and fails again.
            return len(agent.events("sqs.handler_failed")) >= 2 * len(failures)

        await wait_for(attempted_again, within=60, what="the failure events redelivered")
        assert outage.failed > 0

        async def only_failures_wait() -> bool:
            visible, in_flight = await queue_depth(sqs, stack.queue_url)
            return visible + in_flight == len(failures)

        # The NORMAL ones are deleted (their deletes may share a batch a moment later); the
        # failure events stay: fewer would mean one was deleted unhandled, and this times out.
        await wait_for(only_failures_wait, within=30, what="only the failure events left")
        assert await stack.store.list_incidents(limit=100) == []
        assert agent.alive()
        outage.remove()

        async def recovered() -> bool:
            found = await stack.store.list_incidents(limit=100)
            return len([i for i in found if i.terminal and not i.pending]) == len(instances)

        await wait_for(recovered, within=90, interval=0.5, what="recovery after the outage")
        await wait_for(lambda: _drained(sqs, stack), within=60, what="the queue to drain")

    incidents = await stack.store.list_incidents(limit=100)
    assert sorted(i.resource_id for i in incidents) == sorted(instances)
    assert {i.workflow_state for i in incidents} == {WorkflowState.COMPLETED}
    assert proxy.count("StartInstances") == len(instances)
    assert await queue_depth(sqs, stack.dead_letter_queue_url) == (0, 0)
    assert agent.alive() and agent.pid == pid
    assert health and set(health) == {200}, Counter(health)
    print(f"outage: {outage.failed} DynamoDB calls failed, {len(health)} health polls all 200")


async def _shallow(sqs: Any, stack: QueueStack) -> bool:
    visible, _ = await queue_depth(sqs, stack.queue_url)
    return visible < 50


async def _drained(sqs: Any, stack: QueueStack) -> bool:
    return await queue_depth(sqs, stack.queue_url) == (0, 0)
