"""The sweeper: turns stored waits and orphaned steps back into work.

Every `period` it asks the store for due incidents (a verification re-check whose time has come,
an approval to carry on, a step whose worker died and whose lease expired) and resumes each.
This is what makes "no coroutine outlives one step" safe: nothing waits in memory.

On stop no further incident is taken, the one being resumed gets `stop_grace_s` to finish, and is
then cancelled: its step lease runs out and any replica resumes it, as after a crash.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from aiops_agent.domain.ports import Clock, IncidentStore
from aiops_agent.engine.engine import Engine
from aiops_agent.obs.health import Health
from aiops_agent.sources.stopping import Abandoned, until_stopped

log = structlog.get_logger(__name__)


class Sweeper:
    def __init__(
        self,
        *,
        store: IncidentStore,
        engine: Engine,
        clock: Clock,
        health: Health,
        period: float = 10.0,
        batch: int = 50,
        loop_name: str = "sweeper",
        stop_grace_s: float = 20.0,
    ) -> None:
        self._store = store
        self._engine = engine
        self._clock = clock
        self._health = health
        self._period = period
        self._batch = batch
        self._loop_name = loop_name
        self._stop_grace_s = stop_grace_s
        health.register_loop(loop_name, max_age_s=max(60.0, period * 6))

    async def sweep_once(self, stop: asyncio.Event | None = None) -> int:
        """Resume every due incident once (none after `stop`); returns how many were due."""
        due = await self._store.due(self._clock.now(), self._batch)
        for incident in due:
            if stop is not None and stop.is_set():
                break
            try:
                await self._engine.resume(incident.incident_id)
            except Exception:
                log.exception("sweeper.resume_failed", incident_id=incident.incident_id)
        return len(due)

    async def run(self, stop: asyncio.Event) -> None:
        failing = 0  # sweeps failed in a row: one traceback, then a line each, then recovered
        while not stop.is_set():
            self._health.beat(self._loop_name)
            try:
                async with asyncio.timeout(max(60.0, self._period * 5)):
                    await until_stopped(self.sweep_once(stop), stop, self._stop_grace_s)
            except Abandoned:
                log.info("sweeper.stopped_mid_sweep", grace_s=self._stop_grace_s)
            except Exception as exc:
                failing += 1
                if failing == 1:
                    log.exception("sweeper.failed")
                else:
                    log.warning("sweeper.still_failing", failed_sweeps=failing, error=repr(exc))
            else:
                if failing:
                    log.info("sweeper.recovered", failed_sweeps=failing)
                failing = 0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._period):
                    await stop.wait()
