"""Real AWS, not the emulator: the daemon against AWS behaviour the realism proxy imitates.

Each test runs the agent as its own process behind the proxy (tests/aws_proxy.py) and switches
on one behaviour moto does not have: a dead-letter queue whose SendMessage fails (KMS throttling,
AccessDenied), ...
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from aiops_agent.aws.clients import AwsClients
from tests.aws_proxy import AwsProxy
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

pytestmark = pytest.mark.timeout(240)


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
