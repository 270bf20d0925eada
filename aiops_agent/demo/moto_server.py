"""`python -m aiops_agent.demo.moto_server -H 127.0.0.1 -p PORT`: moto's server, with DynamoDB's
requests serialized and its transactions rolled back item by item.

moto runs each request on a thread of its own, and its TransactWriteItems is not isolated: it
snapshots every table the transaction touches and, when the transaction is cancelled (a failed
condition), puts those snapshots back, so a write that another thread made in between is lost
(measured: 8 of 60 PutItems made beside 60 cancelled transactions were gone). DynamoDB itself
never loses a committed write; our conditional saves then read a version that was acknowledged
and later vanished, and an action could run twice. Serializing DynamoDB's requests inside the
emulator gives back DynamoDB's guarantee; other services (SQS long polls above all) keep their
threads.

moto's snapshot is also a deep copy of every table the transaction touches, taken before each
transaction, so a transaction costs time in proportion to everything stored (measured: 8 ms
with a few hundred items, 230 ms with 600 incidents and 2,700 audit items, and pauses of
seconds while the copies are collected). DynamoDB's transactions cost the same whatever the
table holds, and a benchmark on moto then measured the copies, not the agent. So, DynamoDB's
requests being serialized, the snapshot is of the items the transaction names (one per
operation), and a cancelled transaction puts those back. A table with a stream keeps moto's own
whole-table snapshot (a rolled-back write must also leave the stream).

moto also ignores TransactWriteItems' `ClientRequestToken`, which botocore fills in once per
call and sends again on each retry. DynamoDB answers a repeat of a transaction that succeeded,
within 10 minutes, with success and changes nothing (a repeat with other parameters is an
IdempotentParameterMismatchException). moto ran the repeat again, so a retried transaction
whose first answer was lost (a timeout, a 500 after the write landed) failed on its own write:
a create looked like another delivery's. Here a token is remembered for 10 minutes as DynamoDB
does.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_DYNAMODB = threading.Lock()
_call_action = DynamoHandler.call_action


def _serialized(self: DynamoHandler) -> Any:
    with _DYNAMODB:
        return _call_action(self)


Touched = tuple[Table, DynamoType, DynamoType | None, Item | None]
"""A table, an item's key in it, and a copy of the item as it was (None: there was none)."""


def touched_items(
    backend: DynamoDBBackend, transact_items: list[dict[str, Any]]
) -> list[Touched] | None:
    """The items a transaction names, each as it is now (a copy); None when that cannot be told
    for every operation (a missing table or key, a table with a stream): moto's own snapshot
    is used then."""
    found: list[Touched] = []
    for entry in transact_items:
        if len(entry) != 1:
            return None
        op = next(iter(entry.values()))
        table = backend.tables.get(op.get("TableName", "")) if isinstance(op, dict) else None
        if table is None or table.stream_shard is not None:
            return None
        attrs = op.get("Item") if "Item" in op else op.get("Key")
        if not isinstance(attrs, dict) or table.hash_key_attr not in attrs:
            return None
        hash_key = DynamoType(attrs[table.hash_key_attr])
        range_key = None
        if table.range_key_attr is not None:
            if table.range_key_attr not in attrs:
                return None
            range_key = DynamoType(attrs[table.range_key_attr])
        item = table.get_item(hash_key, range_key)
        found.append((table, hash_key, range_key, copy.deepcopy(item)))
    return found


def restore(items: list[Touched]) -> None:
    """Put each item back as it was before the transaction."""
    for table, hash_key, range_key, item in items:
        if range_key is not None:
            rows = table.items[hash_key]
            if item is None:
                rows.pop(range_key, None)
            else:
                rows[range_key] = item
        elif item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item  # type: ignore[assignment]


class _ItemSnapshots:
    """Stands in for the `copy` module in moto's DynamoDB models: while `skipping` (one
    transaction, DynamoDB's requests being serialized) a table is not deep-copied."""

    def __init__(self) -> None:
        self.skipping = False

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        if self.skipping and isinstance(value, Table):
            return value  # moto's "rollback" then puts the same table back: nothing
        return copy.deepcopy(value, memo)

    @contextmanager
    def skip(self) -> Iterator[None]:
        self.skipping = True
        try:
            yield
        finally:
            self.skipping = False


_SNAPSHOTS = _ItemSnapshots()
_transact_write_items = DynamoDBBackend.transact_write_items


def _transact_item_snapshots(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    touched = touched_items(self, transact_items)
    if touched is None:
        _transact_write_items(self, transact_items)
        return
    try:
        with _SNAPSHOTS.skip():
            _transact_write_items(self, transact_items)
    except Exception:
        restore(touched)
        raise


IDEMPOTENCY_WINDOW_S = 600.0
"""How long DynamoDB remembers a transaction's ClientRequestToken after it succeeded."""


class IdempotentParameterMismatch(DynamodbException):
    error_type = ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException"

    def __init__(self) -> None:
        super().__init__(
            self.error_type,
            message="Request parameters do not match the original request with this client "
            "request token",
        )


class ClientTokens:
    """The transactions that succeeded in the last `window_s`, by ClientRequestToken."""

    def __init__(self, window_s: float = IDEMPOTENCY_WINDOW_S) -> None:
        self.window_s = window_s
        self._seen: dict[str, tuple[float, str, Any]] = {}

    def answer(self, token: str, fingerprint: str, now: float) -> Any | None:
        """The answer of the transaction `token` named, if it succeeded within the window."""
        while self._seen:  # oldest first: forget the tokens whose window has passed
            first = next(iter(self._seen))
            if now - self._seen[first][0] < self.window_s:
                break
            del self._seen[first]
        seen = self._seen.get(token)
        if seen is None:
            return None
        if seen[1] != fingerprint:
            raise IdempotentParameterMismatch()
        return seen[2]

    def succeeded(self, token: str, fingerprint: str, now: float, result: Any) -> None:
        self._seen[token] = (now, fingerprint, result)


_TOKENS = ClientTokens()
_handle_transact = DynamoHandler.transact_write_items


def _idempotent_transact(self: DynamoHandler) -> Any:
    """TransactWriteItems with DynamoDB's ClientRequestToken (DynamoDB's requests are
    serialized, so a token is looked up and remembered in one step)."""
    token = self.body.get("ClientRequestToken")
    if not token:
        return _handle_transact(self)
    fingerprint = json.dumps(self.body.get("TransactItems"), sort_keys=True)
    repeated = _TOKENS.answer(token, fingerprint, time.monotonic())
    if repeated is not None:
        return repeated
    result = _handle_transact(self)
    _TOKENS.succeeded(token, fingerprint, time.monotonic(), result)
    return result


def install() -> None:
    """Serialize DynamoDB's requests, roll transactions back item by item and honour their
    ClientRequestToken (idempotent)."""
    DynamoHandler.call_action = _serialized  # type: ignore[method-assign]
    setattr(dynamodb_models, "copy", _SNAPSHOTS)  # noqa: B010 (moto names it only inside)
    DynamoDBBackend.transact_write_items = _transact_item_snapshots  # type: ignore[method-assign]
    DynamoHandler.transact_write_items = _idempotent_transact  # type: ignore[method-assign]


if __name__ == "__main__":
    install()
    main()
