"""An open incident that keeps receiving related events stays under DynamoDB's 400 KB item limit.

Every related event joins the incident's timeline; DynamoDB refuses an item over 400 KB with a
ValidationException (moto does too, on PutItem and in TransactWriteItems), after which the
incident could never be saved again. The machine keeps the first and last timeline entries and
the newest related ids; the full timeline stays in the append-only audit trail.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.cli.commands import show_incident
from aiops_agent.domain.machine import decide
from aiops_agent.domain.messages import RelatedEvent
from aiops_agent.domain.models import (
    TIMELINE_HEAD,
    TIMELINE_TAIL,
    Incident,
    NormalizedEvent,
    TimelineEntry,
    WorkflowState,
)
from aiops_agent.settings import Settings
from aiops_agent.store.dynamodb import DynamoIncidentStore
from aiops_agent.store.tables import ensure_tables

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
EVENTS = 5_000
BATCH = 50
"""Events decided between two saves, all at one instant: a save writes one audit item per
timeline entry it appends, up to 99 per transaction."""
ITEM_LIMIT = 400 * 1024


def _event(n: int) -> NormalizedEvent:
    return NormalizedEvent(
        event_id=f"evt-{n:05d}-{'x' * 24}",
        source="aws.ec2",
        detail_type="EC2 Instance State-change Notification",
        resource_type="ec2",
        resource_id="i-0123456789abcdef0",
        action="state:running" if n % 2 else "state:stopped",
        time=T0 + timedelta(seconds=n),
        details={"state": "stopped", "note": "n" * 40},
    )


def _incident() -> Incident:
    event = _event(0)
    return Incident(
        incident_id="inc-big",
        event_id=event.event_id,
        resource_type=event.resource_type,
        resource_id=event.resource_id,
        region=event.region,
        resource_key=event.resource_key,
        workflow_state=WorkflowState.NOTIFIED,
        event=event,
        created_at=T0,
        updated_at=T0,
        timeline=(TimelineEntry(at=T0, state=WorkflowState.NOTIFIED, detail="event received"),),
    )


async def _store(aws: AwsClients, unique: str, *, audit: bool) -> DynamoIncidentStore:
    table, patterns = f"incidents-{unique}", f"patterns-{unique}"
    await ensure_tables(aws, table, patterns)
    return DynamoIncidentStore(
        aws,
        table,
        ttl_days=30,
        step_lease=timedelta(seconds=60),
        audit_table=patterns if audit else None,
    )


async def _receive(store: DynamoIncidentStore, events: int) -> Incident:
    """Create the incident, then `events` related events, saved every BATCH events."""
    incident = _incident()
    assert await store.create(incident)
    incident = await store.get(incident.incident_id) or incident
    for start in range(1, events + 1, BATCH):
        now = T0 + timedelta(seconds=start)
        for n in range(start, min(start + BATCH, events + 1)):
            incident, _ = decide(incident, RelatedEvent(event=_event(n)), now)
        incident = await store.save(incident)  # a ValidationException here: the item outgrew
    return incident


async def test_an_incident_with_5000_related_events_stays_saveable(
    aws: AwsClients, unique: str
) -> None:
    # Without the audit table: moto copies every table a transaction touches, so 5,000 audit
    # items make each save take seconds. The audit trail is checked below with fewer events.
    store = await _store(aws, unique, audit=False)
    await _receive(store, EVENTS)
    stored = await store.get("inc-big")
    assert stored is not None
    assert stored.related_events == EVENTS
    assert len(stored.timeline) == TIMELINE_HEAD + TIMELINE_TAIL
    assert stored.timeline_elided == EVENTS + 1 - TIMELINE_HEAD - TIMELINE_TAIL
    assert stored.timeline[-1].detail.endswith("state:stopped")  # the newest event is kept
    assert stored.timeline[0].detail == "event received"  # and the first
    dynamodb = await aws.client("dynamodb")
    raw = await dynamodb.get_item(
        TableName=f"incidents-{unique}", Key={"incident_id": {"S": "inc-big"}}
    )
    assert len(raw["Item"]["doc"]["S"].encode()) < ITEM_LIMIT / 2


async def test_the_audit_trail_keeps_every_elided_entry(
    aws: AwsClients, moto_endpoint: str, unique: str, capsys: pytest.CaptureFixture[str]
) -> None:
    events = 2 * (TIMELINE_HEAD + TIMELINE_TAIL)
    store = await _store(aws, unique, audit=True)
    incident = await _receive(store, events)
    assert incident.timeline_elided > 0
    trail = await store.audit_trail(incident.incident_id)
    assert len(trail) == events + 1, "one audit item per entry, none overwritten"
    assert trail[0].detail == "event received"
    expected = [
        f"related event joined: {_event(n).detail_type}: {_event(n).action}"
        for n in range(1, events + 1)
    ]
    assert [e.detail for e in trail[1:]] == expected
    assert list(incident.timeline[-TIMELINE_TAIL:]) == trail[-TIMELINE_TAIL:]

    # `incidents show` shows the full timeline, from the audit trail.
    settings = Settings(
        aws_endpoint_url=moto_endpoint,
        incident_table=f"incidents-{unique}",
        patterns_table=f"patterns-{unique}",
    )
    capsys.readouterr()
    assert await show_incident(settings, incident.incident_id, as_json=True) == 0
    shown = json.loads(capsys.readouterr().out)
    assert len(shown["timeline"]) == events + 1 and shown["timeline_elided"] > 0


def test_replays_of_recent_related_events_are_ignored() -> None:
    incident = _incident()
    for n in range(1, 1001):
        incident, _ = decide(incident, RelatedEvent(event=_event(n)), T0)
    again, _ = decide(incident, RelatedEvent(event=_event(1000)), T0)
    assert again == incident
    assert incident.related_events == 1000
