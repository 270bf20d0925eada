"""The audit trail: each transition an immutable item, written with the incident or not at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.machine import decide
from aiops_agent.domain.messages import Analyzed, EventReceived, PlanReady
from aiops_agent.domain.models import (
    Analysis,
    Classification,
    Incident,
    NormalizedEvent,
    PlanStep,
    incident_id_for,
)
from aiops_agent.domain.ports import ConflictError, IncidentStore
from aiops_agent.store.dynamodb import DynamoIncidentStore
from aiops_agent.store.memory import MemoryIncidentStore
from aiops_agent.store.tables import ensure_tables

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
STEP = PlanStep(action="ec2.start_instances", params={"instance_id": "i-0123456789abcdef0"})


@pytest.fixture(params=["memory", "dynamodb"])
async def store(
    request: pytest.FixtureRequest, aws: AwsClients, unique: str
) -> AsyncIterator[IncidentStore]:
    if request.param == "memory":
        yield MemoryIncidentStore()
        return
    await ensure_tables(aws, f"inc-{unique}", f"pat-{unique}")
    yield DynamoIncidentStore(aws, f"inc-{unique}", audit_table=f"pat-{unique}")


def fresh() -> Incident:
    event = NormalizedEvent(
        event_id="ev-1",
        source="aws.ec2",
        detail_type="EC2 Instance State-change Notification",
        resource_type="ec2",
        resource_id="i-0123456789abcdef0",
        action="state:stopped",
        time=T0,
    )
    incident = Incident(
        incident_id=incident_id_for(event.event_id, event.resource_key),
        event_id=event.event_id,
        resource_type="ec2",
        resource_id=event.resource_id,
        region="us-east-1",
        resource_key=event.resource_key,
        event=event,
        created_at=T0,
        updated_at=T0,
    )
    incident, _ = decide(incident, EventReceived(event=event), T0)
    analysis = Analysis(classification=Classification.FAILURE, confidence=0.95, plan=(STEP,))
    incident, _ = decide(incident, Analyzed(command_id="analyze", analysis=analysis), T0)
    return incident


async def test_every_transition_is_an_item_in_order(store: IncidentStore) -> None:
    incident = fresh()
    assert await store.create(incident)
    stored = incident.model_copy(update={"version": 1})
    assert await store.audit_trail(incident.incident_id) == list(incident.timeline)

    later = T0 + timedelta(seconds=5)
    moved, _ = decide(stored, PlanReady(command_id="plan", steps=(STEP,)), later)
    saved = await store.save(moved)
    # A save that changes no timeline (a claim) writes no audit item.
    claimed = await store.save(saved.model_copy(update={"updated_at": later + timedelta(1)}))
    trail = await store.audit_trail(incident.incident_id)
    assert trail == list(claimed.timeline)
    assert [e.state.value for e in trail] == ["ANALYZING", "PLANNING", "EXECUTING"]


async def test_a_lost_write_leaves_no_audit_item(store: IncidentStore) -> None:
    incident = fresh()
    assert await store.create(incident)
    stale = incident.model_copy(update={"version": 1})
    await store.save(stale.model_copy(update={"updated_at": T0 + timedelta(seconds=1)}))
    moved, _ = decide(stale, PlanReady(command_id="plan", steps=(STEP,)), T0 + timedelta(2))
    with pytest.raises(ConflictError):
        await store.save(moved)  # the other writer won: the transition did not happen
    trail = await store.audit_trail(incident.incident_id)
    assert [e.state.value for e in trail] == ["ANALYZING", "PLANNING"]


async def test_a_duplicate_create_leaves_the_first_trail(store: IncidentStore) -> None:
    incident = fresh()
    assert await store.create(incident)
    # The same event delivered again, decided a moment later.
    again = incident.model_copy(update={"created_at": T0 + timedelta(seconds=1)})
    assert not await store.create(again)
    assert len(await store.audit_trail(incident.incident_id)) == 2
    # The very same create again (an attempt whose answer was lost) is the caller's own.
    assert await store.create(incident)
    assert len(await store.audit_trail(incident.incident_id)) == 2
