"""The realism layer of the proxy (tests/aws_realism.py): what botocore sees through each rule.

Other tests rely on these semantics (stale reads, Insights that stay Running, partial batches,
StateReason, the AWS error codes), so they are pinned here against real botocore calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from aiops_agent.aws.clients import AwsClients
from tests.aws_proxy import AwsProxy, ErrorKind

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def through(proxy: AwsProxy) -> AsyncIterator[AwsClients]:
    """Clients through the proxy, one attempt per call (what the proxy answers is what we see)."""
    async with AwsClients(endpoint_url=proxy.url, max_attempts=1) as clients:
        yield clients


@pytest.mark.parametrize(
    ("service", "operation", "kind", "code", "status"),
    [
        ("sqs", "SendMessage", "kms_throttle", "KMS.ThrottlingException", 400),
        ("sqs", "SendMessage", "kms_access_denied", "KMS.AccessDeniedException", 400),
        ("sqs", "SendMessage", "access_denied", "AccessDenied", 400),
        ("sqs", "SendMessage", "unavailable", "ServiceUnavailable", 503),
        ("ec2", "DescribeInstances", "access_denied", "UnauthorizedOperation", 403),
        ("ec2", "DescribeInstances", "unavailable", "Unavailable", 503),
        ("dynamodb", "ListTables", "access_denied", "AccessDeniedException", 400),
    ],
)
async def test_error_kinds_read_as_the_aws_codes(
    proxy: AwsProxy,
    through: AwsClients,
    aws: AwsClients,
    unique: str,
    service: str,
    operation: str,
    kind: ErrorKind,
    code: str,
    status: int,
) -> None:
    client = await through.client(service)
    call: Any
    if service == "sqs":
        url = (await (await aws.client("sqs")).create_queue(QueueName=f"k-{unique}"))["QueueUrl"]
        call = lambda: client.send_message(QueueUrl=url, MessageBody="x")  # noqa: E731
    elif service == "ec2":
        call = client.describe_instances
    else:
        call = client.list_tables
    proxy.fail(operation, times=1, error=kind)
    with pytest.raises(ClientError) as caught:
        await call()
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    await call()
    assert proxy.count(operation) == 1 and proxy.count(operation, outcome="failed") == 1


async def test_a_network_fault_drops_the_connection(proxy: AwsProxy, through: AwsClients) -> None:
    dynamodb = await through.client("dynamodb")
    proxy.fail("ListTables", times=1, error="network")
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        await dynamodb.list_tables()
    await dynamodb.list_tables()
    assert proxy.count("ListTables") == 1


async def test_an_outage_lasts_for_its_seconds(proxy: AwsProxy, through: AwsClients) -> None:
    dynamodb = await through.client("dynamodb")
    fault = proxy.fail("ListTables", for_seconds=1.0, error="unavailable")
    failures = 0
    deadline = time.monotonic() + 20
    while True:
        try:
            await dynamodb.list_tables()
            break
        except ClientError:
            failures += 1
            assert time.monotonic() < deadline, "the outage never ended"
            await asyncio.sleep(0.1)
    assert failures >= 1 and fault.exhausted and fault.failed == failures


async def _instance(aws: AwsClients) -> str:
    ec2 = await aws.client("ec2")
    got = await ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)
    return str(got["Instances"][0]["InstanceId"])


async def _state(ec2: Any, instance_id: str) -> str:
    got = await ec2.describe_instances(InstanceIds=[instance_id])
    return str(got["Reservations"][0]["Instances"][0]["State"]["Name"])


async def test_stale_reads_answer_the_state_before_the_write(
    proxy: AwsProxy, through: AwsClients, aws: AwsClients
) -> None:
    instance_id = await _instance(aws)
    ec2 = await through.client("ec2")
    stale = proxy.stale_reads("DescribeInstances", seconds=60, reads=2)
    assert await _state(ec2, instance_id) == "running"
    await ec2.stop_instances(InstanceIds=[instance_id])
    assert stale.stale and stale.windows == 1
    assert await _state(ec2, instance_id) == "running"  # stale
    assert await _state(ec2, instance_id) == "running"  # stale
    assert await _state(ec2, instance_id) == "stopped"  # the window's two reads are spent
    assert stale.served == 2
    assert proxy.count("DescribeInstances", outcome="served") == 2


async def test_stale_reads_end_after_their_seconds(
    proxy: AwsProxy, through: AwsClients, aws: AwsClients
) -> None:
    instance_id = await _instance(aws)
    ec2 = await through.client("ec2")
    stale = proxy.stale_reads("DescribeInstances", after="StopInstances", seconds=1.0)
    await _state(ec2, instance_id)
    await ec2.stop_instances(InstanceIds=[instance_id])
    assert await _state(ec2, instance_id) == "running"
    deadline = time.monotonic() + 20
    while await _state(ec2, instance_id) != "stopped":
        assert time.monotonic() < deadline, "the stale window never closed"
        await asyncio.sleep(0.1)
    assert not stale.stale


async def test_state_reason_is_what_the_test_says(
    proxy: AwsProxy, through: AwsClients, aws: AwsClients
) -> None:
    instance_id, other = await _instance(aws), await _instance(aws)
    await (await aws.client("ec2")).stop_instances(InstanceIds=[instance_id, other])
    proxy.state_reason(
        instance_id,
        code="Server.InternalError",
        message="Server.InternalError: Internal error on launch",
        transition_reason="Server.InternalError",
    )
    ec2 = await through.client("ec2")
    got = await ec2.describe_instances(InstanceIds=[instance_id, other])
    by_id = {i["InstanceId"]: i for r in got["Reservations"] for i in r["Instances"]}
    assert by_id[instance_id]["StateReason"] == {
        "Code": "Server.InternalError",
        "Message": "Server.InternalError: Internal error on launch",
    }
    assert by_id[instance_id]["StateTransitionReason"] == "Server.InternalError"
    assert by_id[instance_id]["State"]["Name"] == "stopped"
    assert by_id[other]["StateReason"]["Code"] == "Client.UserInitiatedShutdown"


async def _log_group(aws: AwsClients, unique: str) -> str:
    logs = await aws.client("logs")
    group = f"/realism/{unique}"
    await logs.create_log_group(logGroupName=group)
    return group


async def _start(logs: Any, group: str) -> str:
    got = await logs.start_query(
        logGroupName=group, startTime=0, endTime=int(time.time()), queryString="fields @message"
    )
    return str(got["queryId"])


async def test_insights_queries_run_for_a_while_and_stop(
    proxy: AwsProxy, through: AwsClients, aws: AwsClients, unique: str
) -> None:
    group = await _log_group(aws, unique)
    insights = proxy.insights(polls=2)
    logs = await through.client("logs")
    first, second = await _start(logs, group), await _start(logs, group)
    assert (await logs.get_query_results(queryId=first))["status"] == "Running"
    assert (await logs.get_query_results(queryId=first))["status"] == "Running"
    assert (await logs.get_query_results(queryId=first))["status"] == "Complete"
    assert (await logs.stop_query(queryId=second))["success"] is True
    assert (await logs.get_query_results(queryId=second))["status"] == "Cancelled"
    with pytest.raises(ClientError) as caught:
        await logs.stop_query(queryId=second)  # no longer running
    assert caught.value.response["Error"]["Code"] == "InvalidParameterException"
    assert insights.stopped == 1 and insights.running == 0


async def test_insights_refuses_queries_past_the_concurrency_limit(
    proxy: AwsProxy, through: AwsClients, aws: AwsClients, unique: str
) -> None:
    group = await _log_group(aws, unique)
    insights = proxy.insights(running_for=600, concurrency=2)
    logs = await through.client("logs")
    first = await _start(logs, group)
    await _start(logs, group)
    with pytest.raises(ClientError) as caught:
        await _start(logs, group)
    assert caught.value.response["Error"]["Code"] == "LimitExceededException"
    await logs.stop_query(queryId=first)  # frees a slot
    await _start(logs, group)
    assert insights.rejected == 1 and insights.max_running == 2


async def test_batch_get_item_leaves_unprocessed_keys(
    proxy: AwsProxy, through: AwsClients, aws: AwsClients, unique: str
) -> None:
    raw = await aws.client("dynamodb")
    table = f"t-{unique}"
    await raw.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for key in ("a", "b", "c"):
        await raw.put_item(TableName=table, Item={"pk": {"S": key}, "v": {"N": "1"}})
    rule = proxy.unprocessed("BatchGetItem", count=1)
    ddb = await through.client("dynamodb")
    keys = [{"pk": {"S": k}} for k in ("a", "b", "c")]
    got = await ddb.batch_get_item(RequestItems={table: {"Keys": keys}})
    assert sorted(i["pk"]["S"] for i in got["Responses"][table]) == ["a", "b"]
    assert got["UnprocessedKeys"] == {table: {"Keys": [{"pk": {"S": "c"}}]}}
    again = await ddb.batch_get_item(RequestItems=got["UnprocessedKeys"])  # times=1: whole now
    assert [i["pk"]["S"] for i in again["Responses"][table]] == ["c"]
    assert rule.applied == 1 and rule.held_back == 1


async def test_sqs_batches_report_failed_entries(
    proxy: AwsProxy, through: AwsClients, aws: AwsClients, unique: str
) -> None:
    raw = await aws.client("sqs")
    url = (await raw.create_queue(QueueName=f"b-{unique}"))["QueueUrl"]
    sqs = await through.client("sqs")
    proxy.unprocessed("SendMessageBatch", count=1)
    got = await sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(3)]
    )
    assert [s["Id"] for s in got["Successful"]] == ["0", "1"]
    assert [(f["Id"], f["SenderFault"]) for f in got["Failed"]] == [("2", False)]
    received = await raw.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    assert sorted(m["Body"] for m in received["Messages"]) == ["m0", "m1"]
    proxy.unprocessed("DeleteMessageBatch", count=1)
    entries = [
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
        for i, m in enumerate(received["Messages"])
    ]
    deleted = await sqs.delete_message_batch(QueueUrl=url, Entries=entries)
    assert len(deleted["Successful"]) == 1 and len(deleted["Failed"]) == 1
    attrs = await raw.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )
    assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"


async def test_a_transform_rewrites_any_answer(proxy: AwsProxy, through: AwsClients) -> None:
    def no_tables(_ex: Any, reply: Any) -> Any:
        return reply.with_json({**reply.json(), "TableNames": ["invented"]})

    rule = proxy.transform("ListTables", no_tables)
    got = await (await through.client("dynamodb")).list_tables()
    assert got["TableNames"] == ["invented"] and rule.applied == 1
    with contextlib.suppress(Exception):
        proxy.remove(rule)
