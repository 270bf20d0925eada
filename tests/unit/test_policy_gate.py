"""The policy gate's loading: earlier sightings, the control copy's age, a failed read."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from aiops_agent.domain.autonomy import AutonomySettings, ControlState, ResourceTags
from aiops_agent.domain.models import Autonomy, Incident, NormalizedEvent
from aiops_agent.engine.gate import PolicyGate
from aiops_agent.store.control import MemoryControlStore
from aiops_agent.store.memory import MemoryIncidentStore

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class Clock:
    def now(self) -> datetime:
        return T0


class Gone:
    """A tag source that does not know the resource (deleted, or never tagged)."""

    async def account(self) -> str | None:
        return "123456789012"

    async def read(self, incident: Incident) -> ResourceTags | None:
        return None


class CountingStore(MemoryIncidentStore):
    lookups = 0

    async def latest_for_resource(self, resource_key: str, limit: int) -> list[Incident]:
        self.lookups += 1
        return await super().latest_for_resource(resource_key, limit)


class FlakyControl(MemoryControlStore):
    broken = False

    async def state(self) -> ControlState:
        if self.broken:
            raise ConnectionError("table unreachable")
        return await super().state()


def incident(n: int, **extra: Any) -> Incident:
    event = NormalizedEvent(
        event_id=f"ev-{n}",
        source="aws.ssm",
        detail_type="AWS API Call via CloudTrail",
        resource_type="ssm",
        resource_id="/app/db",
        action="DeleteParameter",
        time=T0,
    )
    return Incident(
        incident_id=f"inc-{n}",
        event_id=event.event_id,
        resource_type="ssm",
        resource_id="/app/db",
        region="us-east-1",
        resource_key=event.resource_key,
        event=event,
        created_at=T0,
        updated_at=T0,
        **extra,
    )


def gate(store: Any, control: Any, ticks: list[float]) -> PolicyGate:
    return PolicyGate(
        control=control,
        store=store,
        tags=Gone(),
        clock=Clock(),
        settings=AutonomySettings(),
        refresh_s=15,
        monotonic=lambda: ticks[0],
    )


async def test_a_gone_resource_takes_the_tags_an_earlier_incident_recorded() -> None:
    store = CountingStore()
    await store.create(incident(1, tags={"aiops:autonomy": "notify"}, tags_read_at=T0))
    decision, tags, _ = await gate(store, MemoryControlStore(), [0.0]).decide(incident(2))
    assert tags.source == "earlier" and tags.tags == {"aiops:autonomy": "notify"}
    assert decision.autonomy is Autonomy.NOTIFY
    assert "tags recorded at an earlier sighting" in decision.because


async def test_a_burst_about_one_gone_resource_looks_earlier_sightings_up_once() -> None:
    store = CountingStore()
    ticks = [0.0]
    policy = gate(store, MemoryControlStore(), ticks)
    for n in range(5):
        _, tags, _ = await policy.decide(incident(n))
        assert tags.source == "none"
    assert store.lookups == 1
    ticks[0] += 15
    await policy.decide(incident(9))
    assert store.lookups == 2


async def test_the_control_copy_is_refreshed_and_a_failed_read_keeps_the_last() -> None:
    control = FlakyControl()
    ticks = [0.0]
    policy = gate(CountingStore(), control, ticks)
    control.broken = True
    with pytest.raises(ConnectionError):  # no copy at all: nothing acts on an unknown pause
        await policy.decide(incident(1))
    control.broken = False
    assert (await policy.decide(incident(1)))[0].autonomy is Autonomy.ACT
    await control.pause("carol", "bad deploy", T0)
    ticks[0] += 14
    assert (await policy.decide(incident(2)))[0].autonomy is Autonomy.ACT  # copy still fresh
    ticks[0] += 1
    assert (await policy.decide(incident(3)))[0].autonomy is Autonomy.ASK  # 15 s: re-read
    control.broken = True
    ticks[0] += 60
    held = await policy.decide(incident(4))  # the table is down: the last copy holds
    assert held[0].autonomy is Autonomy.ASK


async def test_a_burst_of_first_decisions_asks_for_the_account_once() -> None:
    class SlowAccount(Gone):
        asked = 0

        async def account(self) -> str | None:
            self.asked += 1
            await asyncio.sleep(0.01)  # the STS call takes a while
            return "123456789012"

    tags = SlowAccount()
    policy = PolicyGate(
        control=MemoryControlStore(),
        store=CountingStore(),
        tags=tags,
        clock=Clock(),
        settings=AutonomySettings(),
    )
    await asyncio.gather(*(policy.decide(incident(n), []) for n in range(10)))
    assert tags.asked == 1
