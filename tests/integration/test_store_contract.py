"""One contract for every `IncidentStore`: the in-memory fake and DynamoDB (against moto server).

Each test runs once per store; the DynamoDB variant gets a fresh table pair from `ensure_tables`
and a page size of 3, so that every listing pages.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.models import (
    ActionRecord,
    Analysis,
    Classification,
    Incident,
    NormalizedEvent,
    PlanStep,
    Severity,
    TimelineEntry,
    Verification,
    WorkflowState,
    resource_key,
)
from aiops_agent.domain.ports import ConflictError, IncidentStore
from aiops_agent.store.dynamodb import DynamoIncidentStore
from aiops_agent.store.memory import MemoryIncidentStore
from aiops_agent.store.tables import (
    INCIDENT_INDEXES,
    TTL_ATTRIBUTE,
    TableSchemaError,
    ensure_tables,
)

S = WorkflowState
T0 = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
PAGE_SIZE = 3
TTL_DAYS = 90


def make_incident(
    n: int,
    *,
    resource_id: str = "i-0abc",
    resource_type: str = "ec2",
    state: WorkflowState = S.RECEIVED,
    created: datetime | None = None,
    updated: datetime | None = None,
    pending: tuple[dict[str, Any], ...] = (),
    next_check_at: datetime | None = None,
) -> Incident:
    created = created or T0 + timedelta(minutes=n)
    event = NormalizedEvent(
        event_id=f"evt-{n}",
        source="aws.ec2",
        detail_type="AWS API Call via CloudTrail",
        resource_type=resource_type,
        resource_id=resource_id,
        action="StopInstances",
        time=created,
        principal="arn:aws:iam::123456789012:user/alice",
        details={"state": "stopped", "tags": {"env": "prod"}},
    )
    return Incident(
        incident_id=f"inc-{n:04d}",
        event_id=event.event_id,
        resource_type=resource_type,
        resource_id=resource_id,
        region=event.region,
        resource_key=event.resource_key,
        workflow_state=state,
        event=event,
        created_at=created,
        updated_at=updated or created,
        pending=pending,
        next_check_at=next_check_at,
        timeline=(TimelineEntry(at=created, state=S.RECEIVED, detail="event received"),),
    )


def rich_incident() -> Incident:
    base = make_incident(1, state=S.VERIFYING)
    analysis = Analysis(
        classification=Classification.FAILURE,
        confidence=0.93,
        severity=Severity.HIGH,
        reasons=("instance stopped outside a deploy",),
        plan=(PlanStep(action="ec2.start_instance", params={"instance_id": "i-0abc"}),),
    )
    at = base.created_at
    return base.model_copy(
        update={
            "classification": analysis.classification,
            "confidence": analysis.confidence,
            "severity": analysis.severity,
            "reasons": analysis.reasons,
            "plan": analysis.plan,
            "recovery_actions": (
                ActionRecord(
                    step=0,
                    action="ec2.start_instance",
                    status="SUCCEEDED",
                    started_at=at + timedelta(seconds=5),
                    finished_at=at + timedelta(seconds=7),
                    result={"previous_state": "stopped", "codes": [80, 0]},
                ),
            ),
            "verification": Verification(
                status="PENDING",
                checks=({"check": "instance_state", "expected": "running"},),
                attempts=1,
                started_at=at + timedelta(seconds=8),
            ),
            "timeline": (
                *base.timeline,
                TimelineEntry(at=at + timedelta(seconds=1), state=S.ANALYZING, detail="rules"),
                TimelineEntry(at=at + timedelta(seconds=8), state=S.VERIFYING, detail="check"),
            ),
            "related_event_ids": ("evt-7", "evt-9"),
            "pending": ({"id": "cmd-1", "kind": "verify", "attempt": 1},),
            "next_check_at": at + timedelta(seconds=18),
            "verify_deadline": at + timedelta(minutes=5),
            "updated_at": at + timedelta(seconds=8),
        }
    )


@pytest.fixture(params=["memory", "dynamodb"])
async def store(
    request: pytest.FixtureRequest, aws: AwsClients, unique: str
) -> AsyncIterator[IncidentStore]:
    if request.param == "memory":
        yield MemoryIncidentStore(ttl_days=TTL_DAYS, step_lease=LEASE)
        return
    table, patterns = f"incidents-{unique}", f"patterns-{unique}"
    await ensure_tables(aws, table, patterns)
    yield DynamoIncidentStore(aws, table, ttl_days=TTL_DAYS, step_lease=LEASE, page_size=PAGE_SIZE)
    dynamodb = await aws.client("dynamodb")
    for name in (table, patterns):
        await dynamodb.delete_table(TableName=name)


async def create_all(store: IncidentStore, *incidents: Incident) -> None:
    for incident in incidents:
        assert await store.create(incident)


def ids(incidents: list[Incident]) -> list[str]:
    return [incident.incident_id for incident in incidents]


# ---------------------------------------------------------------- create / get / save


async def test_create_get_round_trip_keeps_every_field(store: IncidentStore) -> None:
    incident = rich_incident()
    assert await store.create(incident) is True
    stored = await store.get(incident.incident_id)
    assert stored == incident.model_copy(update={"version": 1})
    assert stored is not None
    assert stored.timeline == incident.timeline
    assert stored.pending == incident.pending
    assert stored.verification == incident.verification
    assert stored.event.details == {"state": "stopped", "tags": {"env": "prod"}}
    assert stored.created_at.tzinfo is not None


async def test_get_unknown_is_none(store: IncidentStore) -> None:
    assert await store.get("inc-missing") is None


async def test_duplicate_create_returns_false_and_keeps_the_first(store: IncidentStore) -> None:
    first = make_incident(1)
    assert await store.create(first) is True
    second = first.model_copy(update={"workflow_state": S.ANALYZING})
    assert await store.create(second) is False
    stored = await store.get(first.incident_id)
    assert stored is not None
    assert stored.workflow_state == S.RECEIVED
    assert stored.version == 1


async def test_save_increments_version(store: IncidentStore) -> None:
    incident = make_incident(1)
    await create_all(store, incident)
    v1 = incident.model_copy(update={"version": 1})
    v2 = await store.save(v1.model_copy(update={"workflow_state": S.ANALYZING}))
    assert v2.version == 2
    assert v2.workflow_state == S.ANALYZING
    v3 = await store.save(v2.model_copy(update={"reasons": ("x",)}))
    assert v3.version == 3
    assert await store.get(incident.incident_id) == v3


async def test_stale_save_raises_conflict(store: IncidentStore) -> None:
    incident = make_incident(1)
    await create_all(store, incident)
    writer_a = await store.get(incident.incident_id)
    writer_b = await store.get(incident.incident_id)
    assert writer_a is not None and writer_b is not None
    await store.save(writer_a.model_copy(update={"workflow_state": S.ANALYZING}))
    with pytest.raises(ConflictError):
        await store.save(writer_b.model_copy(update={"workflow_state": S.IGNORED}))
    stored = await store.get(incident.incident_id)
    assert stored is not None
    assert (stored.workflow_state, stored.version) == (S.ANALYZING, 2)


async def test_concurrent_saves_exactly_one_wins(store: IncidentStore) -> None:
    incident = make_incident(1)
    await create_all(store, incident)
    v1 = incident.model_copy(update={"version": 1})
    results = await asyncio.gather(
        *(store.save(v1.model_copy(update={"reasons": (f"w{i}",)})) for i in range(4)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, Incident)]
    assert len(winners) == 1
    assert all(isinstance(r, ConflictError) for r in results if r not in winners)
    assert await store.get(incident.incident_id) == winners[0]


async def test_save_of_unknown_incident_conflicts(store: IncidentStore) -> None:
    with pytest.raises(ConflictError):
        await store.save(make_incident(1).model_copy(update={"version": 1}))
    assert await store.get("inc-0001") is None


# ---------------------------------------------------------------- per resource


async def test_open_for_resource_returns_newest_open_one(store: IncidentStore) -> None:
    key = resource_key("ec2", "us-east-1", "i-0abc")
    await create_all(
        store,
        make_incident(1, state=S.EXECUTING),
        make_incident(2, state=S.ANALYZING),
        # Newer, but terminal: ignored, however many there are (more than a page).
        *(make_incident(n, state=S.COMPLETED) for n in range(3, 3 + PAGE_SIZE * 2)),
        make_incident(50, resource_id="i-other", state=S.RECEIVED),
    )
    found = await store.open_for_resource(key)
    assert found is not None
    assert found.incident_id == "inc-0002"


async def test_open_for_resource_none_when_all_terminal(store: IncidentStore) -> None:
    await create_all(store, make_incident(1, state=S.FAILED), make_incident(2, state=S.IGNORED))
    assert await store.open_for_resource(resource_key("ec2", "us-east-1", "i-0abc")) is None
    assert await store.open_for_resource("ec2:us-east-1:i-nothing") is None


async def test_recent_for_resource_honours_since(store: IncidentStore) -> None:
    key = resource_key("ec2", "us-east-1", "i-0abc")
    await create_all(
        store,
        *(make_incident(n, state=S.COMPLETED) for n in range(1, 8)),
        make_incident(9, resource_id="i-other"),
    )
    since = T0 + timedelta(minutes=3)  # inclusive: incident 3 was created exactly then
    recent = await store.recent_for_resource(key, since)
    assert ids(recent) == ["inc-0007", "inc-0006", "inc-0005", "inc-0004", "inc-0003"]
    assert await store.recent_for_resource(key, T0 + timedelta(hours=1)) == []


async def test_recent_for_resource_accepts_other_time_zones(store: IncidentStore) -> None:
    await create_all(store, make_incident(1), make_incident(2))
    since = (T0 + timedelta(minutes=2)).astimezone(
        timezone(timedelta(hours=2))
    )  # same instant, written at +02:00
    recent = await store.recent_for_resource(resource_key("ec2", "us-east-1", "i-0abc"), since)
    assert ids(recent) == ["inc-0002"]


async def test_latest_for_resource_is_the_newest_in_any_state(store: IncidentStore) -> None:
    key = resource_key("ec2", "us-east-1", "i-0abc")
    await create_all(
        store,
        make_incident(1, state=S.EXECUTING),
        *(make_incident(n, state=S.COMPLETED) for n in range(2, 3 + PAGE_SIZE)),
        make_incident(90, resource_id="i-other", state=S.RECEIVED),
    )
    latest = await store.latest_for_resource(key, 3)
    newest = 2 + PAGE_SIZE
    assert ids(latest) == [f"inc-{n:04d}" for n in (newest, newest - 1, newest - 2)]
    everything = await store.latest_for_resource(key, 10 * PAGE_SIZE)
    assert len(everything) == PAGE_SIZE + 2 and ids(everything)[-1] == "inc-0001"
    assert await store.latest_for_resource(key, 0) == []
    assert await store.latest_for_resource("ec2:us-east-1:i-nothing", 5) == []


# ---------------------------------------------------------------- listings


async def test_list_by_state_newest_first_with_limit(store: IncidentStore) -> None:
    await create_all(
        store,
        *(make_incident(n, state=S.COMPLETED, resource_id=f"i-{n}") for n in range(1, 9)),
        make_incident(20, state=S.FAILED),
    )
    listed = await store.list_incidents(state=S.COMPLETED)
    assert ids(listed) == [f"inc-{n:04d}" for n in range(8, 0, -1)]
    limited = await store.list_incidents(state=S.COMPLETED, limit=4)
    assert ids(limited) == ["inc-0008", "inc-0007", "inc-0006", "inc-0005"]
    assert ids(await store.list_incidents(state=S.FAILED)) == ["inc-0020"]
    assert await store.list_incidents(state=S.REJECTED) == []


async def test_list_by_state_orders_by_last_update(store: IncidentStore) -> None:
    await create_all(
        store,
        make_incident(1, state=S.EXECUTING, updated=T0 + timedelta(hours=2)),
        make_incident(2, state=S.EXECUTING, updated=T0 + timedelta(hours=1)),
    )
    assert ids(await store.list_incidents(state=S.EXECUTING)) == ["inc-0001", "inc-0002"]


async def test_list_by_resource_type_newest_first_with_limit(store: IncidentStore) -> None:
    await create_all(
        store,
        *(make_incident(n, resource_type="lambda", resource_id=f"fn-{n}") for n in range(1, 8)),
        make_incident(30, resource_type="ssm", resource_id="/app/db"),
    )
    listed = await store.list_incidents(resource_type="lambda", limit=5)
    assert ids(listed) == ["inc-0007", "inc-0006", "inc-0005", "inc-0004", "inc-0003"]
    assert ids(await store.list_incidents(resource_type="ssm")) == ["inc-0030"]


async def test_list_by_state_and_resource_type(store: IncidentStore) -> None:
    await create_all(
        store,
        make_incident(1, resource_type="lambda", resource_id="fn", state=S.COMPLETED),
        # Many non-matching items in the same state, so the filter spans several pages.
        *(make_incident(n, resource_id=f"i-{n}", state=S.COMPLETED) for n in range(2, 10)),
        make_incident(10, resource_type="lambda", resource_id="fn2", state=S.FAILED),
    )
    listed = await store.list_incidents(state=S.COMPLETED, resource_type="lambda", limit=5)
    assert ids(listed) == ["inc-0001"]


async def test_list_all_newest_first_with_limit(store: IncidentStore) -> None:
    await create_all(
        store,
        *(
            make_incident(n, resource_type=rt, resource_id=f"r-{n}", state=st)
            for n, rt, st in [
                (1, "ec2", S.COMPLETED),
                (2, "lambda", S.RECEIVED),
                (3, "ssm", S.FAILED),
                (4, "ec2", S.EXECUTING),
                (5, "s3", S.NOTIFIED),
            ]
        ),
    )
    assert ids(await store.list_incidents()) == [f"inc-{n:04d}" for n in range(5, 0, -1)]
    assert ids(await store.list_incidents(limit=2)) == ["inc-0005", "inc-0004"]
    assert await store.list_incidents(limit=0) == []


# ---------------------------------------------------------------- due


async def test_due_finds_expired_leases_and_due_checks(store: IncidentStore) -> None:
    now = T0 + timedelta(hours=1)
    cmd = ({"id": "cmd-1", "kind": "analyze"},)
    await create_all(
        store,
        # (a) a step's lease ran out: its replica died mid-step
        make_incident(1, pending=cmd, updated=now - timedelta(minutes=5)),
        # lease exactly over: due (updated_at + lease <= now)
        make_incident(2, pending=cmd, updated=now - LEASE),
        # (b) a stored wait came due
        make_incident(3, state=S.VERIFYING, next_check_at=now - timedelta(seconds=1)),
        # fresh lease, but an earlier check: the earlier time counts
        make_incident(4, pending=cmd, updated=now, next_check_at=now - timedelta(minutes=2)),
        # terminal, but a notification still pending from a dead replica: due
        make_incident(5, state=S.COMPLETED, pending=cmd, updated=now - timedelta(minutes=4)),
        # not due: lease still held, check in the future, terminal with nothing left
        make_incident(6, pending=cmd, updated=now - timedelta(seconds=10)),
        make_incident(7, state=S.VERIFYING, next_check_at=now + timedelta(seconds=30)),
        make_incident(8, state=S.COMPLETED, updated=now - timedelta(days=1)),
        make_incident(9, state=S.RECEIVED, updated=now - timedelta(days=1)),
    )
    due = await store.due(now)
    # Most overdue first: due_at = 1: now-4m, 5: now-3m, 4: now-2m, 3: now-1s, 2: now.
    assert ids(due) == ["inc-0001", "inc-0005", "inc-0004", "inc-0003", "inc-0002"]
    assert ids(await store.due(now, limit=2)) == ["inc-0001", "inc-0005"]
    later = await store.due(now + timedelta(minutes=1))
    assert set(ids(later)) == {f"inc-{n:04d}" for n in (1, 2, 3, 4, 5, 6, 7)}


async def test_due_follows_saves(store: IncidentStore) -> None:
    now = T0 + timedelta(hours=1)
    incident = make_incident(
        1, state=S.VERIFYING, pending=({"id": "c"},), next_check_at=now - timedelta(seconds=5)
    )
    await create_all(store, incident)
    assert ids(await store.due(now)) == ["inc-0001"]
    done = await store.save(
        incident.model_copy(
            update={
                "version": 1,
                "workflow_state": S.COMPLETED,
                "pending": (),
                "next_check_at": None,
                "updated_at": now,
            }
        )
    )
    assert done.version == 2
    assert await store.due(now + timedelta(days=365)) == []
    # Rescheduled: back in the index at the new time.
    await store.save(done.model_copy(update={"next_check_at": now + timedelta(minutes=1)}))
    assert await store.due(now) == []
    assert ids(await store.due(now + timedelta(minutes=1))) == ["inc-0001"]


# ---------------------------------------------------------------- paging and DynamoDB specifics


async def test_listings_page_past_one_page(store: IncidentStore) -> None:
    count = PAGE_SIZE * 4 + 1
    now = T0 + timedelta(days=1)
    await create_all(
        store,
        *(
            make_incident(n, state=S.VERIFYING, next_check_at=T0 + timedelta(seconds=n))
            for n in range(1, count + 1)
        ),
    )
    expected = [f"inc-{n:04d}" for n in range(count, 0, -1)]
    key = resource_key("ec2", "us-east-1", "i-0abc")
    assert ids(await store.recent_for_resource(key, T0)) == expected
    assert ids(await store.list_incidents(state=S.VERIFYING)) == expected
    assert ids(await store.list_incidents(resource_type="ec2")) == expected
    assert ids(await store.list_incidents()) == expected
    assert ids(await store.due(now, limit=count + 5)) == expected[::-1]
    assert ids(await store.due(now, limit=PAGE_SIZE + 1)) == expected[::-1][: PAGE_SIZE + 1]


@pytest.fixture
async def dynamo(aws: AwsClients, unique: str) -> AsyncIterator[tuple[DynamoIncidentStore, Any]]:
    table, patterns = f"incidents-{unique}", f"patterns-{unique}"
    await ensure_tables(aws, table, patterns)
    dynamodb = await aws.client("dynamodb")
    yield DynamoIncidentStore(aws, table, ttl_days=TTL_DAYS, step_lease=LEASE), dynamodb
    for name in (table, patterns):
        await dynamodb.delete_table(TableName=name)


async def test_raw_item_has_ttl_and_sparse_due_attributes(
    dynamo: tuple[DynamoIncidentStore, Any],
) -> None:
    store, dynamodb = dynamo
    open_one = make_incident(1, pending=({"id": "c"},), updated=T0)
    closed = make_incident(2, state=S.COMPLETED)
    await create_all(store, open_one, closed)

    async def raw(incident_id: str) -> dict[str, Any]:
        response = await dynamodb.get_item(
            TableName=store.table, Key={"incident_id": {"S": incident_id}}
        )
        item: dict[str, Any] = response["Item"]
        return item

    item = await raw("inc-0001")
    expected_ttl = int((open_one.created_at + timedelta(days=TTL_DAYS)).timestamp())
    assert item[TTL_ATTRIBUTE] == {"N": str(expected_ttl)}
    assert item["version"] == {"N": "1"}
    assert item["created_at"] == {"S": "2026-11-25T14:01:00.000000+00:00"}
    assert item["due_shard"] == {"S": "due"}
    assert item["due_at"] == {"S": "2026-11-25T14:01:00.000000+00:00"}
    assert Incident.model_validate_json(item["doc"]["S"]).incident_id == "inc-0001"

    closed_item = await raw("inc-0002")
    assert TTL_ATTRIBUTE in closed_item
    assert "due_shard" not in closed_item and "due_at" not in closed_item

    # A save that leaves nothing pending removes the due attributes.
    stored = await store.get("inc-0001")
    assert stored is not None
    await store.save(stored.model_copy(update={"pending": (), "workflow_state": S.COMPLETED}))
    saved_item = await raw("inc-0001")
    assert "due_at" not in saved_item
    assert saved_item["version"] == {"N": "2"}
    assert saved_item[TTL_ATTRIBUTE] == {"N": str(expected_ttl)}


async def test_ensure_tables_is_idempotent(aws: AwsClients, unique: str) -> None:
    table, patterns = f"incidents-{unique}", f"patterns-{unique}"
    dynamodb = await aws.client("dynamodb")
    try:
        assert await ensure_tables(aws, table, patterns) == {table: "created", patterns: "created"}
        assert await ensure_tables(aws, table, patterns) == {table: "found", patterns: "found"}
        described = (await dynamodb.describe_table(TableName=table))["Table"]
        assert described["TableStatus"] == "ACTIVE"
        assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        indexes = {
            index["IndexName"]: [k["AttributeName"] for k in index["KeySchema"]]
            for index in described["GlobalSecondaryIndexes"]
        }
        assert indexes == {name: list(keys) for name, keys in INCIDENT_INDEXES.items()}
        for name in (table, patterns):
            ttl = (await dynamodb.describe_time_to_live(TableName=name))["TimeToLiveDescription"]
            assert ttl["TimeToLiveStatus"] == "ENABLED"
            assert ttl["AttributeName"] == TTL_ATTRIBUTE
        patterns_keys = (await dynamodb.describe_table(TableName=patterns))["Table"]["KeySchema"]
        assert [(k["AttributeName"], k["KeyType"]) for k in patterns_keys] == [
            ("pk", "HASH"),
            ("sk", "RANGE"),
        ]
    finally:
        for name in (table, patterns):
            await dynamodb.delete_table(TableName=name)


async def test_ensure_tables_refuses_a_foreign_table(aws: AwsClients, unique: str) -> None:
    table, patterns = f"incidents-{unique}", f"patterns-{unique}"
    dynamodb = await aws.client("dynamodb")
    await dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "incident_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "incident_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        with pytest.raises(TableSchemaError, match="by-resource-type, by-resource, by-state"):
            await ensure_tables(aws, table, patterns)
    finally:
        for name in (table, patterns):
            await dynamodb.delete_table(TableName=name)
