"""Which decisions the engine stores, and what a crash between two of them costs.

A recovered incident is stored when it is created, before its step runs (EXECUTING, the step
pending), after the step (VERIFYING), and once it is closed and notified: the verification's
outcome and the notification it decides ride in one write. A crash in between re-runs only the
read-only check and the notification; the step never runs twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from aiops_agent.domain.autonomy import AutonomySettings, ResourceTags
from aiops_agent.domain.models import Autonomy, Incident, WorkflowState
from aiops_agent.domain.ports import CheckOutcome
from aiops_agent.engine.gate import PolicyGate
from aiops_agent.engine.planner import KnownIncidents, PlannerConfig
from aiops_agent.store.control import MemoryControlStore
from aiops_agent.store.coordination import MemoryCoordination
from tests.unit.test_engine import T0, Crash, FakeClock, ScriptedAction, ev, rig

S = WorkflowState


async def test_a_recovered_incident_is_written_four_times_and_its_history_not_queried() -> None:
    r = rig()
    publish = r.notifier.publish

    async def slow_publish(subject: str, message: str, attributes: Any = None) -> None:
        r.clock.advance(2)  # SNS takes a while
        await publish(subject, message, attributes)

    r.notifier.publish = slow_publish  # type: ignore[method-assign]
    done = await r.engine.handle_event(ev())
    assert done is not None and done.workflow_state is S.COMPLETED and not done.pending
    # create, EXECUTING (before the step), VERIFYING (after it), COMPLETED + notified.
    assert r.store.writes == 4
    # The planner's history is what the correlation query read a moment before the create.
    assert r.store.history_reads == 0
    assert await r.store.get(done.incident_id) == done
    details = [e.detail for e in done.timeline]
    assert details[-2].startswith("verification passed") and details[-1] == "notification sent"
    assert [e.state for e in done.timeline][-2:] == [S.COMPLETED, S.COMPLETED]
    # Both decisions of the last write carry its time: the store appends them both to the
    # audit trail (entries stamped at or after the write's updated_at).
    assert done.timeline[-2].at == done.timeline[-1].at == done.updated_at
    trail = [e.detail for e in await r.store.audit_trail(done.incident_id)]
    assert trail == details


class CrashOnCompletedSave(Exception):
    pass


async def test_a_crash_after_the_notification_reverifies_and_notifies_again_never_acts_twice() -> (
    None
):
    r = rig()
    saves: list[WorkflowState] = []
    real_save = r.store.save
    crashed = False

    async def save(incident: Any) -> Any:
        nonlocal crashed
        saves.append(incident.workflow_state)
        if incident.workflow_state is S.COMPLETED and not crashed:
            crashed = True
            raise Crash  # the process dies after the notification, before its write
        return await real_save(incident)

    r.store.save = save  # type: ignore[method-assign]
    with pytest.raises(Crash):
        await r.engine.handle_event(ev())
    assert len(r.notifier.sent) == 1
    (stuck,) = await r.store.list_incidents()
    # Stored: the step's outcome, with the (read-only) check pending.
    assert stuck.workflow_state is S.VERIFYING
    assert [p["kind"] for p in stuck.pending] == ["verify"]
    assert await r.sweeper.sweep_once() == 0  # the step lease still holds
    r.clock.advance(61)
    assert await r.sweeper.sweep_once() == 1
    done = await r.store.get(stuck.incident_id)
    assert done is not None and done.workflow_state is S.COMPLETED and not done.pending
    assert r.action.executed == [f"{stuck.incident_id}-0"], "the step ran once"
    # At least once: the same notification as a stored Notify would have given.
    assert len(r.notifier.sent) == 2
    assert all("COMPLETED" in subject for subject, _ in r.notifier.sent)
    assert await r.sweeper.sweep_once() == 0


@dataclass
class SlowCheck(ScriptedAction):
    """A check that takes `seconds` of the injected clock."""

    clock: FakeClock | None = None
    seconds: float = 0.0

    async def verify(self, params: Mapping[str, Any], result: Mapping[str, Any]) -> CheckOutcome:
        assert self.clock is not None
        self.clock.advance(self.seconds)
        return await super().verify(params, result)


async def test_the_outcome_is_stored_first_when_the_lease_would_not_cover_the_notification() -> (
    None
):
    # Lease 60 s, notification deadline 45 s: a check that took 20 s leaves too little lease.
    action = SlowCheck(seconds=20)
    r = rig(action)
    action.clock = r.clock
    saved_states: list[WorkflowState] = []
    real_save = r.store.save

    async def save(incident: Any) -> Any:
        saved_states.append(incident.workflow_state)
        return await real_save(incident)

    r.store.save = save  # type: ignore[method-assign]
    done = await r.engine.handle_event(ev())
    assert done is not None and done.workflow_state is S.COMPLETED
    assert r.store.writes == 5
    assert saved_states[-2:] == [S.COMPLETED, S.COMPLETED]  # closed (Notify pending), notified


async def test_a_check_still_pending_stores_its_wait() -> None:
    r = rig(ScriptedAction(checks=["PENDING", "PASSED"]))
    waiting = await r.engine.handle_event(ev())
    assert waiting is not None and waiting.workflow_state is S.VERIFYING
    assert waiting.next_check_at is not None and not waiting.pending
    assert await r.store.get(waiting.incident_id) == waiting
    writes = r.store.writes
    r.clock.t = waiting.next_check_at
    assert await r.sweeper.sweep_once() == 1
    done = await r.store.get(waiting.incident_id)
    assert done is not None and done.workflow_state is S.COMPLETED
    assert r.store.writes == writes + 2  # the tick's claim, then closed and notified at once


def _incident(n: int, minutes_ago: float) -> Incident:
    at = T0 - timedelta(minutes=minutes_ago)
    return Incident(
        incident_id=f"inc-{n}",
        event_id=f"ev-{n}",
        resource_type="ec2",
        resource_id="i-1",
        region="us-east-1",
        resource_key="ec2:us-east-1:i-1",
        event=ev(f"ev-{n}", at=at),
        created_at=at,
        updated_at=at,
    )


def test_known_incidents_answer_only_for_a_window_they_cover() -> None:
    newest = tuple(_incident(n, minutes_ago=10 * n) for n in range(3))  # 0, 10, 20 min ago
    key = newest[0].resource_key
    short = KnownIncidents(key, newest, limit=20)
    # Fewer than the limit were read: that is all of them, whatever the window.
    answered = short.since(key, T0 - timedelta(minutes=15))
    assert answered is not None and [i.incident_id for i in answered] == ["inc-0", "inc-1"]
    assert short.since("ec2:us-east-1:i-2", T0) is None  # another resource
    full = KnownIncidents(key, newest, limit=3)
    # The limit was reached: older ones may exist, so only a window the oldest read precedes.
    assert full.since(key, T0 - timedelta(minutes=60)) is None
    covered = full.since(key, T0 - timedelta(minutes=15))
    assert covered is not None and [i.incident_id for i in covered] == ["inc-0", "inc-1"]


async def test_history_beyond_what_correlation_read_is_queried() -> None:
    config = PlannerConfig(max_attempts=100, backoff_base=timedelta(0), breaker_threshold=100)
    r = rig(planner_config=config)
    for n in range(21):  # recurrences: each after the last recovery began
        r.clock.advance(5)
        done = await r.engine.handle_event(ev(f"ev-{n}", at=r.clock.now()))
        assert done is not None and done.workflow_state is S.COMPLETED
        # Up to 20 incidents read for correlation hold the whole window of the Spot check and
        # of the history; the 21st has 20 newer than either window's start: both query.
        assert r.store.history_reads == (2 if n == 20 else 0)
    assert len(r.action.executed) == 21


class UnknownToTagging:
    """The tagging API knows no resource here (deleted, or never tagged): as in the bench."""

    reads = 0

    async def account(self) -> str | None:
        return "123456789012"

    async def read(self, incident: Incident) -> ResourceTags | None:
        self.reads += 1
        return None


def gated(tags: UnknownToTagging) -> Any:
    def make(store: Any, clock: FakeClock) -> PolicyGate:
        return PolicyGate(
            control=MemoryControlStore(),
            store=store,
            tags=tags,
            clock=clock,
            settings=AutonomySettings(),
        )

    return make


async def test_the_policy_takes_earlier_tags_from_what_correlation_read() -> None:
    tags = UnknownToTagging()
    r = rig(gate=gated(tags))
    old = Incident(
        incident_id="inc-old",
        event_id="ev-old",
        resource_type="ec2",
        resource_id="i-1",
        region="us-east-1",
        resource_key=ev().resource_key,
        event=ev("ev-old", at=T0 - timedelta(days=2)),
        workflow_state=S.COMPLETED,
        tags={"aiops:autonomy": "notify"},
        tags_read_at=T0 - timedelta(days=2),
        created_at=T0 - timedelta(days=2),
        updated_at=T0 - timedelta(days=2),
    )
    await r.store.create(old)
    r.store.writes = 0
    done = await r.engine.handle_event(ev())
    assert done is not None and done.policy is not None
    assert done.policy.autonomy is Autonomy.NOTIFY, done.policy.because
    assert "earlier sighting" in done.policy.because
    assert done.workflow_state is S.NOTIFIED and r.action.executed == []
    # One look at the resource's incidents: the correlation query; the policy used it too.
    assert r.store.latest_reads == 1 and tags.reads == 1


async def test_a_redelivered_event_is_not_judged_again() -> None:
    tags = UnknownToTagging()
    r = rig(gate=gated(tags))
    first = await r.engine.handle_event(ev())
    assert first is not None and first.workflow_state is S.COMPLETED
    assert tags.reads == 1
    again = await r.engine.handle_event(ev())
    assert again is not None and again.incident_id == first.incident_id
    # A duplicate is found by the correlation read before any policy look-up is made.
    assert tags.reads == 1 and r.store.latest_reads == 2


async def test_the_closing_write_carries_the_lease_release_where_the_store_keeps_leases() -> None:
    r = rig()
    leases: MemoryCoordination = r.engine._coord  # type: ignore[assignment]
    released: list[tuple[str, str | None]] = []
    separate: list[str] = []
    real_save, real_release = r.store.save, leases.release

    async def save(incident: Incident, *, release: str | None = None) -> Incident:
        released.append((incident.workflow_state.value, release))
        saved = await real_save(incident)
        if release is not None:  # as the DynamoDB store does, in the same transaction
            await real_release(release, incident.incident_id)
        return saved

    async def release(key: str, holder: str) -> None:
        separate.append(key)
        await real_release(key, holder)

    r.store.keeps_leases = lambda: True  # type: ignore[method-assign]
    r.store.save = save  # type: ignore[method-assign]
    leases.release = release  # type: ignore[method-assign]
    done = await r.engine.handle_event(ev())
    assert done is not None and done.workflow_state is S.COMPLETED
    key = f"recovery:{done.resource_key}"
    # Only the closing write carries it; nothing is released on its own.
    assert [k for _, k in released] == [None, None, key]
    assert released[-1][0] == "COMPLETED" and separate == []
    assert await leases.acquire(key, "inc-next", T0, timedelta(minutes=15)) is None
