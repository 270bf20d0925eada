"""Fault injection: the agent process is killed (SIGKILL) or stopped (SIGTERM) in mid-step.

The agent runs as its own process against the fault-injecting proxy in front of the moto server;
the proxy holds `StartInstances` so the step is in flight at a moment the test chooses. The test
reads the incident straight from the emulator and counts what reached it through the proxy.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.models import Incident, WorkflowState
from tests.aws_proxy import AwsProxy
from tests.e2e.agent_process import (
    ec2_state_event,
    instance_states,
    launch_instances,
    queue_depth,
    wait_for,
)
from tests.e2e.conftest import MakeStack, QueueStack, StartAgent

# Slow (agent processes, fault injection): `python -m pytest -m slow`, run by .ci/run.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SHORT_LEASE = {"AIOPS_STEP_LEASE_SECONDS": "3"}
"""The orphaned step is resumed 3 s after its last save. Safe here: one agent runs at a time."""


async def incidents_of(stack: QueueStack, instance_id: str) -> list[Incident]:
    found = await stack.store.list_incidents(resource_type="ec2", limit=500)
    return [i for i in found if i.resource_id == instance_id]


async def wait_state(
    stack: QueueStack, instance_id: str, state: WorkflowState, within: float = 30.0
) -> Incident:
    """The one incident about `instance_id` once in `state` (if terminal, with nothing pending)."""

    async def reached() -> Incident | None:
        found = await incidents_of(stack, instance_id)
        assert len(found) <= 1, [i.incident_id for i in found]
        if found and found[0].workflow_state is state and not (state.terminal and found[0].pending):
            return found[0]
        return None

    return await wait_for(reached, within=within, what=f"{instance_id} {state.value}")


async def start_one_recovery(
    aws: AwsClients, stack: QueueStack, proxy: AwsProxy, start_agent: StartAgent
) -> tuple[str, Any, Any]:
    """A stopped instance, its event on the queue, an agent stuck in StartInstances.

    Returns (instance id, the stall, the agent), once the incident is EXECUTING in the store.
    """
    ec2 = await aws.client("ec2")
    sqs = await aws.client("sqs")
    [instance_id] = await launch_instances(ec2, 1)
    stall = proxy.stall("StartInstances")
    # The first agent keeps the default test lease (30 s): its step may be held by the proxy for
    # as long as the test needs without timing out. Only the agent that resumes uses 3 s.
    agent = await start_agent(stack, proxy.url, name="first")
    event = ec2_state_event(instance_id, "stopped")
    await sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps(event))
    await stall.wait_held(1)
    await wait_state(stack, instance_id, WorkflowState.EXECUTING)
    assert (await instance_states(ec2, [instance_id]))[instance_id] == "stopped"
    return instance_id, stall, agent


@pytest.mark.parametrize(
    "held_call", ["lost", "reached_aws"], ids=["call-lost-in-crash", "call-reached-aws"]
)
async def test_kill_9_while_executing_then_restart_completes_once(
    aws: AwsClients,
    make_stack: MakeStack,
    proxy: AwsProxy,
    start_agent: StartAgent,
    held_call: str,
) -> None:
    """SIGKILL mid-step; a new process resumes the orphaned incident; one StartInstances in all.

    `lost`: the dead agent's StartInstances never reaches AWS, so the new agent must run it.
    `reached_aws`: it does reach AWS after the crash, so the new agent must not run it again.
    """
    stack = await make_stack(visibility_timeout=5)
    instance_id, stall, first = await start_one_recovery(aws, stack, proxy, start_agent)

    first.kill()
    assert await first.wait_exit(10) == -signal.SIGKILL
    stall.release(forward=held_call == "reached_aws")
    if held_call == "reached_aws":
        # The dead agent's call lands before the new agent looks at the instance.
        await wait_for(
            _async(lambda: proxy.count("StartInstances") == 1), within=30, what="the late call"
        )

    second = await start_agent(stack, proxy.url, name="second", **SHORT_LEASE)
    done = await wait_state(stack, instance_id, WorkflowState.COMPLETED, within=90)

    assert proxy.count("StartInstances") == 1, proxy.select("StartInstances", outcome=None)
    ec2 = await aws.client("ec2")
    assert (await instance_states(ec2, [instance_id]))[instance_id] == "running"
    assert [(r.action, r.status) for r in done.recovery_actions] == [
        ("ec2.start_instances", "SUCCEEDED")
    ]
    assert done.verification is not None and done.verification.status == "PASSED"
    assert second.events("incident.resumed"), "the new process resumed the orphaned step"
    # The dead agent's message comes back after its visibility timeout and is taken as a
    # duplicate: deleted, no second incident.
    sqs = await aws.client("sqs")
    await wait_for(lambda: _drained(sqs, stack.queue_url), within=60, what="the queue to drain")
    assert await queue_depth(sqs, stack.dead_letter_queue_url) == (0, 0)
    assert len(await incidents_of(stack, instance_id)) == 1


async def test_sigterm_mid_step_exits_0_releases_the_message_and_another_agent_finishes(
    aws: AwsClients,
    make_stack: MakeStack,
    proxy: AwsProxy,
    start_agent: StartAgent,
) -> None:
    # A long visibility timeout: only the agent's release can make the message visible quickly.
    stack = await make_stack(visibility_timeout=120)
    instance_id, stall, first = await start_one_recovery(aws, stack, proxy, start_agent)
    sqs = await aws.client("sqs")
    assert await queue_depth(sqs, stack.queue_url) == (0, 1)

    started = time.monotonic()
    first.terminate()

    async def not_ready() -> bool:
        # 503 while it drains (the stalled call holds the drain open); or it already exited,
        # and then its log says whether readiness went false first (below).
        return not first.alive() or await first.status("/readyz", deadline_s=5.0) == 503

    await wait_for(not_ready, within=30, interval=0.05, what="readiness to go false")
    code = await first.wait_exit(30)  # the contract's 30 s: AssertionError after that
    elapsed = time.monotonic() - started
    assert code == 0, first.tail()
    order = [e["event"] for e in first.events("agent.draining", "agent.stopped")]
    assert order == ["agent.draining", "agent.stopped"], first.tail()  # /readyz 503 first
    assert await queue_depth(sqs, stack.queue_url) == (1, 0), "the message is visible again"
    assert first.events("sqs.released")
    stalled = await stack.store.list_incidents(resource_type="ec2")
    assert [i.workflow_state for i in stalled if i.resource_id == instance_id] == [
        WorkflowState.EXECUTING
    ]

    stall.release(forward=False)  # the interrupted call never reached AWS
    await start_agent(stack, proxy.url, name="second", **SHORT_LEASE)
    done = await wait_state(stack, instance_id, WorkflowState.COMPLETED, within=90)
    assert proxy.count("StartInstances") == 1
    assert [r.status for r in done.recovery_actions] == ["SUCCEEDED"]
    await wait_for(lambda: _drained(sqs, stack.queue_url), within=60, what="the queue to drain")
    assert await queue_depth(sqs, stack.dead_letter_queue_url) == (0, 0)
    print(f"sigterm: exit 0 after {elapsed:.1f}s")


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def run() -> bool:
        return check()

    return run


async def _drained(sqs: Any, queue_url: str) -> bool:
    return await queue_depth(sqs, queue_url) == (0, 0)
