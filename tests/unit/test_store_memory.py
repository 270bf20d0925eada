"""The store's record layout (codec) and the in-memory store's own guarantees.

The behaviour both stores share is in tests/integration/test_store_contract.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from aiops_agent.domain.models import Incident, NormalizedEvent, WorkflowState
from aiops_agent.domain.ports import IncidentStore
from aiops_agent.store.codec import (
    decode,
    due_at,
    encode,
    expires_at,
    format_time,
    from_item,
    to_item,
)
from aiops_agent.store.dynamodb import DynamoIncidentStore
from aiops_agent.store.memory import MemoryIncidentStore
from aiops_agent.store.tables import INCIDENT_ATTRIBUTE_DEFINITIONS, TTL_ATTRIBUTE

T0 = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def incident(**changes: Any) -> Incident:
    event = NormalizedEvent(
        event_id="evt-1",
        source="aws.ssm",
        detail_type="AWS API Call via CloudTrail",
        resource_type="ssm",
        resource_id="/app/db/url",
        action="PutParameter",
        time=T0,
    )
    base = Incident(
        incident_id="inc-1",
        event_id=event.event_id,
        resource_type="ssm",
        resource_id=event.resource_id,
        region=event.region,
        resource_key=event.resource_key,
        event=event,
        created_at=T0,
        updated_at=T0,
    )
    return base.model_copy(update=changes)


def test_format_time_is_fixed_width_utc() -> None:
    assert format_time(T0) == "2026-11-25T14:00:00.000000+00:00"
    plus_two = datetime(2026, 11, 25, 16, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(plus_two) == "2026-11-25T14:00:00.000005+00:00"
    assert format_time(datetime(2026, 11, 25, 14, 0)) == format_time(T0)  # naive = UTC


def test_format_time_sorts_like_time() -> None:
    times = [T0 + timedelta(microseconds=n * 999_999) for n in range(0, 50)]
    shuffled = sorted(times, key=lambda t: (t.microsecond, t.second))
    assert sorted(format_time(t) for t in shuffled) == [format_time(t) for t in times]


def test_due_at() -> None:
    assert due_at(incident(), LEASE) is None
    assert due_at(incident(pending=({"id": "c"},)), LEASE) == T0 + LEASE
    check = T0 + timedelta(minutes=5)
    assert due_at(incident(next_check_at=check), LEASE) == check
    both = incident(pending=({"id": "c"},), next_check_at=T0 + timedelta(seconds=10))
    assert due_at(both, LEASE) == T0 + timedelta(seconds=10)
    later_check = incident(pending=({"id": "c"},), next_check_at=check)
    assert due_at(later_check, LEASE) == T0 + LEASE


def test_expires_at_is_epoch_seconds_after_ttl_days() -> None:
    assert expires_at(incident(), 90) == int(T0.timestamp()) + 90 * 86_400


def test_item_round_trip_and_sparse_due_attributes() -> None:
    due = incident(pending=({"id": "c", "kind": "notify"},))
    record = encode(due, version=3, ttl_days=90, step_lease=LEASE)
    item = to_item(record)
    for definition in INCIDENT_ATTRIBUTE_DEFINITIONS:  # every key attribute is written, as S
        assert item[definition["AttributeName"]].keys() == {"S"}
    assert item[TTL_ATTRIBUTE].keys() == {"N"}
    assert item["version"] == {"N": "3"}
    assert from_item(item) == record
    assert decode(record) == due.model_copy(update={"version": 3})

    quiet = to_item(encode(incident(), version=1, ttl_days=90, step_lease=LEASE))
    assert "due_shard" not in quiet and "due_at" not in quiet


def test_record_open_follows_terminal_states() -> None:
    for state in WorkflowState:
        record = encode(incident(workflow_state=state), version=1, ttl_days=1, step_lease=LEASE)
        assert record.open is not state.terminal


def test_both_stores_satisfy_the_protocol() -> None:
    assert isinstance(MemoryIncidentStore(), IncidentStore)
    assert issubclass(DynamoIncidentStore, IncidentStore)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="ttl_days"):
        MemoryIncidentStore(ttl_days=0)


async def test_memory_store_hands_out_copies() -> None:
    store = MemoryIncidentStore()
    original = incident(pending=({"id": "c", "args": {"n": 1}},))
    assert await store.create(original)
    first = await store.get("inc-1")
    assert first is not None
    first.pending[0]["args"]["n"] = 99  # a frozen model still holds mutable dicts
    original.pending[0]["id"] = "changed"
    again = await store.get("inc-1")
    assert again is not None
    assert again.pending == ({"id": "c", "args": {"n": 1}},)
    assert len(store) == 1


async def test_memory_store_naive_and_aware_times_mix() -> None:
    store = MemoryIncidentStore(step_lease=LEASE)
    naive = incident(pending=({"id": "c"},), updated_at=datetime(2026, 11, 25, 14, 0))
    assert await store.create(naive)
    assert [i.incident_id for i in await store.due(T0 + LEASE)] == ["inc-1"]
    assert await store.due(T0 + LEASE - timedelta(microseconds=1)) == []
