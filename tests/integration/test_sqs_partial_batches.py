"""The SQS consumer when a batch call answers 200 with `Failed` entries (the proxy's
`unprocessed` rule): those messages are counted as failures, never as done."""

from __future__ import annotations

import asyncio
import time

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.obs.health import Health
from aiops_agent.obs.metrics import Metrics
from aiops_agent.sources.sqs import SqsConsumer
from tests.aws_proxy import AwsProxy

pytestmark = pytest.mark.timeout(90)


def _value(metrics: Metrics, counter: str, **labels: str) -> float:
    return float(getattr(metrics, counter).labels(**labels)._value.get())


async def test_a_release_with_failed_entries_is_not_counted_as_released(
    aws: AwsClients, moto_endpoint: str, unique: str
) -> None:
    """Stop while two messages are in a handler: their release (visibility 0) is one batch, and
    AWS fails one entry. One is released, one is a counted failure (it comes back after its
    visibility timeout)."""
    sqs = await aws.client("sqs")
    url = (await sqs.create_queue(QueueName=f"p-{unique}", Attributes={"VisibilityTimeout": "60"}))[
        "QueueUrl"
    ]
    await sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(2)]
    )
    started: list[str] = []

    async def stuck(body: str) -> None:
        started.append(body)
        await asyncio.Event().wait()

    async with (
        AwsProxy(moto_endpoint) as proxy,
        AwsClients(endpoint_url=proxy.url, max_attempts=1) as through,
    ):
        metrics = Metrics()
        consumer = SqsConsumer(
            clients=through,
            queue_url=url,
            handler=stuck,
            metrics=metrics,
            health=Health(),
            wait_seconds=1,
            drain_seconds=0.5,
            visibility_timeout=60,
        )
        rule = proxy.unprocessed("ChangeMessageVisibilityBatch", count=1)
        stop = asyncio.Event()
        task = asyncio.ensure_future(consumer.run(stop))
        deadline = time.monotonic() + 30
        while len(started) < 2:
            assert time.monotonic() < deadline, started
            await asyncio.sleep(0.05)
        stop.set()
        async with asyncio.timeout(30):
            await task
    assert rule.applied == 1
    assert _value(metrics, "messages", outcome="released") == 1
    assert _value(metrics, "sqs_failures", operation="release") == 1
    attrs = await sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "1"
    assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"
