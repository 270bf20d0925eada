"""The policy gate: loads what the policy decision needs, and asks the pure core.

Inputs: the resource's tags (`aws/tags.py`, or those recorded at an earlier sighting when the
resource is gone), the silences, freezes and pause (the patterns table, a copy at most
`refresh` old, so a pause reaches every replica within that), the change calendars. The decision
itself is `domain.autonomy.decide_autonomy`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

import structlog

from aiops_agent.domain.autonomy import (
    AutonomySettings,
    ControlState,
    Freeze,
    ResourceTags,
    decide_autonomy,
    holds,
)
from aiops_agent.domain.models import Incident, PolicyDecision
from aiops_agent.domain.ports import Clock, ControlStore, IncidentStore
from aiops_agent.obs.metrics import Metrics

log = structlog.get_logger(__name__)

EARLIER = 10
"""How many of a resource's newest incidents are looked through for tags recorded earlier."""


class TagSource(Protocol):
    async def account(self) -> str | None: ...

    async def read(self, incident: Incident) -> ResourceTags | None:
        """The resource's tags; None when the tagging API does not know the resource."""


class CalendarSource(Protocol):
    async def freezes(self, now: datetime) -> list[Freeze]: ...


class NoTags:
    """A tag source for setups that read none (tests, offline tools): every resource untagged."""

    async def account(self) -> str | None:
        return None

    async def read(self, incident: Incident) -> ResourceTags | None:
        return ResourceTags(source="none", detail="tags are not read here")


class PolicyGate:
    def __init__(
        self,
        *,
        control: ControlStore,
        store: IncidentStore,
        tags: TagSource,
        clock: Clock,
        settings: AutonomySettings,
        metrics: Metrics | None = None,
        calendars: CalendarSource | None = None,
        refresh_s: float = 15.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._control = control
        self._store = store
        self._tags = tags
        self._clock = clock
        self._settings = settings
        self._metrics = metrics
        self._calendars = calendars
        self._refresh = refresh_s
        self._monotonic = monotonic
        self._state: tuple[float, ControlState] | None = None
        self._lock = asyncio.Lock()
        self._account_lock = asyncio.Lock()
        self._earlier: dict[str, tuple[float, ResourceTags, datetime]] = {}
        """resource key -> the earlier-sighting look-up, kept `refresh_s` (a burst of events
        about one resource the tagging API does not know costs one store query)."""

    async def control_state(self) -> ControlState:
        """The stored silences, freezes and pause, at most `refresh_s` old.

        When the table cannot be read, the last copy is used (and logged); with none at all the
        error propagates and the event is retried later: nothing acts on an unknown pause.
        """
        async with self._lock:
            at = self._monotonic()
            if self._state is not None and at - self._state[0] < self._refresh:
                return self._state[1]
            try:
                state = await self._control.state()
            except Exception as exc:
                if self._state is None:
                    raise
                log.warning("policy.control_unread", error=repr(exc), age_s=at - self._state[0])
                return self._state[1]
            self._state = (at, state)
            self._observe(state)
            return state

    def _observe(self, state: ControlState) -> None:
        if self._metrics is None:
            return
        now = self._clock.now()
        self._metrics.control_state(
            paused=state.pause.paused, silences=len(state.active_silences(now))
        )

    async def freezes(self, state: ControlState, now: datetime) -> list[Freeze]:
        calendars = await self._calendars.freezes(now) if self._calendars else []
        found = [*state.active_freezes(now), *calendars]
        if self._metrics is not None:
            self._metrics.active_freezes.set(len(found))
        return found

    async def holds(self) -> list[str]:
        """Why nothing may run without a person right now (the pause, freezes), if anything."""
        now = self._clock.now()
        state = await self.control_state()
        return holds(await self.freezes(state, now), state.pause, now)

    async def watch(self, stop: asyncio.Event) -> None:
        """Keep the copy (and the gauges: `aiops_paused`, ...) fresh while no event comes."""
        while not stop.is_set():
            try:
                await self.holds()
            except Exception as exc:
                log.warning("policy.refresh_failed", error=repr(exc))
            try:
                async with asyncio.timeout(self._refresh):
                    await stop.wait()
            except TimeoutError:
                pass

    async def decide(
        self, incident: Incident, earlier: Sequence[Incident] | None = None
    ) -> tuple[PolicyDecision, ResourceTags, datetime]:
        """The decision, the tags it used, and when those tags were read.

        `earlier`: the resource's newest incidents (newest first, at least `EARLIER` of them
        when it has that many), as the engine's correlation query just read them; given, a
        resource the tagging API does not know costs no look-up of its own.
        """
        now = self._clock.now()
        tags, read_at = await self._resource_tags(incident, now, earlier)
        state = await self.control_state()
        freezes = await self.freezes(state, now)
        settings = await self._with_account()
        decision = decide_autonomy(
            incident, tags, state.silences, freezes, state.pause, settings, now
        )
        if self._metrics is not None:
            self._metrics.policy_decided(decision)
        log.info(
            "policy.decided",
            autonomy=decision.autonomy.value,
            silence_id=decision.silence_id,
            because=decision.because,
        )
        return decision, tags, read_at

    async def _with_account(self) -> AutonomySettings:
        """The settings with the account filled in, once it is known (one look-up at a time: a
        burst of first incidents asks once)."""
        if self._settings.account is not None:
            return self._settings
        async with self._account_lock:
            settings = self._settings
            if settings.account is None:
                account = await self._tags.account()
                if account is not None:
                    settings = self._settings = AutonomySettings(
                        default_autonomy=settings.default_autonomy,
                        tier_cooldowns=settings.tier_cooldowns,
                        account=account,
                    )
            return settings

    async def _resource_tags(
        self, incident: Incident, now: datetime, earlier: Sequence[Incident] | None
    ) -> tuple[ResourceTags, datetime]:
        read = await self._tags.read(incident)
        if read is not None:
            return read, now
        # The tagging API does not know it: deleted (its tags went with it), or never tagged.
        if earlier is not None:
            return _earlier_tags(incident, earlier[:EARLIER], now)
        key = incident.resource_key
        at = self._monotonic()
        cached = self._earlier.get(key)
        if cached is not None and at - cached[0] < self._refresh:
            return cached[1], cached[2]
        found = await self._earlier_sighting(incident, now)
        if len(self._earlier) > 10_000:
            self._earlier.clear()
        self._earlier[key] = (at, *found)
        return found

    async def _earlier_sighting(
        self, incident: Incident, now: datetime
    ) -> tuple[ResourceTags, datetime]:
        latest = await self._store.latest_for_resource(incident.resource_key, EARLIER)
        return _earlier_tags(incident, latest, now)


def _earlier_tags(
    incident: Incident, latest: Sequence[Incident], now: datetime
) -> tuple[ResourceTags, datetime]:
    """The tags the newest earlier incident about the resource recorded, if any."""
    for earlier in latest:
        if earlier.tags and earlier.incident_id != incident.incident_id:
            at = earlier.tags_read_at or earlier.created_at
            detail = f"{at.isoformat(timespec='seconds')}; the resource is not found now"
            return ResourceTags(tags=earlier.tags, source="earlier", detail=detail), at
    gone = "not found by the tagging API; no earlier sighting"
    return ResourceTags(source="none", detail=gone), now
