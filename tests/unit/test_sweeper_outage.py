"""A store outage: the sweeper logs one traceback, then a line per failed sweep, then says it
recovered; it never dies and keeps beating."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from structlog.testing import capture_logs

from aiops_agent.domain.models import Incident
from aiops_agent.obs.health import Health
from aiops_agent.sources.sweeper import Sweeper
from tests.unit.test_engine import rig


class Outage:
    """`due` fails while `down`; after `sweeps` calls the test stops the sweeper."""

    def __init__(self, down: int, sweeps: int, stop: asyncio.Event) -> None:
        self.down, self.sweeps, self.calls, self.stop = down, sweeps, 0, stop

    async def due(self, now: datetime, limit: int = 50) -> list[Incident]:
        self.calls += 1
        if self.calls >= self.sweeps:
            self.stop.set()
        if self.calls <= self.down:
            raise ConnectionError("dynamodb unreachable")
        return []


async def test_an_outage_logs_one_traceback_then_a_line_a_sweep_then_the_recovery() -> None:
    r = rig()
    stop = asyncio.Event()
    store: Any = Outage(down=4, sweeps=6, stop=stop)
    sweeper = Sweeper(store=store, engine=r.engine, clock=r.clock, health=Health(), period=0.01)
    with capture_logs() as logs:
        async with asyncio.timeout(10):
            await sweeper.run(stop)
    events = [(e["event"], e["log_level"]) for e in logs if e["event"].startswith("sweeper.")]
    assert events == [
        ("sweeper.failed", "error"),
        ("sweeper.still_failing", "warning"),
        ("sweeper.still_failing", "warning"),
        ("sweeper.still_failing", "warning"),
        ("sweeper.recovered", "info"),
    ]
    assert [e.get("failed_sweeps") for e in logs if e["event"] == "sweeper.recovered"] == [4]
    assert sum(1 for e in logs if e.get("exc_info")) == 1
