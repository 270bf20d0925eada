"""The test emulator's TransactWriteItems: rolled back item by item, never by copying a table.

moto deep-copies every table a transaction touches before it runs, so on moto a transaction
costs time in proportion to what the tables hold (DynamoDB's does not), and a benchmark measured
the copies. aiops_agent/demo/moto_server.py snapshots only the items a transaction names. These
tests drive moto's DynamoDB backend in this process with that patch, count the tables copied
(a count, not a time) and check that a cancelled transaction still leaves every item as it was.
"""

from __future__ import annotations

from typing import Any

import pytest
from moto.dynamodb.exceptions import TransactionCanceledException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

import aiops_agent.demo.moto_server as moto_server

ITEMS = 200


def _backend(*, range_key: bool = False, stream: bool = False) -> DynamoDBBackend:
    backend = DynamoDBBackend("us-east-1", "123456789012")
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    attrs = [{"AttributeName": "pk", "AttributeType": "S"}]
    if range_key:
        schema.append({"AttributeName": "sk", "KeyType": "RANGE"})
        attrs.append({"AttributeName": "sk", "AttributeType": "S"})
    backend.create_table(
        "t",
        schema=schema,
        throughput=None,
        attr=attrs,
        global_indexes=None,
        indexes=None,
        streams={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"} if stream else None,
        billing_mode="PAY_PER_REQUEST",
        sse_specification=None,
        tags=[],
        deletion_protection_enabled=False,
        warm_throughput=None,
    )
    for i in range(ITEMS):
        item = {"pk": {"S": f"p{i}"}, "v": {"N": "1"}, "doc": {"S": "x" * 100}}
        if range_key:
            item["sk"] = {"S": "a"}
        backend.put_item("t", item)
    return backend


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """moto with the emulator's transactions; the names of the tables deep-copied."""
    copied: list[str] = []

    def record(table: Table, memo: dict[int, Any]) -> Table:
        copied.append(table.name)
        return table

    monkeypatch.setattr(Table, "__deepcopy__", record, raising=False)
    monkeypatch.setattr(moto_server.dynamodb_models, "copy", moto_server._SNAPSHOTS)
    monkeypatch.setattr(
        DynamoDBBackend, "transact_write_items", moto_server._transact_item_snapshots
    )
    return copied


def _value(backend: DynamoDBBackend, pk: str, sk: str | None = None) -> dict[str, Any] | None:
    item = backend.get_table("t").get_item(
        DynamoType({"S": pk}), DynamoType({"S": sk}) if sk is not None else None
    )
    return None if item is None else item.to_json()["Attributes"]


def _put(pk: str, condition: str | None = None, **extra: Any) -> dict[str, Any]:
    put: dict[str, Any] = {"TableName": "t", "Item": {"pk": {"S": pk}, "v": {"N": "9"}, **extra}}
    if condition:
        put["ConditionExpression"] = condition
    return {"Put": put}


def test_a_committed_transaction_copies_no_table(patched: list[str]) -> None:
    backend = _backend()
    backend.transact_write_items(
        [
            _put("new", "attribute_not_exists(pk)"),
            {"Delete": {"TableName": "t", "Key": {"pk": {"S": "p1"}}}},
        ]
    )
    assert patched == []
    assert _value(backend, "new") == {"pk": {"S": "new"}, "v": {"N": "9"}}
    assert _value(backend, "p1") is None


def test_unpatched_moto_copies_every_table_it_touches(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the patch removes: moto's own snapshot, a copy of the whole table."""
    copied: list[str] = []
    monkeypatch.setattr(
        Table, "__deepcopy__", lambda table, memo: copied.append(table.name) or table, raising=False
    )
    backend = _backend()
    backend.transact_write_items([_put("new", "attribute_not_exists(pk)")])
    assert copied == ["t"]


def test_a_cancelled_transaction_puts_back_the_items_it_named(patched: list[str]) -> None:
    backend = _backend()
    before = {f"p{i}": _value(backend, f"p{i}") for i in range(ITEMS)}
    with pytest.raises(TransactionCanceledException):
        backend.transact_write_items(
            [
                _put("new", "attribute_not_exists(pk)"),  # applied, then undone
                _put("p0"),  # an overwrite, undone
                {  # an in-place update, undone
                    "Update": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "p1"}},
                        "UpdateExpression": "SET v = :n",
                        "ExpressionAttributeValues": {":n": {"N": "5"}},
                    }
                },
                {"Delete": {"TableName": "t", "Key": {"pk": {"S": "p2"}}}},  # undone
                _put("p3", "attribute_not_exists(pk)"),  # fails: cancels the transaction
            ]
        )
    assert patched == []
    assert _value(backend, "new") is None
    assert {f"p{i}": _value(backend, f"p{i}") for i in range(ITEMS)} == before


def test_a_cancelled_transaction_on_a_table_with_a_range_key(patched: list[str]) -> None:
    backend = _backend(range_key=True)
    with pytest.raises(TransactionCanceledException):
        backend.transact_write_items(
            [
                _put("p0", sk={"S": "b"}),  # a new item under an existing hash key
                _put("p1", "attribute_not_exists(pk)", sk={"S": "a"}),  # fails
            ]
        )
    assert _value(backend, "p0", "b") is None
    assert _value(backend, "p0", "a") is not None


def test_a_table_with_a_stream_keeps_moto_s_snapshot(patched: list[str]) -> None:
    """A rolled-back write must leave the stream too: that table is still copied whole."""
    backend = _backend(stream=True)
    backend.transact_write_items([_put("new", "attribute_not_exists(pk)")])
    assert patched == ["t"]


def test_a_client_token_is_remembered_for_ten_minutes() -> None:
    tokens = moto_server.ClientTokens()
    assert tokens.answer("t1", "params", now=0.0) is None
    tokens.succeeded("t1", "params", now=0.0, result="ok")
    assert tokens.answer("t1", "params", now=599.0) == "ok"
    with pytest.raises(moto_server.IdempotentParameterMismatch):
        tokens.answer("t1", "other params", now=599.0)
    assert tokens.answer("t1", "params", now=600.0) is None  # a new request after the window
