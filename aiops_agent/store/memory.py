"""An in-memory `IncidentStore`: production code, with the DynamoDB store's semantics.

It keeps the same records as the DynamoDB store (codec.py): the incident as a JSON document plus
its index attributes. Reads parse the document, so a caller never holds a reference into the
store, and ordering, filtering and due times come from the same strings. Every method runs
without an await in its critical section, so on one event loop each is atomic, as a conditional
write is. TTL is recorded but nothing expires (AWS deletes expired items lazily, moto never).

Use it for tests, the `explain`-style offline paths and a single-process demo.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from aiops_agent.domain.models import Incident, TimelineEntry, WorkflowState
from aiops_agent.domain.ports import ConflictError
from aiops_agent.store.codec import Record, audit_entries, decode, encode, format_time

log = structlog.get_logger(__name__)


class MemoryIncidentStore:
    """A dict of records keyed by incident id. See `aiops_agent.domain.ports.IncidentStore`."""

    def __init__(
        self, *, ttl_days: int = 90, step_lease: timedelta = timedelta(seconds=60)
    ) -> None:
        if ttl_days <= 0:
            raise ValueError("ttl_days must be positive")
        self._ttl_days = ttl_days
        self._step_lease = step_lease
        self._records: dict[str, Record] = {}
        self._audit: dict[str, dict[int, TimelineEntry]] = {}

    def __len__(self) -> int:
        return len(self._records)

    async def create(self, incident: Incident) -> bool:
        """Store `incident` as version 1; False if the id exists.

        The store does not hand the stored incident back: after True, the caller's copy is
        `incident.model_copy(update={"version": 1})`.
        """
        record = self._encode(incident, version=1)
        existing = self._records.get(incident.incident_id)
        if existing is not None:
            # This very record: the same create again (the DynamoDB store's retried write).
            return existing == record
        self._records[incident.incident_id] = record
        self._append_audit(incident, created=True)
        return True

    async def get(self, incident_id: str) -> Incident | None:
        record = self._records.get(incident_id)
        return decode(record) if record is not None else None

    def keeps_leases(self) -> bool:
        """No: the leases are `MemoryCoordination`'s, and the engine releases them there."""
        return False

    async def save(self, incident: Incident, *, release: str | None = None) -> Incident:
        """Write if the stored version is `incident.version`; the stored incident (version + 1)."""
        if release is not None:
            raise ValueError("this store keeps no leases: release them through Coordination")
        current = self._records.get(incident.incident_id)
        if current is None or current.version != incident.version:
            stored_version = current.version if current is not None else None
            log.info(
                "incident.save_conflict",
                incident_id=incident.incident_id,
                expected_version=incident.version,
                stored_version=stored_version,
            )
            raise ConflictError(
                f"incident {incident.incident_id}: expected version {incident.version}, "
                f"stored {stored_version}"
            )
        record = self._encode(incident, version=incident.version + 1)
        self._records[incident.incident_id] = record
        self._append_audit(incident, created=False)
        return decode(record)

    def _append_audit(self, incident: Incident, *, created: bool) -> None:
        trail = self._audit.setdefault(incident.incident_id, {})
        for index, entry in audit_entries(incident, created=created):
            trail.setdefault(index, entry)  # immutable: an entry once written stays

    async def audit_trail(self, incident_id: str) -> list[TimelineEntry]:
        trail = self._audit.get(incident_id, {})
        return [trail[i] for i in sorted(trail)]

    async def open_for_resource(self, resource_key: str) -> Incident | None:
        candidates = [r for r in self._records.values() if r.resource_key == resource_key]
        for record in _newest_first(candidates, by="created_at"):
            if record.open:
                return decode(record)
        return None

    async def recent_for_resource(self, resource_key: str, since: datetime) -> list[Incident]:
        floor = format_time(since)
        matches = [
            r
            for r in self._records.values()
            if r.resource_key == resource_key and r.created_at >= floor
        ]
        return [decode(r) for r in _newest_first(matches, by="created_at")]

    async def latest_for_resource(self, resource_key: str, limit: int) -> list[Incident]:
        candidates = [r for r in self._records.values() if r.resource_key == resource_key]
        return [decode(r) for r in _newest_first(candidates, by="created_at")[:limit]]

    async def list_incidents(
        self,
        *,
        state: WorkflowState | None = None,
        resource_type: str | None = None,
        limit: int = 100,
    ) -> list[Incident]:
        """Newest first: by `updated_at` when filtering by state, else by `created_at`."""
        if limit <= 0:
            return []
        matches = [
            r
            for r in self._records.values()
            if (state is None or r.workflow_state == state.value)
            and (resource_type is None or r.resource_type == resource_type)
        ]
        order = "updated_at" if state is not None else "created_at"
        return [decode(r) for r in _newest_first(matches, by=order)[:limit]]

    async def due(self, now: datetime, limit: int = 50) -> list[Incident]:
        """Incidents whose `due_at` has come, most overdue first."""
        if limit <= 0:
            return []
        cutoff = format_time(now)
        matches = [r for r in self._records.values() if r.due_at is not None and r.due_at <= cutoff]
        matches.sort(key=lambda r: (r.due_at or "", r.incident_id))
        return [decode(r) for r in matches[:limit]]

    def _encode(self, incident: Incident, *, version: int) -> Record:
        return encode(
            incident, version=version, ttl_days=self._ttl_days, step_lease=self._step_lease
        )


def _newest_first(records: list[Record], *, by: str) -> list[Record]:
    """Sorted by the time attribute `by`, newest first; ties broken by id for a stable order."""
    return sorted(records, key=lambda r: (getattr(r, by), r.incident_id), reverse=True)
