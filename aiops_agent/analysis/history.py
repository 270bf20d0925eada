"""Past-incident context for the model: this resource's incidents, then its resource type's.

Read through the `IncidentStore` port, each query bounded by a count and a deadline. The store
queries its indexes by key (`recent_for_resource`, `list_incidents(resource_type=...)`) and
applies any limit to what matches, never a `Limit` before a filter. History is a help, not a
requirement: if the store is slow or fails, the model is asked without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from aiops_agent.domain.models import Incident, NormalizedEvent
from aiops_agent.domain.ports import IncidentStore

log = structlog.get_logger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class IncidentHistory:
    """Summaries of similar past incidents, newest first, at most `limit` of them."""

    def __init__(
        self,
        store: IncidentStore,
        *,
        limit: int = 8,
        per_resource: int = 4,
        lookback: timedelta = timedelta(days=30),
        timeout_s: float = 3.0,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        if limit < 1 or per_resource < 0:
            raise ValueError("limit must be positive and per_resource not negative")
        self._store = store
        self._limit = limit
        self._per_resource = min(per_resource, limit)
        self._lookback = lookback
        self._timeout_s = timeout_s
        self._now = now

    async def similar(self, event: NormalizedEvent) -> list[dict[str, Any]]:
        """This resource's past incidents first, then others of its type; never this event's."""
        try:
            async with asyncio.timeout(self._timeout_s):
                same = await self._store.recent_for_resource(
                    event.resource_key, self._now() - self._lookback
                )
                others = await self._store.list_incidents(
                    resource_type=event.resource_type, limit=self._limit * 2
                )
        except Exception as exc:  # history is optional context: the model is asked without it
            log.warning("analysis.history_unavailable", error=type(exc).__name__)
            return []
        picked: list[Incident] = []
        seen: set[str] = {event.event_id}
        for incident in [*same[: self._per_resource], *others]:
            if len(picked) >= self._limit:
                break
            if incident.event_id in seen or incident.incident_id in seen:
                continue
            seen.update((incident.event_id, incident.incident_id))
            picked.append(incident)
        return [summarize(incident, event) for incident in picked]


def summarize(incident: Incident, event: NormalizedEvent) -> dict[str, Any]:
    """What the model may learn from one past incident: what happened, what ran, did it work."""
    verification = incident.verification
    return {
        "when": incident.created_at.isoformat(),
        "same_resource": incident.resource_key == event.resource_key,
        "resource_id": incident.resource_id,
        "action": incident.event.action,
        "classification": incident.classification.value if incident.classification else None,
        "outcome": incident.workflow_state.value,
        "actions_taken": [
            {"action": record.action, "status": record.status}
            for record in incident.recovery_actions[:5]
        ],
        "verification": verification.status if verification is not None else None,
    }
