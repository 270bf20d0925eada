"""The test emulator keeps DynamoDB's promises about transactions.

moto, left alone, puts back its snapshot of a table when a transaction is cancelled, and loses
the writes other threads made meanwhile (aiops_agent/demo/moto_server.py). Every conditional
save of ours relies on a write that was acknowledged staying written. And moto ignores the
ClientRequestToken that makes a retried transaction idempotent on DynamoDB.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from aiops_agent.aws.clients import AwsClients
from aiops_agent.store.dynamodb import DynamoIncidentStore
from aiops_agent.store.tables import ensure_tables
from tests.aws_proxy import AwsProxy
from tests.aws_rules import Exchange, Proceed, Reply, Rule, error_reply, op_set
from tests.integration.test_audit_trail import fresh


async def test_a_cancelled_transaction_loses_no_concurrent_write(
    aws: AwsClients, unique: str
) -> None:
    ddb = await aws.client("dynamodb")
    table = f"iso-{unique}"
    await ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # A table large enough that moto's snapshot of it takes a while.
    for start in range(0, 300, 25):
        await ddb.batch_write_item(
            RequestItems={
                table: [
                    {"PutRequest": {"Item": {"pk": {"S": f"seed{i}"}, "doc": {"S": "x" * 2000}}}}
                    for i in range(start, start + 25)
                ]
            }
        )

    async def cancelled(i: int) -> None:
        existing = {"pk": {"S": f"seed{i}"}}
        try:
            await ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": table,
                            "Item": existing,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    }
                ]
            )
        except ddb.exceptions.TransactionCanceledException:
            return
        raise AssertionError("the condition should have cancelled the transaction")

    async def committed(i: int) -> None:
        await ddb.put_item(TableName=table, Item={"pk": {"S": f"new{i}"}})

    await asyncio.gather(*(f(i) for i in range(60) for f in (cancelled, committed)))

    lost = [
        i
        for i in range(60)
        if "Item" not in await ddb.get_item(TableName=table, Key={"pk": {"S": f"new{i}"}})
    ]
    assert lost == []


class AnswerLost(Rule):
    """The first `times` matching writes (TransactWriteItems unless told) land in the emulator,
    and their answer is a 500 (what a timeout or a dropped connection after the write does):
    botocore retries."""

    def __init__(self, times: int = 1, operation: str = "TransactWriteItems") -> None:
        self.left = times
        self.operations = op_set(operation)

    def matches(self, ex: Exchange) -> bool:
        return self.left > 0 and super().matches(ex)

    async def apply(self, ex: Exchange, proceed: Proceed) -> Reply:
        await proceed(ex)
        self.left -= 1
        return error_reply(ex.protocol, ex.service, "internal")


async def _table(ddb: Any, name: str) -> None:
    await ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


async def test_a_transaction_retried_after_it_landed_succeeds_once(
    aws: AwsClients, proxy: AwsProxy, unique: str
) -> None:
    """DynamoDB: a repeat of a transaction that succeeded, with the same ClientRequestToken
    (botocore sends the same on each retry), within 10 minutes succeeds and changes nothing."""
    table = f"tok-{unique}"
    await _table(await aws.client("dynamodb"), table)
    put = {
        "Put": {
            "TableName": table,
            "Item": {"pk": {"S": "a"}, "n": {"N": "1"}},
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }
    proxy.add(AnswerLost())
    async with AwsClients(endpoint_url=proxy.url, max_attempts=3) as retrying:
        ddb = await retrying.client("dynamodb")
        await ddb.transact_write_items(TransactItems=[put])  # 500 once, then the retry
        attempts = proxy.select(operation="TransactWriteItems")
        assert len(attempts) == 2
        assert attempts[0].params["ClientRequestToken"] == attempts[1].params["ClientRequestToken"]
        # Another call (a new token) is a new transaction: the condition fails now.
        with pytest.raises(ddb.exceptions.TransactionCanceledException):
            await ddb.transact_write_items(TransactItems=[put])
        # The same token with other parameters is refused, as DynamoDB does.
        token = attempts[0].params["ClientRequestToken"]
        other = {"Put": {**put["Put"], "Item": {"pk": {"S": "b"}}}}
        with pytest.raises(ClientError) as refused:
            await ddb.transact_write_items(TransactItems=[other], ClientRequestToken=token)
        assert refused.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    got = await (await aws.client("dynamodb")).get_item(TableName=table, Key={"pk": {"S": "a"}})
    assert got["Item"]["n"] == {"N": "1"}


async def test_a_create_whose_answer_was_lost_is_the_caller_s_own(
    aws: AwsClients, proxy: AwsProxy, unique: str
) -> None:
    """The incident store's create, retried by botocore after it landed, reports it created
    the incident (on plain moto it reported another delivery's: a duplicate, and no review)."""
    await ensure_tables(aws, f"inc-{unique}", f"pat-{unique}")
    incident = fresh()
    proxy.add(AnswerLost())
    async with AwsClients(endpoint_url=proxy.url, max_attempts=3) as retrying:
        store = DynamoIncidentStore(retrying, f"inc-{unique}", audit_table=f"pat-{unique}")
        assert await store.create(incident) is True
        assert len(proxy.select(operation="TransactWriteItems")) == 2
        # A second delivery, decided a moment later: stored already.
        again = incident.model_copy(update={"created_at": incident.created_at + timedelta(1)})
        assert await store.create(again) is False
