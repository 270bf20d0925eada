"""The SQS consumer against the moto server: delete after success, nothing lost."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.obs.health import Health
from aiops_agent.obs.metrics import Metrics
from aiops_agent.sources.sqs import SqsConsumer


class Poison(Exception):
    reason = "not_json"


@dataclass
class Queues:
    url: str
    dlq_url: str


MakeQueues = Callable[[int], Awaitable[Queues]]


@pytest.fixture
def make_queues(aws: AwsClients, unique: str) -> MakeQueues:
    """A queue with the given visibility timeout and its dead-letter queue (5 receives)."""

    async def make(visibility: int) -> Queues:
        sqs = await aws.client("sqs")
        dlq = (await sqs.create_queue(QueueName=f"dlq-{unique}"))["QueueUrl"]
        attrs = await sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
        redrive = {"deadLetterTargetArn": attrs["Attributes"]["QueueArn"], "maxReceiveCount": "5"}
        url = (
            await sqs.create_queue(
                QueueName=f"q-{unique}",
                Attributes={
                    "VisibilityTimeout": str(visibility),
                    "RedrivePolicy": json.dumps(redrive),
                },
            )
        )["QueueUrl"]
        return Queues(url, dlq)

    return make


@pytest.fixture
async def queues(make_queues: MakeQueues) -> Queues:
    """SQS's default 30 s visibility: no test here is about it running out, so a slow machine
    cannot make a message come back while it is handled."""
    return await make_queues(30)


SHORT_VISIBILITY = 6
"""For the tests about redelivery and extension: expires soon, extended every 2 s."""


@contextlib.asynccontextmanager
async def consuming(
    aws: AwsClients, queues: Queues, handler: Callable[[str], Awaitable[None]], **kw: Any
) -> AsyncIterator[Metrics]:
    facts = await SqsConsumer.queue_facts(aws, queues.url)
    assert facts.dead_letter_url == queues.dlq_url
    metrics = Metrics()
    consumer = SqsConsumer(
        clients=aws,
        queue_url=queues.url,
        handler=handler,
        metrics=metrics,
        health=Health(),
        poison=(Poison,),
        dead_letter_url=facts.dead_letter_url,
        wait_seconds=1,
        visibility_timeout=facts.visibility_timeout,
        **kw,
    )
    stop = asyncio.Event()
    task = asyncio.ensure_future(consumer.run(stop))
    try:
        yield metrics
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def counts(aws: AwsClients, url: str) -> tuple[int, int]:
    sqs = await aws.client("sqs")
    got = await sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    a = got["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(0.2)


async def test_handled_messages_are_deleted(aws: AwsClients, queues: Queues) -> None:
    sqs = await aws.client("sqs")
    seen: list[str] = []

    async def handler(body: str) -> None:
        seen.append(body)

    for n in range(15):
        await sqs.send_message(QueueUrl=queues.url, MessageBody=f"m{n}")
    async with consuming(aws, queues, handler) as metrics:

        async def all_gone() -> bool:
            return len(seen) >= 15 and await counts(aws, queues.url) == (0, 0)

        await eventually(all_gone)
    assert sorted(seen) == sorted(f"m{n}" for n in range(15))
    assert (
        metrics.registry.get_sample_value("aiops_sqs_messages_total", {"outcome": "deleted"}) == 15
    )


async def test_a_failing_handler_leaves_the_message_for_redelivery(
    aws: AwsClients, make_queues: MakeQueues
) -> None:
    queues = await make_queues(SHORT_VISIBILITY)
    sqs = await aws.client("sqs")
    attempts: list[str] = []

    async def handler(body: str) -> None:
        attempts.append(body)
        if len(attempts) < 2:
            raise RuntimeError("store unavailable")

    await sqs.send_message(QueueUrl=queues.url, MessageBody="retry-me")
    async with consuming(aws, queues, handler):

        async def handled_twice() -> bool:
            return len(attempts) >= 2 and await counts(aws, queues.url) == (0, 0)

        await eventually(handled_twice, within=60)
    assert attempts == ["retry-me", "retry-me"]


async def test_poison_goes_to_the_dead_letter_queue_with_its_reason(
    aws: AwsClients, queues: Queues
) -> None:
    sqs = await aws.client("sqs")

    async def handler(body: str) -> None:
        raise Poison("not JSON")

    await sqs.send_message(QueueUrl=queues.url, MessageBody="{{{")
    async with consuming(aws, queues, handler) as metrics:

        async def in_dlq() -> bool:
            return await counts(aws, queues.dlq_url) == (1, 0)

        await eventually(in_dlq)
    got = await sqs.receive_message(QueueUrl=queues.dlq_url, MessageAttributeNames=["All"])
    (message,) = got["Messages"]
    assert message["Body"] == "{{{"
    assert message["MessageAttributes"]["aiops-reject-reason"]["StringValue"] == "not_json"
    assert await counts(aws, queues.url) == (0, 0)
    assert (
        metrics.registry.get_sample_value(
            "aiops_messages_dead_lettered_total", {"reason": "not_json"}
        )
        == 1
    )


async def test_a_long_step_keeps_its_message_invisible(
    aws: AwsClients, make_queues: MakeQueues, moto_endpoint: str
) -> None:
    """A step that outlasts the visibility timeout: extended, never redelivered, then deleted.

    The step ends when the test has seen its visibility extended three times (every third of
    the 6 s timeout: past the first 6 s for sure), not after a fixed sleep."""
    queues = await make_queues(SHORT_VISIBILITY)
    sqs = await aws.client("sqs")
    calls: list[str] = []
    aws_calls: list[str] = []
    release = asyncio.Event()

    async def slow(body: str) -> None:
        calls.append(body)
        await release.wait()

    def extensions() -> int:
        return aws_calls.count("ChangeMessageVisibilityBatch")

    await sqs.send_message(QueueUrl=queues.url, MessageBody="slow")
    async with (
        AwsClients(
            endpoint_url=moto_endpoint,
            max_attempts=1,
            on_call=lambda _s, op, _o: aws_calls.append(op),
        ) as counted,
        consuming(counted, queues, slow),
    ):

        async def extended_thrice() -> bool:
            return extensions() >= 3

        await eventually(extended_thrice, within=60)
        assert calls == ["slow"], "redelivered while its step was still running"
        release.set()

        async def done() -> bool:
            return await counts(aws, queues.url) == (0, 0)

        await eventually(done, within=60)
    assert calls == ["slow"], "redelivered while its step was still running"


async def test_stop_releases_unfinished_messages_at_once(aws: AwsClients, queues: Queues) -> None:
    sqs = await aws.client("sqs")
    started = asyncio.Event()

    async def never_finishes(body: str) -> None:
        started.set()
        await asyncio.sleep(3600)

    await sqs.send_message(QueueUrl=queues.url, MessageBody="stuck")
    async with consuming(aws, queues, never_finishes, drain_seconds=0.5):
        await asyncio.wait_for(started.wait(), timeout=60)
    # Released with visibility 0: receivable at once, not after the (30 s) visibility timeout.
    got = await sqs.receive_message(QueueUrl=queues.url, WaitTimeSeconds=1)
    assert [m["Body"] for m in got.get("Messages", [])] == ["stuck"]


async def test_half_full_receives_share_one_delete(
    aws: AwsClients, moto_endpoint: str, queues: Queues
) -> None:
    """Handled messages wait a moment for others: two receives of 5 cost one delete. The wait is
    3 s here (0.2 s in the daemon), so a slow machine between the two receives cannot split it."""
    calls: list[str] = []
    handled: list[str] = []

    async def handler(body: str) -> None:
        handled.append(body)

    async with AwsClients(
        endpoint_url=moto_endpoint, on_call=lambda _s, op, _o: calls.append(op)
    ) as counted:
        sqs = await aws.client("sqs")
        for batch in range(2):
            entries = [{"Id": str(i), "MessageBody": f"m{batch}-{i}"} for i in range(5)]
            await sqs.send_message_batch(QueueUrl=queues.url, Entries=entries)
        facts = await SqsConsumer.queue_facts(counted, queues.url)
        consumer = SqsConsumer(
            clients=counted,
            queue_url=queues.url,
            handler=handler,
            metrics=Metrics(),
            health=Health(),
            wait_seconds=1,
            visibility_timeout=facts.visibility_timeout,
            max_concurrency=5,  # one receive takes 5 at most: two half-full receives
            delete_linger_s=3.0,
        )
        stop = asyncio.Event()
        task = asyncio.ensure_future(consumer.run(stop))
        try:

            async def all_deleted() -> bool:
                return len(handled) == 10 and await counts(aws, queues.url) == (0, 0)

            await eventually(all_deleted)
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=30)
    assert calls.count("DeleteMessageBatch") == 1, calls
    assert calls.count("ReceiveMessage") >= 2


async def test_stop_deletes_what_was_handled_at_once(aws: AwsClients, queues: Queues) -> None:
    handled = asyncio.Event()

    async def handler(body: str) -> None:
        handled.set()

    sqs = await aws.client("sqs")
    await sqs.send_message(QueueUrl=queues.url, MessageBody="only")
    async with consuming(aws, queues, handler):
        await asyncio.wait_for(handled.wait(), timeout=60)
    assert await counts(aws, queues.url) == (0, 0)  # flushed on stop, not redelivered later


async def test_a_slow_message_holds_its_own_slot_not_its_batchs(
    aws: AwsClients, queues: Queues
) -> None:
    """A recovery step may run for a minute: the other messages of its receive are handled and
    deleted meanwhile, and their slots take new messages."""
    sqs = await aws.client("sqs")
    release = asyncio.Event()
    seen: list[str] = []

    async def handler(body: str) -> None:
        if body == "slow":
            await release.wait()
        seen.append(body)

    # One receive takes all four: the slow one and three quick ones, every slot.
    await sqs.send_message_batch(
        QueueUrl=queues.url,
        Entries=[{"Id": b, "MessageBody": b} for b in ("slow", "a0", "a1", "a2")],
    )
    async with consuming(aws, queues, handler, max_concurrency=4) as metrics:

        async def quick_done() -> bool:
            return len(seen) == 3 and await counts(aws, queues.url) == (0, 1)

        await eventually(quick_done)
        # Nine more: they go through the three freed slots while "slow" still runs.
        for n in range(9):
            await sqs.send_message(QueueUrl=queues.url, MessageBody=f"m{n}")

        async def others_done() -> bool:
            return len(seen) == 12 and await counts(aws, queues.url) == (0, 1)

        await eventually(others_done)
        assert "slow" not in seen
        release.set()

        async def all_gone() -> bool:
            return len(seen) == 13 and await counts(aws, queues.url) == (0, 0)

        await eventually(all_gone)
    deleted = metrics.registry.get_sample_value("aiops_sqs_messages_total", {"outcome": "deleted"})
    assert deleted == 13
