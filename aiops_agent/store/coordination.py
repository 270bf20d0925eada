"""Leases and windowed counters shared by replicas, in the patterns table.

- A lease (one active recovery per resource) is an item written with a condition: absent, held by
  the same holder, or expired. A fencing counter goes up with every new holder.
- A windowed counter (destructive incidents per minute, for the circuit breaker) is one item per
  minute bucket, incremented atomically with ADD, summed over the window. Idempotent per member:
  each bucket keeps the set of members counted, so a replayed increment does not count twice.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from aiops_agent.aws.clients import AwsClients

LEASE_PK = "lease"
COUNTER_PK = "counter"


def lease_item_key(key: str) -> dict[str, dict[str, str]]:
    """The DynamoDB key of the lease item `key` (the incident store releases one in its write)."""
    return {"pk": {"S": LEASE_PK}, "sk": {"S": key}}


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


def _bucket(at: datetime) -> str:
    return at.strftime("%Y%m%dT%H%M")


BATCH_GET_ATTEMPTS = 5
"""BatchGetItem calls per count while DynamoDB leaves keys unprocessed (backoff 50 ms, doubling)."""


class IncompleteCount(RuntimeError):
    """DynamoDB left minute buckets unread after every retry: the count would be too low."""


BUCKET_SETTLE = timedelta(seconds=10)
"""After its minute ends, how long a bucket may still be added to (replicas' clocks differ)."""


def _bucket_end(bucket: str) -> datetime:
    return datetime.strptime(bucket, "%Y%m%dT%H%M").replace(tzinfo=UTC) + timedelta(minutes=1)


def _buckets(now: datetime, window: timedelta) -> list[str]:
    minutes = max(1, int(window.total_seconds() // 60))
    return [_bucket(now - timedelta(minutes=m)) for m in range(minutes)]


class MemoryCoordination:
    def __init__(self) -> None:
        self._leases: dict[str, tuple[str, int, int]] = {}
        self._counters: dict[tuple[str, str], set[str]] = {}

    async def acquire(self, key: str, holder: str, now: datetime, ttl: timedelta) -> str | None:
        current = self._leases.get(key)
        if current is not None and current[0] != holder and current[1] > _epoch(now):
            return current[0]
        fence = (current[2] if current else 0) + (0 if current and current[0] == holder else 1)
        self._leases[key] = (holder, _epoch(now + ttl), fence)
        return None

    async def release(self, key: str, holder: str) -> None:
        current = self._leases.get(key)
        if current is not None and current[0] == holder:
            del self._leases[key]

    async def peek(self, counter: str, now: datetime, window: timedelta) -> int:
        """The number of members counted within `window`, counting nothing (for `status`)."""
        return sum(len(self._counters.get((counter, b), ())) for b in _buckets(now, window))

    async def count(self, counter: str, member: str, now: datetime, window: timedelta) -> int:
        self._counters.setdefault((counter, _bucket(now)), set()).add(member)
        return sum(len(self._counters.get((counter, b), ())) for b in _buckets(now, window))


class DynamoCoordination:
    def __init__(self, clients: AwsClients, table: str, *, deadline_s: float = 10.0) -> None:
        self._clients = clients
        self._table = table
        self._deadline = deadline_s
        self._settled: dict[tuple[str, str], int] = {}
        """(counter, minute) -> its count, for minutes that can no longer change."""

    async def _ddb(self) -> Any:
        return await self._clients.client("dynamodb")

    async def acquire(self, key: str, holder: str, now: datetime, ttl: timedelta) -> str | None:
        """Take or renew the lease on `key`; None if held now, else the current holder."""
        ddb = await self._ddb()
        try:
            async with asyncio.timeout(self._deadline):
                await ddb.update_item(
                    TableName=self._table,
                    Key=lease_item_key(key),
                    UpdateExpression=(
                        "SET holder = :h, lease_until = :u, expires_at = :x ADD fence :one"
                    ),
                    ConditionExpression=(
                        "attribute_not_exists(pk) OR holder = :h OR lease_until <= :now"
                    ),
                    ExpressionAttributeValues={
                        ":h": {"S": holder},
                        ":u": {"N": str(_epoch(now + ttl))},
                        ":x": {"N": str(_epoch(now + ttl + timedelta(days=1)))},
                        ":now": {"N": str(_epoch(now))},
                        ":one": {"N": "1"},
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ddb.exceptions.ConditionalCheckFailedException as exc:
            item = getattr(exc, "response", {}).get("Item", {})
            return str(item.get("holder", {}).get("S", "another incident"))
        return None

    async def release(self, key: str, holder: str) -> None:
        ddb = await self._ddb()
        try:
            async with asyncio.timeout(self._deadline):
                await ddb.delete_item(
                    TableName=self._table,
                    Key=lease_item_key(key),
                    ConditionExpression="holder = :h",
                    ExpressionAttributeValues={":h": {"S": holder}},
                )
        except ddb.exceptions.ConditionalCheckFailedException:
            return  # someone else holds it now (ours expired): theirs to release

    async def peek(self, counter: str, now: datetime, window: timedelta) -> int:
        """The number of members counted within `window`, counting nothing (for `status`)."""
        ddb = await self._ddb()
        keys = [
            {"pk": {"S": COUNTER_PK}, "sk": {"S": f"{counter}#{b}"}}
            for b in _buckets(now, window)[:100]
        ]
        async with asyncio.timeout(self._deadline):
            got = await ddb.batch_get_item(
                RequestItems={self._table: {"Keys": keys, "ProjectionExpression": "members"}}
            )
        items = got.get("Responses", {}).get(self._table, [])
        return sum(len(item.get("members", {}).get("SS", [])) for item in items)

    async def count(self, counter: str, member: str, now: datetime, window: timedelta) -> int:
        """Count `member` in this minute's bucket (once), return the window's total.

        One UpdateItem adds the member and returns this minute's set. Earlier minutes are read
        with one BatchGetItem only while they may still change: a minute closed more than
        `BUCKET_SETTLE` ago is read once and remembered by this replica. A replica whose clock
        runs that far behind could still add to it unseen; the breaker would then count one
        less, for the rest of the window.
        """
        ddb = await self._ddb()
        buckets = _buckets(now, window)
        async with asyncio.timeout(self._deadline):
            updated = await ddb.update_item(
                TableName=self._table,
                Key={"pk": {"S": COUNTER_PK}, "sk": {"S": f"{counter}#{buckets[0]}"}},
                UpdateExpression="ADD members :m SET expires_at = :x",
                ExpressionAttributeValues={
                    ":m": {"SS": [member]},
                    ":x": {"N": str(_epoch(now + window + timedelta(hours=1)))},
                },
                ReturnValues="ALL_NEW",  # the set even when the member was in it already
            )
            total = len(updated.get("Attributes", {}).get("members", {}).get("SS", []))
            earlier = buckets[1:100]
            unsettled = [b for b in earlier if (counter, b) not in self._settled]
            if unsettled:
                counts = await self._read_buckets(ddb, counter, unsettled)
                for bucket, n in counts.items():
                    if _bucket_end(bucket) + BUCKET_SETTLE <= now:
                        self._settled[(counter, bucket)] = n
                    total += n
        total += sum(self._settled.get((counter, b), 0) for b in earlier if b not in unsettled)
        oldest = buckets[-1]
        for key in [k for k in self._settled if k[0] == counter and k[1] < oldest]:
            del self._settled[key]
        return total

    async def _read_buckets(self, ddb: Any, counter: str, buckets: list[str]) -> dict[str, int]:
        """Members per bucket; a bucket with no item counted nobody. Keys DynamoDB leaves in
        `UnprocessedKeys` (throttling, size limits, an internal failure) are asked again with
        backoff; if some remain, `IncompleteCount`: a bucket not read is never taken for 0."""
        counts = dict.fromkeys(buckets, 0)
        keys = [{"pk": {"S": COUNTER_PK}, "sk": {"S": f"{counter}#{b}"}} for b in buckets]
        request: dict[str, Any] = {
            self._table: {"Keys": keys, "ProjectionExpression": "sk, members"}
        }
        for attempt in range(BATCH_GET_ATTEMPTS):
            if attempt:
                await asyncio.sleep(0.05 * 2 ** (attempt - 1))
            got = await ddb.batch_get_item(RequestItems=request)
            for item in got.get("Responses", {}).get(self._table, []):
                bucket = item["sk"]["S"].split("#", 1)[1]
                counts[bucket] = len(item.get("members", {}).get("SS", []))
            request = got.get("UnprocessedKeys") or {}
            if not request:
                return counts
        left = len(request.get(self._table, {}).get("Keys", []))
        raise IncompleteCount(
            f"{counter}: {left} minute buckets unread after {BATCH_GET_ATTEMPTS} BatchGetItem calls"
        )
