"""Fault injection: at-least-once delivery. Duplicates, redeliveries, two replicas on one queue.

Every test runs the agent as its own process against the fault-injecting proxy in front of the
moto server, and checks the outcome in the emulator: incidents in DynamoDB, queue depths, and the
calls that reached the emulator through the proxy.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.models import Incident, WorkflowState
from tests.aws_proxy import AwsProxy
from tests.e2e.agent_process import (
    AgentProcess,
    ec2_state_event,
    launch_instances,
    metric,
    queue_depth,
    send_bodies,
    wait_for,
)
from tests.e2e.conftest import MakeStack, QueueStack, StartAgent

# Slow (agent processes, fault injection): `python -m pytest -m slow`, run by .ci/run.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


async def drained(sqs: Any, stack: QueueStack) -> bool:
    return await queue_depth(sqs, stack.queue_url) == (0, 0)


async def closed_incidents(stack: QueueStack) -> list[Incident]:
    found = await stack.store.list_incidents(limit=1000)
    return [i for i in found if i.terminal and not i.pending]


def starts_per_instance(proxy: AwsProxy) -> Counter[str]:
    """How many StartInstances reached the emulator for each instance id."""
    counts: Counter[str] = Counter()
    for call in proxy.select("StartInstances"):
        for key, value in call.params.items():
            if key.startswith("InstanceId."):
                counts[value] += 1
    return counts


async def test_one_message_delivered_5_times_makes_one_incident(
    aws: AwsClients, make_stack: MakeStack, proxy: AwsProxy, start_agent: StartAgent
) -> None:
    """The agent handles the message but its delete keeps failing, so SQS delivers it again."""
    stack = await make_stack(visibility_timeout=1, max_receive_count=10)
    ec2, sqs = await aws.client("ec2"), await aws.client("sqs")
    [instance_id] = await launch_instances(ec2, 1)
    deletes_fail = proxy.fail("DeleteMessageBatch", error="internal")
    agent = await start_agent(stack, proxy.url, AIOPS_AWS_MAX_ATTEMPTS="1")
    event = ec2_state_event(instance_id, "stopped")
    await sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps(event))

    def deliveries() -> int:
        seen = agent.events("incident.opened", "event.duplicate")
        return sum(1 for line in seen if line.get("event_id") == event["id"])

    async def delivered_5_times() -> bool:
        # Each delivery's delete fails (it goes up to 0.2 s after the handling, in a batch).
        return deliveries() >= 5 and deletes_fail.failed >= 5

    await wait_for(delivered_5_times, within=90, what="5 deliveries")
    deletes_fail.remove()
    await wait_for(lambda: drained(sqs, stack), within=60, what="the queue to drain")

    incidents = await stack.store.list_incidents(limit=100)
    assert len(incidents) == 1, [i.incident_id for i in incidents]
    assert incidents[0].workflow_state is WorkflowState.COMPLETED
    assert proxy.count("StartInstances") == 1
    assert deliveries() >= 5
    assert deletes_fail.failed >= 5
    assert len(agent.events("incident.opened")) == 1
    assert await queue_depth(sqs, stack.dead_letter_queue_url) == (0, 0)


async def test_one_event_id_in_5_messages_makes_one_incident(
    aws: AwsClients, make_stack: MakeStack, proxy: AwsProxy, start_agent: StartAgent
) -> None:
    """EventBridge may put the same event on the queue more than once: 5 messages, one event."""
    stack = await make_stack()
    ec2, sqs = await aws.client("ec2"), await aws.client("sqs")
    [instance_id] = await launch_instances(ec2, 1)
    agent = await start_agent(stack, proxy.url)
    body = json.dumps(ec2_state_event(instance_id, "stopped"))
    assert await send_bodies(sqs, stack.queue_url, [body] * 5) == 5

    async def deleted_all() -> bool:
        metrics = await agent.text("/metrics")
        return metric(metrics, "aiops_sqs_messages_total", outcome="deleted") >= 5

    await wait_for(deleted_all, within=90, what="5 messages handled and deleted")
    done = await wait_for(lambda: closed_incidents(stack), within=60, what="the incident closed")
    incidents = await stack.store.list_incidents(limit=100)
    assert len(incidents) == 1 and done[0].incident_id == incidents[0].incident_id
    assert incidents[0].workflow_state is WorkflowState.COMPLETED
    assert proxy.count("StartInstances") == 1
    assert await queue_depth(sqs, stack.queue_url) == (0, 0)
    assert await queue_depth(sqs, stack.dead_letter_queue_url) == (0, 0)


async def test_normal_events_are_handled_without_any_write(
    aws: AwsClients, make_stack: MakeStack, proxy: AwsProxy, start_agent: StartAgent
) -> None:
    stack = await make_stack()
    sqs = await aws.client("sqs")
    agent = await start_agent(stack, proxy.url)
    bodies = [json.dumps(ec2_state_event(f"i-{n:017x}", "running")) for n in range(20)]
    await send_bodies(sqs, stack.queue_url, bodies)
    await wait_for(lambda: drained(sqs, stack), within=60, what="the queue to drain")
    assert len(agent.events("event.normal")) == 20
    writes = [
        c.operation
        for c in proxy.select(service="dynamodb")
        if c.operation in ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems")
    ]
    assert writes == []
    assert await stack.store.list_incidents(limit=100) == []


ROUNDS = 2
RESOURCES = 20
EVENTS_PER_RESOURCE_PER_ROUND = 5  # one failure sent twice (same event id) and three NORMAL


@pytest.mark.timeout(180)
async def test_two_agents_200_events_over_20_resources(
    aws: AwsClients, make_stack: MakeStack, proxy: AwsProxy, start_agent: StartAgent
) -> None:
    """Two replicas share the queue while the proxy throttles and fails some calls.

    Two rounds; in each, every instance is stopped and its failure event arrives twice, among
    NORMAL state changes: every event is handled, each instance is started once per round, one
    incident per failure, and no message is lost (queue and dead-letter queue empty at the end).
    """
    stack = await make_stack(visibility_timeout=30)
    ec2, sqs = await aws.client("ec2"), await aws.client("sqs")
    instances = await launch_instances(ec2, RESOURCES)
    # Transient faults, each fewer than one call's attempts, so every call succeeds in the end.
    faults = [
        # Incident writes are transactions (the incident and its audit items together).
        proxy.fail("TransactWriteItems", times=3, error="throttle"),
        # Leases and the breaker's counter (GetItem is off the hot path: only after a lost claim).
        proxy.fail("UpdateItem", times=3, error="internal"),
        proxy.fail("Query", times=3, error="throttle"),
        proxy.fail("DescribeInstances", times=3, error="throttle"),
        proxy.fail("ReceiveMessage", times=3, error="internal"),
        proxy.fail("DeleteMessageBatch", times=3, error="internal"),
    ]
    agents = await asyncio.gather(
        start_agent(stack, proxy.url, name="a"), start_agent(stack, proxy.url, name="b")
    )
    rng = random.Random(5)
    sent_ids: set[str] = set()
    started = time.monotonic()
    at = datetime.now(UTC)
    for round_no in range(1, ROUNDS + 1):
        if round_no > 1:
            # Event times have 1 s resolution: this round's stop is stamped the next whole second
            # after the last recovery closed (a time no later would read as an echo of it).
            latest = max(i.updated_at for i in await closed_incidents(stack))
            at = latest.replace(microsecond=0) + timedelta(seconds=1)
            await ec2.stop_instances(InstanceIds=instances)
        bodies: list[str] = []
        for instance_id in instances:
            failure = json.dumps(ec2_state_event(instance_id, "stopped", at=at))
            normal = [
                ec2_state_event(instance_id, s, at=at) for s in ("pending", "running", "stopping")
            ]
            bodies += [failure, failure, *(json.dumps(e) for e in normal)]
            sent_ids.update(json.loads(b)["id"] for b in [failure, *map(json.dumps, normal)])
        rng.shuffle(bodies)
        assert len(bodies) == RESOURCES * EVENTS_PER_RESOURCE_PER_ROUND
        for start in range(0, len(bodies), 20):  # keep the queue shallow
            await send_bodies(sqs, stack.queue_url, bodies[start : start + 20])

        async def round_done(expected: int = round_no) -> bool:
            closed = Counter(i.resource_id for i in await closed_incidents(stack))
            return all(closed[i] >= expected for i in instances)

        await wait_for(round_done, within=120, interval=0.5, what=f"round {round_no}")
    await wait_for(lambda: drained(sqs, stack), within=60, what="the queue to drain")
    elapsed = time.monotonic() - started

    incidents = await stack.store.list_incidents(limit=1000)
    per_resource = Counter(i.resource_id for i in incidents)
    assert per_resource == dict.fromkeys(instances, ROUNDS), [
        (i.resource_id, i.incident_id, i.event_id, i.workflow_state.value, i.created_at)
        for i in incidents
        if per_resource[i.resource_id] != ROUNDS
    ]
    assert {i.workflow_state for i in incidents} == {WorkflowState.COMPLETED}, [
        (i.resource_id, [(e.state.value, e.detail) for e in i.timeline])
        for i in incidents
        if i.workflow_state is not WorkflowState.COMPLETED
    ]
    assert all(len(i.recovery_actions) == 1 for i in incidents)
    assert starts_per_instance(proxy) == dict.fromkeys(instances, ROUNDS)
    assert await queue_depth(sqs, stack.dead_letter_queue_url) == (0, 0)
    handled = _handled_event_ids(agents)
    assert sent_ids <= handled, f"{len(sent_ids - handled)} events never handled"
    deleted = [
        metric(await a.text("/metrics"), "aiops_sqs_messages_total", outcome="deleted")
        for a in agents
    ]
    assert all(d > 0 for d in deleted), f"both replicas consumed: {deleted}"
    assert sum(deleted) >= ROUNDS * RESOURCES * EVENTS_PER_RESOURCE_PER_ROUND
    assert all(f.exhausted for f in faults), [(f.operation, f.failed) for f in faults]
    assert all(a.alive() for a in agents)
    print(f"two agents: {len(sent_ids)} events, deleted {deleted}, {elapsed:.1f}s")


def _handled_event_ids(agents: Iterable[AgentProcess]) -> set[str]:
    """Event ids that reached the engine in either agent (each log line there carries one)."""
    return {
        str(line["event_id"])
        for agent in agents
        for line in agent.lines()
        if "event_id" in line
        and line.get("event")
        in ("event.normal", "incident.opened", "event.duplicate", "event.joined")
    }
