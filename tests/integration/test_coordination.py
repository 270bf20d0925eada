"""Leases and windowed counters: the in-memory and the DynamoDB implementation, one contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.ports import Coordination
from aiops_agent.store.coordination import (
    BATCH_GET_ATTEMPTS,
    DynamoCoordination,
    IncompleteCount,
    MemoryCoordination,
)
from aiops_agent.store.tables import ensure_tables
from tests.aws_proxy import AwsProxy

T0 = datetime(2026, 11, 25, 12, 0, 30, tzinfo=UTC)
TTL = timedelta(minutes=15)


@pytest.fixture(params=["memory", "dynamodb"])
async def coord(
    request: pytest.FixtureRequest, aws: AwsClients, unique: str
) -> AsyncIterator[Coordination]:
    if request.param == "memory":
        yield MemoryCoordination()
        return
    await ensure_tables(aws, f"inc-{unique}", f"pat-{unique}")
    yield DynamoCoordination(aws, f"pat-{unique}")


async def test_one_holder_at_a_time(coord: Coordination) -> None:
    assert await coord.acquire("recovery:r1", "inc-a", T0, TTL) is None
    assert await coord.acquire("recovery:r1", "inc-b", T0, TTL) == "inc-a"
    assert await coord.acquire("recovery:r1", "inc-a", T0, TTL) is None, "the holder renews"
    assert await coord.acquire("recovery:r2", "inc-b", T0, TTL) is None, "keys are separate"


async def test_an_expired_lease_can_be_taken_over(coord: Coordination) -> None:
    assert await coord.acquire("recovery:r1", "inc-a", T0, TTL) is None
    later = T0 + TTL + timedelta(seconds=1)
    assert await coord.acquire("recovery:r1", "inc-b", later, TTL) is None
    assert await coord.acquire("recovery:r1", "inc-a", later, TTL) == "inc-b"


async def test_only_the_holder_releases(coord: Coordination) -> None:
    assert await coord.acquire("recovery:r1", "inc-a", T0, TTL) is None
    await coord.release("recovery:r1", "inc-b")
    assert await coord.acquire("recovery:r1", "inc-b", T0, TTL) == "inc-a"
    await coord.release("recovery:r1", "inc-a")
    assert await coord.acquire("recovery:r1", "inc-b", T0, TTL) is None


async def test_windowed_count_counts_each_member_once(coord: Coordination) -> None:
    window = timedelta(minutes=5)
    assert await coord.count("destructive", "inc-1", T0, window) == 1
    assert await coord.count("destructive", "inc-1", T0, window) == 1, "a replay counts once"
    assert await coord.count("destructive", "inc-2", T0 + timedelta(minutes=2), window) == 2
    assert await coord.count("other", "inc-1", T0, window) == 1, "counters are separate"
    # Ten minutes on, the early members have left the window.
    assert await coord.count("destructive", "inc-3", T0 + timedelta(minutes=10), window) == 1


async def test_closed_minutes_are_read_once_per_replica(
    aws: AwsClients, moto_endpoint: str, unique: str
) -> None:
    """The breaker's count costs one UpdateItem; earlier minutes are read while they may still
    change, then remembered. A second replica's counts still add up."""
    await ensure_tables(aws, f"inc-{unique}", f"pat-{unique}")
    calls: list[str] = []
    async with AwsClients(
        endpoint_url=moto_endpoint, on_call=lambda _s, op, _o: calls.append(op)
    ) as counted:
        replica = DynamoCoordination(counted, f"pat-{unique}")
        other = DynamoCoordination(aws, f"pat-{unique}")
        window = timedelta(minutes=5)
        assert await other.count("destructive", "inc-0", T0, window) == 1
        later = T0 + timedelta(minutes=2)
        assert await replica.count("destructive", "inc-1", later, window) == 2
        assert calls == ["UpdateItem", "BatchGetItem"]  # the earlier minutes, read once
        calls.clear()
        for n in range(2, 6):
            total = await replica.count("destructive", f"inc-{n}", later, window)
        assert total == 6
        assert calls == ["UpdateItem"] * 4  # closed minutes come from memory
        assert await other.count("destructive", "inc-9", later, window) == 7
        calls.clear()
        next_minute = later + timedelta(minutes=1)
        assert await replica.count("destructive", "inc-10", next_minute, window) == 8
        assert calls == ["UpdateItem", "BatchGetItem"]  # the minute just closed, read once


async def _four_closed_minutes(other: DynamoCoordination, window: timedelta) -> None:
    """Two members in each of the four minutes before T0 + 4 min (all closed and settled)."""
    for minute in range(4):
        at = T0 + timedelta(minutes=minute)
        for n in range(2):
            await other.count("destructive", f"inc-{minute}-{n}", at, window)


async def test_unprocessed_buckets_are_read_again_not_counted_as_zero(
    aws: AwsClients, moto_endpoint: str, unique: str
) -> None:
    """BatchGetItem may answer part of the keys and list the rest in UnprocessedKeys (DynamoDB
    API reference); the breaker used to count those minutes as 0 and remember that."""
    await ensure_tables(aws, f"inc-{unique}", f"pat-{unique}")
    window = timedelta(minutes=5)
    await _four_closed_minutes(DynamoCoordination(aws, f"pat-{unique}"), window)
    async with (
        AwsProxy(moto_endpoint) as proxy,
        AwsClients(endpoint_url=proxy.url, max_attempts=1) as proxied,
    ):
        partial = proxy.unprocessed("BatchGetItem", count=2, times=2)
        replica = DynamoCoordination(proxied, f"pat-{unique}")
        now = T0 + timedelta(minutes=4)
        assert await replica.count("destructive", "inc-new", now, window) == 9
        assert partial.applied == 2 and partial.held_back == 4  # 2 keys, then the same 2 again
        assert proxy.count("BatchGetItem", outcome=None) == 3
        # Remembered right: the next count reads no closed minute and still sees them all.
        assert await replica.count("destructive", "inc-new2", now, window) == 10
        assert proxy.count("BatchGetItem", outcome=None) == 3


async def test_buckets_left_unread_fail_the_count_and_are_not_remembered(
    aws: AwsClients, moto_endpoint: str, unique: str
) -> None:
    await ensure_tables(aws, f"inc-{unique}", f"pat-{unique}")
    window = timedelta(minutes=5)
    await _four_closed_minutes(DynamoCoordination(aws, f"pat-{unique}"), window)
    async with (
        AwsProxy(moto_endpoint) as proxy,
        AwsClients(endpoint_url=proxy.url, max_attempts=1) as proxied,
    ):
        partial = proxy.unprocessed("BatchGetItem", count=1, times=None)
        replica = DynamoCoordination(proxied, f"pat-{unique}")
        now = T0 + timedelta(minutes=4)
        with pytest.raises(IncompleteCount):
            await replica.count("destructive", "inc-new", now, window)
        assert proxy.count("BatchGetItem", outcome=None) == BATCH_GET_ATTEMPTS
        proxy.remove(partial)
        assert await replica.count("destructive", "inc-new", now, window) == 9
