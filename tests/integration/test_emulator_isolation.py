"""The test emulator keeps DynamoDB's promise that a committed write is never lost.

moto, left alone, puts back its snapshot of a table when a transaction is cancelled, and loses
the writes other threads made meanwhile (aiops_agent/demo/moto_server.py). Every conditional
save of ours relies on a write that was acknowledged staying written.
"""

from __future__ import annotations

import asyncio

from aiops_agent.aws.clients import AwsClients


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
