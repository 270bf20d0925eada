"""Fixtures of the end-to-end tests: a fault-injecting proxy, a queue stack, agent processes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.demo.emulator import free_port
from aiops_agent.store.dynamodb import DynamoIncidentStore
from aiops_agent.store.tables import ensure_tables
from tests.aws_proxy import AwsProxy
from tests.e2e.agent_process import AgentProcess


@dataclass(frozen=True)
class QueueStack:
    """A queue with its dead-letter queue (redrive policy) and the agent's tables."""

    queue_url: str
    dead_letter_queue_url: str
    incident_table: str
    patterns_table: str
    store: DynamoIncidentStore
    """The incident store, straight to the emulator (not through the proxy)."""


MakeStack = Callable[..., Awaitable[QueueStack]]
StartAgent = Callable[..., Awaitable[AgentProcess]]


@pytest.fixture
async def proxy(moto_endpoint: str) -> AsyncIterator[AwsProxy]:
    """A loopback proxy in front of the moto server: counts, stalls and fails calls."""
    async with AwsProxy(moto_endpoint) as running:
        yield running


@pytest.fixture
def make_stack(aws: AwsClients, unique: str) -> MakeStack:
    """`await make_stack(visibility_timeout=..., max_receive_count=...)`: fresh queues and tables.

    Built directly (not with `bootstrap`) so a test can pick a visibility timeout shorter than
    the agent's settings allow, to see redeliveries in seconds.
    """

    async def make(*, visibility_timeout: int = 30, max_receive_count: int = 5) -> QueueStack:
        sqs = await aws.client("sqs")
        dlq = (await sqs.create_queue(QueueName=f"dlq-{unique}"))["QueueUrl"]
        dlq_arn = (await sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"]))[
            "Attributes"
        ]["QueueArn"]
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
        queue = (
            await sqs.create_queue(
                QueueName=f"events-{unique}",
                Attributes={
                    "VisibilityTimeout": str(visibility_timeout),
                    "RedrivePolicy": json.dumps(redrive),
                },
            )
        )["QueueUrl"]
        incidents, patterns = f"inc-{unique}", f"pat-{unique}"
        await ensure_tables(aws, incidents, patterns)
        store = DynamoIncidentStore(aws, incidents)
        return QueueStack(str(queue), str(dlq), incidents, patterns, store)

    return make


FAST_AGENT = {
    "AIOPS_RECEIVE_WAIT_SECONDS": "1",
    "AIOPS_SWEEP_SECONDS": "0.5",
    # Longer than any step takes on a loaded 2-core machine: a lease that runs out while its step
    # still runs lets another worker resume the step, and the action runs twice.
    "AIOPS_STEP_LEASE_SECONDS": "30",
    "AIOPS_VERIFY_INTERVAL_SECONDS": "0.5",
    "AIOPS_VERIFY_TIMEOUT_SECONDS": "30",
    "AIOPS_DRAIN_SECONDS": "2",
    # A failed message comes back in 1-3 s, not after minutes (the production backoff spans an
    # AWS outage; test_faults_aws.py tests it with the defaults).
    "AIOPS_RETRY_BASE_SECONDS": "1",
    "AIOPS_RETRY_MAX_SECONDS": "3",
    "AIOPS_COOLDOWN_MINUTES": "0",
    "AIOPS_AWS_MAX_ATTEMPTS": "3",
    # Tests that recover dozens of instances at once are not the mass event the breaker is for.
    "AIOPS_BREAKER_THRESHOLD": "1000",
    # Most tests send EC2 state changes without a CloudTrail record: act at once. The wait for
    # the author is tested on its own (test_attribution.py).
    "AIOPS_ATTRIBUTION_GRACE_SECONDS": "0",
}
"""Settings that make the daemon's timers fit a test: leases, sweeps and polls in seconds."""


@pytest.fixture
async def start_agent(tmp_path: Path) -> AsyncIterator[StartAgent]:
    """`await start_agent(stack, endpoint, name="a", **env)`: a ready daemon process.

    Every process started is killed (if still running) at teardown, and its log's tail printed
    (pytest shows it when the test failed).
    """
    started: list[AgentProcess] = []

    async def start(
        stack: QueueStack, endpoint: str, *, name: str = "agent", **env: str
    ) -> AgentProcess:
        settings = {
            **FAST_AGENT,
            "AIOPS_AWS_ENDPOINT_URL": endpoint,
            "AIOPS_QUEUE_URL": stack.queue_url,
            "AIOPS_INCIDENT_TABLE": stack.incident_table,
            "AIOPS_PATTERNS_TABLE": stack.patterns_table,
            "AIOPS_HTTP_PORT": str(free_port()),
            **env,
        }
        agent = AgentProcess.start(name, settings, tmp_path / f"{name}-{len(started)}.log")
        started.append(agent)
        await agent.wait_ready()
        return agent

    yield start
    for agent in started:
        await agent.stop()
        print(f"--- {agent.name} (pid {agent.pid}, exit {agent.proc.returncode}) ---")
        print(agent.tail(25))
