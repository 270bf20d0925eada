"""How an incident is laid out in the store: one record, shared by the DynamoDB and memory stores.

A record is the incident as a JSON document plus the few top-level attributes that keys, indexes
and TTL need. Both stores derive those attributes here, so they order, filter and come due the
same way: times are ISO-8601 UTC strings in one fixed format
(`2026-11-25T14:00:00.000000+00:00`), which sort lexicographically in time order.

An incident is *due* (the sweeper must look at it) when it has pending commands and its step
lease ran out (`updated_at + step_lease`: the replica running the step died), or when its stored
wait (`next_check_at`) has come; `due_at` is the earlier of the two, absent when neither applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiops_agent.domain.models import Incident, TimelineEntry, WorkflowState

DUE_SHARD = "due"
"""The single partition value of the sparse due index."""

_TIME_SPEC = "microseconds"


def as_utc(value: datetime) -> datetime:
    """`value` as an aware UTC datetime; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_time(value: datetime) -> str:
    """The store's sortable time string, e.g. `2026-11-25T14:00:00.000000+00:00`."""
    return as_utc(value).isoformat(timespec=_TIME_SPEC)


def due_at(incident: Incident, step_lease: timedelta) -> datetime | None:
    """When `incident` next needs attention, or None when nothing is pending or scheduled."""
    candidates: list[datetime] = []
    if incident.pending:
        candidates.append(as_utc(incident.updated_at) + step_lease)
    if incident.next_check_at is not None:
        candidates.append(as_utc(incident.next_check_at))
    return min(candidates) if candidates else None


def expires_at(incident: Incident, ttl_days: int) -> int:
    """The TTL attribute: epoch seconds, `ttl_days` after the incident was created."""
    return int((as_utc(incident.created_at) + timedelta(days=ttl_days)).timestamp())


@dataclass(frozen=True, slots=True)
class Record:
    """One stored incident: the document and its key, index and TTL attributes."""

    incident_id: str
    resource_type: str
    resource_key: str
    workflow_state: str
    created_at: str
    updated_at: str
    version: int
    expires_at: int
    doc: str
    due_at: str | None

    @property
    def open(self) -> bool:
        """Not in a terminal workflow state."""
        return not WorkflowState(self.workflow_state).terminal


def encode(incident: Incident, *, version: int, ttl_days: int, step_lease: timedelta) -> Record:
    """The record for `incident` as stored with `version` (the document carries it too)."""
    stored = incident.model_copy(update={"version": version})
    due = due_at(stored, step_lease)
    return Record(
        incident_id=stored.incident_id,
        resource_type=stored.resource_type,
        resource_key=stored.resource_key,
        workflow_state=stored.workflow_state.value,
        created_at=format_time(stored.created_at),
        updated_at=format_time(stored.updated_at),
        version=version,
        expires_at=expires_at(stored, ttl_days),
        doc=stored.model_dump_json(),
        due_at=format_time(due) if due is not None else None,
    )


def audit_entries(incident: Incident, *, created: bool) -> list[tuple[int, TimelineEntry]]:
    """(index, entry) of the timeline entries a write of `incident` appends.

    A decision appends its entries at the time it records as `updated_at`; earlier entries are
    older. Items are keyed by index, so writing one again writes the same immutable content.
    """
    return [
        (incident.audit_index(i), entry)
        for i, entry in enumerate(incident.timeline)
        if created or entry.at >= incident.updated_at
    ]


def decode(record: Record) -> Incident:
    """The incident a record holds, with the record's version."""
    incident = Incident.model_validate_json(record.doc)
    if incident.version != record.version:
        incident = incident.model_copy(update={"version": record.version})
    return incident


# ---------------------------------------------------------------- DynamoDB attribute values


def to_item(record: Record) -> dict[str, dict[str, str]]:
    """The DynamoDB item (low-level attribute-value form) for `record`."""
    item: dict[str, dict[str, str]] = {
        "incident_id": {"S": record.incident_id},
        "resource_type": {"S": record.resource_type},
        "resource_key": {"S": record.resource_key},
        "workflow_state": {"S": record.workflow_state},
        "created_at": {"S": record.created_at},
        "updated_at": {"S": record.updated_at},
        "version": {"N": str(record.version)},
        "expires_at": {"N": str(record.expires_at)},
        "doc": {"S": record.doc},
    }
    if record.due_at is not None:
        item["due_shard"] = {"S": DUE_SHARD}
        item["due_at"] = {"S": record.due_at}
    return item


def from_item(item: dict[str, Any]) -> Record:
    """The record a DynamoDB item (low-level attribute-value form) holds."""
    due = item.get("due_at")
    return Record(
        incident_id=item["incident_id"]["S"],
        resource_type=item["resource_type"]["S"],
        resource_key=item["resource_key"]["S"],
        workflow_state=item["workflow_state"]["S"],
        created_at=item["created_at"]["S"],
        updated_at=item["updated_at"]["S"],
        version=int(item["version"]["N"]),
        expires_at=int(item["expires_at"]["N"]),
        doc=item["doc"]["S"],
        due_at=due["S"] if due is not None else None,
    )
