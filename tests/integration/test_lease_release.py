"""A closing write releases its incident's step lease in the same transaction (one call, not
two), leaves alone a lease another incident has taken since, and releases nothing it loses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.machine import decide
from aiops_agent.domain.messages import Rejected
from aiops_agent.domain.models import Incident, WorkflowState
from aiops_agent.domain.ports import ConflictError
from aiops_agent.store.coordination import DynamoCoordination
from aiops_agent.store.dynamodb import DynamoIncidentStore
from aiops_agent.store.tables import ensure_tables
from tests.integration.test_audit_trail import T0, fresh

KEY = "recovery:ec2:us-east-1:i-0123456789abcdef0"
TTL = timedelta(minutes=15)


@dataclass
class Rig:
    store: DynamoIncidentStore
    leases: DynamoCoordination
    table: str
    ddb: Any


@pytest.fixture
async def rig(aws: AwsClients, unique: str) -> AsyncIterator[Rig]:
    incidents, patterns = f"inc-{unique}", f"pat-{unique}"
    await ensure_tables(aws, incidents, patterns)
    store = DynamoIncidentStore(aws, incidents, audit_table=patterns, lease_table=patterns)
    yield Rig(store, DynamoCoordination(aws, patterns), patterns, await aws.client("dynamodb"))


async def holder(r: Rig) -> str | None:
    got = await r.ddb.get_item(
        TableName=r.table, Key={"pk": {"S": "lease"}, "sk": {"S": KEY}}, ConsistentRead=True
    )
    item = got.get("Item")
    return None if item is None else str(item["holder"]["S"])


async def opened(r: Rig) -> Incident:
    incident = fresh()
    assert await r.store.create(incident)
    return incident.model_copy(update={"version": 1})


def closed(incident: Incident) -> Incident:
    """Closed by a reviewer's rejection: a terminal state."""
    waiting = incident.model_copy(update={"workflow_state": WorkflowState.AWAITING_APPROVAL})
    done, _ = decide(waiting, Rejected(by="carol", reason="not now"), T0 + timedelta(minutes=1))
    assert done.terminal
    return done


async def test_the_closing_write_releases_the_lease_it_holds(rig: Rig) -> None:
    incident = await opened(rig)
    assert await rig.leases.acquire(KEY, incident.incident_id, T0, TTL) is None
    assert await holder(rig) == incident.incident_id
    saved = await rig.store.save(closed(incident), release=KEY)
    assert saved.version == 2 and saved.terminal
    assert await holder(rig) is None
    # The audit trail rode in the same write.
    assert [e.detail for e in await rig.store.audit_trail(incident.incident_id)] == [
        e.detail for e in saved.timeline
    ]


async def test_a_lease_taken_over_by_another_incident_is_left_alone(rig: Rig) -> None:
    incident = await opened(rig)
    assert await rig.leases.acquire(KEY, incident.incident_id, T0, TTL) is None
    # Ours expired; another incident took it.
    later = T0 + TTL + timedelta(seconds=1)
    assert await rig.leases.acquire(KEY, "inc-other", later, TTL) is None
    saved = await rig.store.save(closed(incident), release=KEY)
    assert saved.version == 2 and saved.terminal
    assert await holder(rig) == "inc-other"
    assert (await rig.store.get(incident.incident_id)) == saved


async def test_no_lease_at_all_is_no_obstacle(rig: Rig) -> None:
    incident = await opened(rig)
    saved = await rig.store.save(closed(incident), release=KEY)
    assert saved.terminal and await holder(rig) is None


async def test_a_lost_write_releases_nothing(rig: Rig) -> None:
    incident = await opened(rig)
    assert await rig.leases.acquire(KEY, incident.incident_id, T0, TTL) is None
    await rig.store.save(incident.model_copy(update={"updated_at": T0 + timedelta(seconds=1)}))
    with pytest.raises(ConflictError):
        await rig.store.save(closed(incident), release=KEY)  # version 1, stored 2
    assert await holder(rig) == incident.incident_id
