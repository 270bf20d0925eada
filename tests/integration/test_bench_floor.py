"""The benchmark's bare floor writes as the daemon does: incident and audit entry in one
transaction, and a second claim on the same incident is lost, not an error."""

from __future__ import annotations

import asyncio

from aiops_agent.aws.clients import AwsClients
from aiops_agent.store.tables import ensure_tables
from bench.common import homogeneous, workload
from bench.floor import FloorLoop, expected_work


async def test_floor_writes_incident_and_audit_together_and_loses_a_second_claim(
    aws: AwsClients, unique: str
) -> None:
    incidents, patterns = f"inc-{unique}", f"pat-{unique}"
    await ensure_tables(aws, incidents, patterns)
    ddb = await aws.client("dynamodb")
    sqs = await aws.client("sqs")
    writes = {"normal": 0, "duplicate": 1, "recovered": 3, "review": 2}
    loop = FloorLoop(sqs, ddb, "unused", incidents, writes, 100, audit_table=patterns)
    (feed,) = homogeneous("recovered", 1)

    await loop._incident(feed.body)
    await loop._incident(feed.body)  # a redelivery: its claim is lost

    assert (loop.stats.puts, loop.stats.claims_lost) == (4, 1)
    scan = await ddb.scan(TableName=patterns)
    assert sorted(i["sk"]["S"] for i in scan["Items"]) == ["000001", "000002", "000003"]
    got = await ddb.scan(TableName=incidents)
    assert [i["version"]["N"] for i in got["Items"]] == ["3"]


async def test_a_first_delivery_whose_claim_already_applied_goes_on(
    aws: AwsClients, unique: str
) -> None:
    """botocore retried a claim that had applied (a timeout, a 500): the condition fails on
    the floor's own write. That is not a lost claim, and the incident's writes go on."""
    incidents, patterns = f"inc-{unique}", f"pat-{unique}"
    await ensure_tables(aws, incidents, patterns)
    ddb = await aws.client("dynamodb")
    sqs = await aws.client("sqs")
    writes = {"normal": 0, "duplicate": 1, "recovered": 3, "review": 2}
    loop = FloorLoop(sqs, ddb, "unused", incidents, writes, 100, audit_table=patterns)
    (feed,) = homogeneous("recovered", 1)
    incident_id = feed.event_id
    # The first attempt of the claim landed before its answer was lost.
    await loop._write(
        incident_id, 1, "EXECUTING", {"ConditionExpression": "attribute_not_exists(incident_id)"}
    )

    await loop._incident(feed.body)

    assert (loop.stats.claims_lost, loop.stats.retries_applied) == (0, 1)
    got = await ddb.scan(TableName=incidents)
    assert [i["version"]["N"] for i in got["Items"]] == ["3"]


async def test_the_floor_handles_and_deletes_every_message_as_the_consumer_does(
    aws: AwsClients, unique: str
) -> None:
    """The run loop: 25 messages of the mix, each handled (its writes done) and deleted; a
    message counts as handled once deleted, as the daemon's do."""
    incidents, patterns = f"inc-{unique}", f"pat-{unique}"
    await ensure_tables(aws, incidents, patterns)
    ddb = await aws.client("dynamodb")
    sqs = await aws.client("sqs")
    url = (await sqs.create_queue(QueueName=f"floor-{unique}"))["QueueUrl"]
    feeds = workload(25, seed=3)
    for start in range(0, len(feeds), 10):
        await sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": f.body}
                for i, f in enumerate(feeds[start : start + 10])
            ],
        )
    writes = {"normal": 0, "duplicate": 1, "recovered": 3, "review": 2}
    loop = FloorLoop(sqs, ddb, url, incidents, writes, 100, audit_table=patterns)
    stop = asyncio.Event()
    expected = expected_work((f.kind for f in feeds), writes)
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(loop.run(stop))
        async with asyncio.timeout(60):
            while True:
                if loop.stats.handled >= len(feeds):
                    break
                await asyncio.sleep(0.1)
        stop.set()
    assert loop.stats.handled == len(feeds)
    assert (loop.stats.puts, loop.stats.claims_lost) == (expected["puts"], expected["claims_lost"])
    assert loop.stats.deletes <= len(feeds)  # gathered: fewer calls than messages
    attrs = await sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0"
