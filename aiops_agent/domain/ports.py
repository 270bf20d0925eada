"""The ports the engine drives: Protocol-typed, implemented by adapters (and by fakes in tests).

No adapter is imported here; the domain stays free of asyncio and aiobotocore.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, runtime_checkable

from aiops_agent.domain.autonomy import ControlState, Freeze, Pause, Silence
from aiops_agent.domain.models import (
    Analysis,
    Incident,
    NormalizedEvent,
    PlanStep,
    TimelineEntry,
    WorkflowState,
)


class ConflictError(Exception):
    """A conditional write lost: the stored item is not the one the writer read."""


@runtime_checkable
class IncidentStore(Protocol):
    async def create(self, incident: Incident) -> bool:
        """Store a new incident (version 1). False if one with this id already exists, unless
        it is this very record (the same create again: an earlier attempt that landed)."""

    async def get(self, incident_id: str) -> Incident | None: ...

    def keeps_leases(self) -> bool:
        """Whether `save` can release a step lease in the same write (the leases live beside
        the store's items); otherwise the caller releases it through `Coordination`."""

    async def save(self, incident: Incident, *, release: str | None = None) -> Incident:
        """Write `incident` if the stored version is still `incident.version`.

        Returns the incident as stored (version + 1); raises `ConflictError` otherwise.
        `release` (only where `keeps_leases`): the key of a step lease `incident` holds, released
        by the same write; a lease another holder has taken since is left alone.
        """

    async def open_for_resource(self, resource_key: str) -> Incident | None:
        """The newest non-terminal incident about this resource, if any."""

    async def recent_for_resource(self, resource_key: str, since: datetime) -> list[Incident]:
        """Incidents about this resource created at or after `since`, newest first."""

    async def latest_for_resource(self, resource_key: str, limit: int) -> list[Incident]:
        """The `limit` newest incidents about this resource (any state), newest first."""

    async def list_incidents(
        self,
        *,
        state: WorkflowState | None = None,
        resource_type: str | None = None,
        limit: int = 100,
    ) -> list[Incident]:
        """Newest first."""

    async def audit_trail(self, incident_id: str) -> list[TimelineEntry]:
        """Every transition as written, one immutable item each, in order (append-only)."""

    async def due(self, now: datetime, limit: int = 50) -> list[Incident]:
        """Incidents that need attention: a stored wait has come due, or a step's lease expired."""


class Coordination(Protocol):
    """Leases and windowed counters shared by every replica."""

    async def acquire(self, key: str, holder: str, now: datetime, ttl: timedelta) -> str | None:
        """Take or renew the lease on `key`; None when `holder` holds it, else the holder."""

    async def release(self, key: str, holder: str) -> None: ...

    async def count(self, counter: str, member: str, now: datetime, window: timedelta) -> int:
        """Count `member` once in `counter`; the number of members counted within `window`."""


class ControlError(Exception):
    """A silence, freeze or pause change that cannot be made; the message says why."""


class ControlStore(Protocol):
    """Silences, freezes and the pause, shared by every replica (the patterns table).

    Writes are conditional; ending a silence or a freeze keeps it, for the record.
    """

    async def state(self) -> ControlState:
        """Everything stored, expired ones included (one read)."""

    async def add_silence(self, silence: Silence) -> Silence: ...

    async def expire_silence(self, silence_id: str, by: str, now: datetime) -> Silence:
        """End it now; `ControlError` if there is no such silence or it is over already."""

    async def add_freeze(self, freeze: Freeze) -> Freeze: ...

    async def end_freeze(self, freeze_id: str, by: str, now: datetime) -> Freeze:
        """End it now; `ControlError` if there is no such freeze or it is over already."""

    async def pause(self, by: str, reason: str, now: datetime) -> Pause:
        """Pause the fleet; `ControlError` (saying by whom) if it is paused already."""

    async def resume(self, by: str, now: datetime) -> Pause:
        """Resume; `ControlError` if it is not paused."""


class Analyzer(Protocol):
    name: str

    async def analyze(self, event: NormalizedEvent) -> Analysis: ...


class Notifier(Protocol):
    async def publish(
        self, subject: str, message: str, attributes: Mapping[str, str] | None = None
    ) -> None: ...


@dataclass(frozen=True)
class StepOutcome:
    ok: bool
    detail: str
    result: dict[str, Any] = field(default_factory=dict)


CheckStatus = Literal["PASSED", "FAILED", "PENDING"]


@dataclass(frozen=True)
class CheckOutcome:
    status: CheckStatus
    detail: str
    checks: Sequence[dict[str, Any]] = ()
    settled: bool = False
    """True when a FAILED verdict cannot be a stale read (a build's final status): the runner
    then reports it at once, instead of waiting out the consistency window after the action."""


class Action(Protocol):
    """One entry of the action catalog."""

    name: str
    resource_type: str
    description: str
    permissions: tuple[str, ...]

    async def execute(self, params: Mapping[str, Any], idempotency_token: str) -> StepOutcome: ...

    async def verify(
        self, params: Mapping[str, Any], result: Mapping[str, Any]
    ) -> CheckOutcome: ...

    async def dry_run(self, params: Mapping[str, Any]) -> str: ...

    async def precheck(self, params: Mapping[str, Any]) -> str | None:
        """Why this action is not needed right now (None: it is), read before planning it."""


class ActionCatalog(Protocol):
    """What the engine needs of the action registry."""

    def get(self, name: str) -> Action:
        """The action called `name`; KeyError if the catalog has none."""

    def validate(self, step: PlanStep) -> PlanStep:
        """The step with its parameters checked; ValueError/KeyError if it is not runnable."""

    def requires_approval(self, name: str) -> bool:
        """Whether a person must approve this action before it runs, whatever the analysis."""


class ChangeOrigin(Protocol):
    """Who caused a change reported without an author, as the resource itself says."""

    async def origin(self, event: NormalizedEvent) -> tuple[str, str]:
        """(`system` | `user` | `unknown`, the resource's own words)."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...
