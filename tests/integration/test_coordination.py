"""Leases and windowed counters: the in-memory and the DynamoDB implementation, one contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.ports import Coordination
from aiops_agent.store.coordination import DynamoCoordination, MemoryCoordination
from aiops_agent.store.tables import ensure_tables

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
