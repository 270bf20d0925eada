"""The engine around the state machine, with the in-memory store and scripted actions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aiops_agent.analysis.rules import RulesAnalyzer
from aiops_agent.domain.machine import Policy
from aiops_agent.domain.messages import Approved
from aiops_agent.domain.models import (
    Analysis,
    Classification,
    Incident,
    NormalizedEvent,
    PlanStep,
    WorkflowState,
)
from aiops_agent.domain.ports import Action, CheckOutcome, CheckStatus, StepOutcome
from aiops_agent.engine.engine import Engine
from aiops_agent.engine.gate import PolicyGate
from aiops_agent.engine.planner import Planner, PlannerConfig
from aiops_agent.engine.runner import CommandRunner, RunnerConfig
from aiops_agent.intake.envelope import parse_event
from aiops_agent.obs.health import Health
from aiops_agent.obs.metrics import Metrics
from aiops_agent.sources.sweeper import Sweeper
from aiops_agent.store.coordination import MemoryCoordination
from aiops_agent.store.memory import MemoryIncidentStore

S = WorkflowState
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.t = T0

    def now(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


class Crash(BaseException):
    """Stands for the process dying mid-step (nothing catches a BaseException)."""


@dataclass
class ScriptedAction:
    name: str = "fake.start"
    resource_type: str = "ec2"
    description: str = "start it"
    permissions: tuple[str, ...] = ("ec2:StartInstances",)
    checks: list[CheckStatus] = field(default_factory=lambda: ["PASSED"])
    crash_first: bool = False
    executed: list[str] = field(default_factory=list)
    effects: set[str] = field(default_factory=set)

    async def execute(self, params: Mapping[str, Any], idempotency_token: str) -> StepOutcome:
        self.executed.append(idempotency_token)
        if self.crash_first and len(self.executed) == 1:
            raise Crash
        self.effects.add(idempotency_token)  # idempotent: a set, like a ClientToken
        return StepOutcome(ok=True, detail="started")

    async def verify(self, params: Mapping[str, Any], result: Mapping[str, Any]) -> CheckOutcome:
        status = self.checks.pop(0) if len(self.checks) > 1 else self.checks[0]
        return CheckOutcome(status, f"state {status}", [{"check": "state", "actual": status}])

    async def dry_run(self, params: Mapping[str, Any]) -> str:
        return "would start"

    async def precheck(self, params: Mapping[str, Any]) -> str | None:
        return self.not_needed

    not_needed: str | None = None


class Catalog:
    def __init__(self, action: ScriptedAction) -> None:
        self.action = action

    def get(self, name: str) -> Action:
        if name != self.action.name:
            raise KeyError(name)
        return self.action

    def validate(self, step: PlanStep) -> PlanStep:
        self.get(step.action)
        return step

    def requires_approval(self, name: str) -> bool:
        return self.approval

    approval = False


class FixedAnalyzer:
    name = "fixed"

    def __init__(
        self, classification: Classification = Classification.FAILURE, confidence: float = 0.95
    ) -> None:
        self.classification = classification
        self.confidence = confidence

    async def analyze(self, event: NormalizedEvent) -> Analysis:
        plan = (
            ()
            if self.classification is Classification.NORMAL
            else (PlanStep(action="fake.start", params={"instance_id": event.resource_id}),)
        )
        return Analysis(
            classification=self.classification,
            confidence=self.confidence,
            reasons=("scripted",),
            plan=plan,
        )


@dataclass
class RecordingNotifier:
    sent: list[tuple[str, str]] = field(default_factory=list)

    async def publish(
        self, subject: str, message: str, attributes: Mapping[str, str] | None = None
    ) -> None:
        self.sent.append((subject, message))


class CountingStore(MemoryIncidentStore):
    writes = 0
    history_reads = 0
    latest_reads = 0

    async def latest_for_resource(self, resource_key: str, limit: int) -> list[Incident]:
        self.latest_reads += 1
        return await super().latest_for_resource(resource_key, limit)

    async def recent_for_resource(self, resource_key: str, since: datetime) -> list[Incident]:
        self.history_reads += 1
        return await super().recent_for_resource(resource_key, since)

    async def create(self, incident: Any) -> bool:
        self.writes += 1
        return await super().create(incident)

    async def save(self, incident: Any, *, release: str | None = None) -> Any:
        self.writes += 1
        return await super().save(incident, release=release)


@dataclass
class Rig:
    engine: Engine
    store: CountingStore
    action: ScriptedAction
    notifier: RecordingNotifier
    clock: FakeClock
    sweeper: Sweeper
    metrics: Metrics


def rig(
    action: ScriptedAction | None = None,
    analyzer: Any = None,
    planner_config: PlannerConfig | None = None,
    gate: Callable[[CountingStore, FakeClock], PolicyGate] | None = None,
) -> Rig:
    clock = FakeClock()
    store = CountingStore(step_lease=timedelta(seconds=60))
    action = action or ScriptedAction()
    notifier = RecordingNotifier()
    metrics = Metrics()
    coordination = MemoryCoordination()
    catalog = Catalog(action)
    planner = Planner(
        store=store,
        coordination=coordination,
        catalog=catalog,
        notifier=notifier,
        clock=clock,
        metrics=metrics,
        config=planner_config or PlannerConfig(backoff_base=timedelta(minutes=5)),
    )
    runner = CommandRunner(
        analyzer=analyzer or FixedAnalyzer(),
        catalog=catalog,
        planner=planner,
        notifier=notifier,
        config=RunnerConfig(),
        clock=clock,
        gate=gate(store, clock) if gate is not None else None,
    )
    policy = Policy(verify_interval=timedelta(seconds=10), verify_timeout=timedelta(minutes=2))
    engine = Engine(
        store=store,
        runner=runner,
        clock=clock,
        policy=policy,
        metrics=metrics,
        coordination=coordination,
        step_lease=timedelta(seconds=60),
    )
    sweeper = Sweeper(store=store, engine=engine, clock=clock, health=Health(), period=1)
    return Rig(engine, store, action, notifier, clock, sweeper, metrics)


def ev(event_id: str = "ev-1", resource_id: str = "i-1", at: datetime = T0) -> NormalizedEvent:
    return NormalizedEvent(
        event_id=event_id,
        source="aws.ec2",
        detail_type="EC2 Instance State-change Notification",
        resource_type="ec2",
        resource_id=resource_id,
        action="state:stopped",
        time=at,
    )


def metric(r: Rig, name: str, labels: dict[str, str]) -> float:
    return r.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_event_to_completed_with_notification_and_metrics() -> None:
    r = rig()
    incident = await r.engine.handle_event(ev())
    assert incident is not None
    assert incident.workflow_state is S.COMPLETED
    assert incident.pending == ()
    assert r.action.executed == [f"{incident.incident_id}-0"]
    assert len(r.notifier.sent) == 1 and "COMPLETED" in r.notifier.sent[0][0]
    stored = await r.store.get(incident.incident_id)
    assert stored == incident
    assert [e.state for e in stored.timeline][-2:] == [S.COMPLETED, S.COMPLETED]
    assert metric(r, "aiops_incidents_total", {"outcome": "COMPLETED", "resource_type": "ec2"}) == 1


async def test_normal_event_costs_no_write() -> None:
    r = rig(analyzer=FixedAnalyzer(Classification.NORMAL))
    assert await r.engine.handle_event(ev()) is None
    assert r.store.writes == 0
    assert await r.store.list_incidents() == []


async def test_same_event_five_times_is_one_incident_one_action() -> None:
    r = rig()
    for _ in range(5):
        await r.engine.handle_event(ev())
    assert len(await r.store.list_incidents()) == 1
    assert len(r.action.executed) == 1


async def test_second_event_joins_the_open_incident() -> None:
    r = rig(ScriptedAction(checks=["PENDING"]))
    first = await r.engine.handle_event(ev("ev-1"))
    assert first is not None and first.workflow_state is S.VERIFYING
    joined = await r.engine.handle_event(ev("ev-2"))
    assert joined is not None and joined.incident_id == first.incident_id
    assert joined.related_event_ids == ("ev-2",)
    assert len(await r.store.list_incidents()) == 1
    assert len(r.action.executed) == 1


async def test_recurrences_back_off_then_go_to_manual_review_after_three_attempts() -> None:
    r = rig(planner_config=PlannerConfig(backoff_base=timedelta(minutes=1), max_attempts=3))
    first = await r.engine.handle_event(ev("ev-1"))
    assert first is not None and first.workflow_state is S.COMPLETED
    waits = []
    for n in (2, 3):
        r.clock.advance(5)  # the failure is back: a recurrence, after the recovery
        again = await r.engine.handle_event(ev(f"ev-{n}", at=r.clock.now()))
        assert again is not None and again.workflow_state is S.PLANNING
        assert again.next_check_at is not None
        assert f"attempt {n} of 3" in again.timeline[-1].detail
        waits.append((again.next_check_at - r.clock.now()).total_seconds())
        assert await r.sweeper.sweep_once() == 0  # still backing off
        r.clock.t = again.next_check_at
        assert await r.sweeper.sweep_once() == 1
        done = await r.store.get(again.incident_id)
        assert done is not None and done.workflow_state is S.COMPLETED
    assert waits[1] > waits[0] * 1.5, "the backoff grows exponentially"
    r.clock.advance(5)
    last = await r.engine.handle_event(ev("ev-4", at=r.clock.now()))
    assert last is not None and last.workflow_state is S.AWAITING_APPROVAL
    assert any("3 recovery attempts" in e.detail for e in last.timeline)
    assert len(r.action.executed) == 3, "exactly three attempts, never more"


async def _fail_verification(r: Rig, event_id: str) -> Incident:
    """Handle an event whose check keeps failing: FAILED once the consistency window is over."""
    first = await r.engine.handle_event(ev(event_id))
    assert first is not None and first.workflow_state is S.VERIFYING  # maybe a stale read
    for _ in range(7):
        r.clock.advance(10)
        await r.sweeper.sweep_once()
    done = await r.store.get(first.incident_id)
    assert done is not None
    return done


async def test_a_failed_check_right_after_the_action_is_checked_again() -> None:
    """A read soon after the action may show the state from before it (eventual consistency):
    FAILED within the window is PENDING; a check that then passes completes the recovery."""
    r = rig(ScriptedAction(checks=["FAILED", "FAILED", "PASSED"]))
    first = await r.engine.handle_event(ev("ev-1"))
    assert first is not None and first.workflow_state is S.VERIFYING
    assert first.verification is not None and "checking again" in first.verification.detail
    for _ in range(2):
        r.clock.advance(10)
        await r.sweeper.sweep_once()
    done = await r.store.get(first.incident_id)
    assert done is not None and done.workflow_state is S.COMPLETED


async def test_an_action_that_failed_verification_is_not_retried_blindly() -> None:
    r = rig(ScriptedAction(checks=["FAILED"]))
    first = await _fail_verification(r, "ev-1")
    assert first.workflow_state is S.FAILED
    r.clock.advance(600)
    again = await r.engine.handle_event(ev("ev-2", at=r.clock.now()))
    assert again is not None and again.workflow_state is S.AWAITING_APPROVAL
    assert any("failed verification" in e.detail for e in again.timeline)
    assert len(r.action.executed) == 1


async def test_circuit_breaker_stops_a_mass_of_recoveries_and_alerts_once() -> None:
    r = rig(planner_config=PlannerConfig(breaker_threshold=3, breaker_window=timedelta(minutes=5)))
    results = [await r.engine.handle_event(ev(f"ev-{n}", f"i-{n}")) for n in range(6)]
    states = [i.workflow_state for i in results if i is not None]
    assert states == [S.COMPLETED] * 3 + [S.SUPPRESSED] * 3
    assert "circuit breaker open" in results[-1].timeline[-1].detail  # type: ignore[union-attr]
    alerts = [subject for subject, _ in r.notifier.sent if "circuit breaker" in subject]
    assert len(alerts) == 1
    assert len(r.action.executed) == 3
    assert r.metrics.registry.get_sample_value("aiops_breaker_open", {"breaker": "recovery"}) == 1


async def test_a_resource_under_recovery_elsewhere_is_not_recovered_twice() -> None:
    r = rig()
    coordination = r.engine._coord
    held = await coordination.acquire(
        "recovery:ec2:us-east-1:i-1", "inc-other", T0, timedelta(minutes=15)
    )
    assert held is None
    incident = await r.engine.handle_event(ev())
    assert incident is not None and incident.workflow_state is S.SUPPRESSED
    assert "recovery already in progress: inc-other" in incident.timeline[-1].detail
    assert r.action.executed == []


async def test_a_late_echo_of_the_same_change_joins_the_closed_incident() -> None:
    r = rig()
    first = await r.engine.handle_event(ev("ev-1"))
    assert first is not None and first.workflow_state is S.COMPLETED
    r.clock.advance(300)  # CloudTrail's copy of the call arrives minutes later
    echo = await r.engine.handle_event(ev("ct-1", at=T0))
    assert echo is not None and echo.incident_id == first.incident_id
    assert echo.workflow_state is S.COMPLETED
    assert echo.related_event_ids == ("ct-1",)
    assert "related event joined" in echo.timeline[-1].detail
    assert len(await r.store.list_incidents()) == 1
    assert len(r.action.executed) == 1


async def test_concurrent_events_about_one_resource_make_one_incident() -> None:
    r = rig(ScriptedAction(checks=["PASSED"]))
    results = await asyncio.gather(*(r.engine.handle_event(ev(f"ev-{n}")) for n in range(4)))
    ids = {i.incident_id for i in results if i is not None}
    assert len(ids) == 1
    (only,) = await r.store.list_incidents()
    assert only.workflow_state is S.COMPLETED
    assert sorted(only.related_event_ids) == ["ev-1", "ev-2", "ev-3"]
    assert len(r.action.executed) == 1


async def test_pending_verification_is_resumed_by_the_sweeper() -> None:
    r = rig(ScriptedAction(checks=["PENDING", "PENDING", "PASSED"]))
    incident = await r.engine.handle_event(ev())
    assert incident is not None and incident.workflow_state is S.VERIFYING
    assert await r.sweeper.sweep_once() == 0  # not due yet
    for _ in range(2):
        r.clock.advance(10)
        assert await r.sweeper.sweep_once() == 1
    done = await r.store.get(incident.incident_id)
    assert done is not None and done.workflow_state is S.COMPLETED
    assert done.verification is not None and done.verification.attempts == 3


async def test_verification_that_never_passes_fails_at_the_deadline() -> None:
    r = rig(ScriptedAction(checks=["PENDING"]))
    incident = await r.engine.handle_event(ev())
    assert incident is not None
    for _ in range(14):
        r.clock.advance(10)
        await r.sweeper.sweep_once()
    done = await r.store.get(incident.incident_id)
    assert done is not None and done.workflow_state is S.FAILED
    assert "timed out" in done.timeline[-2].detail


async def test_crash_mid_step_is_resumed_once_after_the_lease() -> None:
    r = rig(ScriptedAction(crash_first=True))
    with pytest.raises(Crash):
        await r.engine.handle_event(ev())
    (stuck,) = await r.store.list_incidents()
    assert stuck.workflow_state is S.EXECUTING and stuck.pending
    assert await r.sweeper.sweep_once() == 0  # the lease still holds
    r.clock.advance(61)
    assert await r.sweeper.sweep_once() == 1
    done = await r.store.get(stuck.incident_id)
    assert done is not None and done.workflow_state is S.COMPLETED
    # The step ran again with the same idempotency token: one effect.
    assert r.action.executed == [f"{stuck.incident_id}-0"] * 2
    assert r.action.effects == {f"{stuck.incident_id}-0"}


async def test_redelivery_during_a_live_step_does_not_run_it_again() -> None:
    r = rig(ScriptedAction(crash_first=True))
    with pytest.raises(Crash):
        await r.engine.handle_event(ev())
    await r.engine.handle_event(ev())  # redelivered while the lease holds
    assert len(r.action.executed) == 1
    r.clock.advance(61)
    await r.engine.handle_event(ev())  # redelivered after: it resumes the orphan
    (done,) = await r.store.list_incidents()
    assert done.workflow_state is S.COMPLETED


async def test_low_confidence_waits_for_approval_then_recovers() -> None:
    r = rig(analyzer=FixedAnalyzer(confidence=0.5))
    incident = await r.engine.handle_event(ev())
    assert incident is not None and incident.workflow_state is S.AWAITING_APPROVAL
    assert r.action.executed == []
    assert "manual review" in r.notifier.sent[0][0]
    await r.engine.answer_review(incident.incident_id, Approved(by="alice"))
    assert await r.sweeper.sweep_once() == 1
    done = await r.store.get(incident.incident_id)
    assert done is not None and done.workflow_state is S.COMPLETED
    assert done.approved_by == "alice"
    assert len(r.action.executed) == 1


async def test_an_action_the_catalog_marks_for_approval_waits_for_a_person() -> None:
    r = rig()
    assert isinstance(r.engine._runner._catalog, Catalog)
    r.engine._runner._catalog.approval = True
    incident = await r.engine.handle_event(ev())
    assert incident is not None and incident.workflow_state is S.AWAITING_APPROVAL
    assert r.action.executed == []


async def test_an_action_that_says_it_is_not_needed_is_not_run() -> None:
    r = rig(ScriptedAction(not_needed="instance belonged to Auto Scaling group web"))
    incident = await r.engine.handle_event(ev())
    assert incident is not None and incident.workflow_state is S.SUPPRESSED
    assert "Auto Scaling group web" in incident.timeline[-1].detail
    assert r.action.executed == [] and r.notifier.sent == []


async def test_an_alarm_back_to_ok_is_noted_on_the_incident_it_raised() -> None:
    alarm = {
        "version": "0",
        "id": "alarm-1",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "time": "2026-11-25T12:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:api-errors"],
        "detail": {
            "alarmName": "api-errors",
            "state": {"value": "ALARM", "reason": "Threshold Crossed"},
            "previousState": {"value": "OK", "reason": "ok"},
        },
    }
    back = json.loads(json.dumps(alarm))
    back["id"] = "alarm-2"
    back["detail"]["state"]["value"], back["detail"]["previousState"]["value"] = "OK", "ALARM"
    r = rig(analyzer=RulesAnalyzer())
    (raised_event,) = parse_event(json.dumps(alarm))
    raised = await r.engine.handle_event(raised_event)
    assert raised is not None and raised.workflow_state is S.NOTIFIED
    r.clock.advance(120)
    (ok_event,) = parse_event(json.dumps(back))
    noted = await r.engine.handle_event(ok_event)
    assert noted is not None and noted.incident_id == raised.incident_id
    assert noted.timeline[-1].detail.startswith("resolved: CloudWatch Alarm State Change")
    assert len(await r.store.list_incidents()) == 1


async def test_two_resources_are_independent() -> None:
    r = rig()
    results: Sequence[Any] = [
        await r.engine.handle_event(ev(f"ev-{n}", f"i-{n}")) for n in range(3)
    ]
    assert {i.workflow_state for i in results} == {S.COMPLETED}
    assert len(r.action.executed) == 3


PIPELINE = "arn:aws:iam::123456789012:role/deploy-pipeline"


class ByAuthor:
    """The rules' view of authorship: the pipeline's calls are intended, anything else fails."""

    name = "by-author"

    async def analyze(self, event: NormalizedEvent) -> Analysis:
        if event.principal == PIPELINE:
            return Analysis(
                classification=Classification.NORMAL,
                confidence=0.95,
                reasons=("change by trusted principal deploy-pipeline",),
                intended=True,
            )
        return await FixedAnalyzer().analyze(event)


def call(event_id: str, principal: str, at: datetime = T0) -> NormalizedEvent:
    """The CloudTrail record of the stop: the same change, with its author."""
    return ev(event_id, at=at).model_copy(
        update={
            "detail_type": "AWS API Call via CloudTrail",
            "action": "StopInstances",
            "principal": principal,
        }
    )


def grace_rig() -> Rig:
    return rig(
        analyzer=ByAuthor(),
        planner_config=PlannerConfig(
            backoff_base=timedelta(minutes=5), attribution_grace=timedelta(seconds=120)
        ),
    )


async def test_a_trusted_pipelines_stop_is_not_undone() -> None:
    r = grace_rig()
    opened = await r.engine.handle_event(ev("state-1"))  # no author: wait for CloudTrail
    assert opened is not None and opened.workflow_state is S.PLANNING
    assert opened.next_check_at == T0 + timedelta(seconds=120)
    assert "waiting for its CloudTrail record" in opened.timeline[-1].detail
    r.clock.advance(45)  # CloudTrail's copy of the call arrives
    closed = await r.engine.handle_event(call("ct-1", PIPELINE))
    assert closed is not None and closed.incident_id == opened.incident_id
    assert closed.workflow_state is S.IGNORED and closed.related_event_ids == ("ct-1",)
    assert "explained by StopInstances by " + PIPELINE in closed.timeline[-1].detail
    r.clock.advance(600)
    assert await r.sweeper.sweep_once() == 0
    assert r.action.executed == [] and r.notifier.sent == []


async def test_an_unexplained_change_is_recovered_when_the_wait_is_over() -> None:
    r = grace_rig()
    opened = await r.engine.handle_event(ev("state-1"))
    assert opened is not None and r.action.executed == []
    r.clock.advance(119)
    assert await r.sweeper.sweep_once() == 0  # no record came: still waiting
    r.clock.t = T0 + timedelta(seconds=120)
    assert await r.sweeper.sweep_once() == 1
    done = await r.store.get(opened.incident_id)
    assert done is not None and done.workflow_state is S.COMPLETED
    assert len(r.action.executed) == 1


async def test_the_record_of_an_untrusted_author_ends_the_wait_at_once() -> None:
    r = grace_rig()
    opened = await r.engine.handle_event(ev("state-1"))
    assert opened is not None and opened.workflow_state is S.PLANNING
    r.clock.advance(30)
    mallory = "arn:aws:iam::123456789012:user/mallory"
    done = await r.engine.handle_event(call("ct-1", mallory))
    # Someone else's stop: recovered now, not 90 s later when the wait would have ended.
    assert done is not None and done.incident_id == opened.incident_id
    assert done.workflow_state is S.COMPLETED and done.authored_by == mallory
    assert len(r.action.executed) == 1
    details = [e.detail for e in done.timeline]
    assert any(d.endswith(f"StopInstances by {mallory}: the author") for d in details)
    assert any(f"made by {mallory} (its CloudTrail record joined)" in d for d in details)
    assert metric(r, "aiops_attribution_total", {"outcome": "author_joined"}) == 1
    r.clock.t = T0 + timedelta(seconds=600)
    assert await r.sweeper.sweep_once() == 0
    assert len(r.action.executed) == 1


async def test_a_call_that_is_not_the_changes_own_does_not_end_the_wait() -> None:
    r = grace_rig()
    opened = await r.engine.handle_event(ev("state-1"))  # stopped
    assert opened is not None
    r.clock.advance(30)
    mallory = "arn:aws:iam::123456789012:user/mallory"
    start = call("ct-1", mallory).model_copy(update={"action": "StartInstances"})
    joined = await r.engine.handle_event(start)  # a start is not the stop's author
    assert joined is not None and joined.incident_id == opened.incident_id
    assert joined.workflow_state is S.PLANNING and joined.authored_by is None
    assert joined.next_check_at == T0 + timedelta(seconds=120)
    assert r.action.executed == []


async def test_no_wait_for_a_call_with_its_author_or_a_change_already_old() -> None:
    r = grace_rig()
    with_author = await r.engine.handle_event(call("ct-1", "arn:aws:iam::123456789012:user/bob"))
    assert with_author is not None and with_author.workflow_state is S.COMPLETED
    r.clock.advance(3600)
    old = await r.engine.handle_event(ev("state-9", "i-2", at=r.clock.now() - timedelta(minutes=5)))
    assert old is not None and old.workflow_state is S.COMPLETED
    assert len(r.action.executed) == 2


async def test_a_call_recorded_first_covers_the_report_that_follows() -> None:
    r = grace_rig()
    recorded = await r.engine.handle_event(call("ct-1", PIPELINE))  # CloudTrail first, this time
    assert recorded is not None and recorded.workflow_state is S.IGNORED
    r.clock.advance(40)  # the instance reaches "stopped" 40 s after the call
    report = await r.engine.handle_event(ev("state-1", at=r.clock.now()))
    assert report is not None and report.incident_id == recorded.incident_id
    assert report.workflow_state is S.IGNORED and report.related_event_ids == ("state-1",)
    assert len(await r.store.list_incidents()) == 1 and r.action.executed == []


async def test_a_call_stored_by_another_replica_in_a_race_stops_the_plan_at_the_end() -> None:
    r = grace_rig()
    opened = await r.engine.handle_event(ev("state-1"))
    assert opened is not None and opened.workflow_state is S.PLANNING
    other = grace_rig()  # another replica took the call and did not see the waiting incident
    recorded = await other.engine.handle_event(call("ct-1", PIPELINE))
    assert recorded is not None
    assert await r.store.create(recorded.model_copy(update={"version": 0}))
    r.clock.t = T0 + timedelta(seconds=120)
    assert await r.sweeper.sweep_once() == 1
    done = await r.store.get(opened.incident_id)
    assert done is not None and done.workflow_state is S.SUPPRESSED
    assert f"not needed: StopInstances by {PIPELINE} made this change" in done.timeline[-1].detail
    assert r.action.executed == []


async def test_an_intended_call_explains_only_the_report_of_its_own_effect() -> None:
    r = grace_rig()
    opened = await r.engine.handle_event(ev("state-1"))  # stopped
    assert opened is not None
    start = call("ct-1", PIPELINE).model_copy(update={"action": "StartInstances"})
    await r.engine.handle_event(start)  # a start does not explain a stop
    r.clock.t = T0 + timedelta(seconds=120)
    assert await r.sweeper.sweep_once() == 1
    done = await r.store.get(opened.incident_id)
    assert done is not None and done.workflow_state is S.COMPLETED
    assert len(r.action.executed) == 1


async def test_a_redelivery_after_a_recurrence_is_its_own_incidents_duplicate() -> None:
    r = rig()
    first = await r.engine.handle_event(ev("ev-1"))
    assert first is not None and first.workflow_state is S.COMPLETED
    r.clock.advance(5)
    second = await r.engine.handle_event(ev("ev-2", at=r.clock.now()))  # the failure is back
    assert second is not None and second.incident_id != first.incident_id
    again = await r.engine.handle_event(ev("ev-1"))  # SQS delivers the first event once more
    assert again is not None and again.incident_id == first.incident_id
    newer = await r.store.get(second.incident_id)
    assert newer is not None and "ev-1" not in newer.related_event_ids
    assert len(await r.store.list_incidents()) == 2


async def test_an_approval_landing_mid_drive_is_run_once_by_whoever_claims_it() -> None:
    """The review is answered while the worker that opened the incident is still sending the
    'approval needed' notification; a sweep runs while the step executes. The plan runs once.

    Before: the notifying worker, losing its save to the approval, reloaded the incident and
    went on to run the approved plan itself, while the sweeper (the approval makes the incident
    due at once) claimed it too: the step ran twice.
    """
    r = rig(analyzer=FixedAnalyzer(confidence=0.5))
    answered: list[str] = []

    class ApprovingNotifier(RecordingNotifier):
        async def publish(
            self, subject: str, message: str, attributes: Mapping[str, str] | None = None
        ) -> None:
            await super().publish(subject, message, attributes)
            if "manual review" in subject and not answered:
                incident_id = (attributes or {})["incident_id"]
                answered.append(incident_id)
                await r.engine.answer_review(incident_id, Approved(by="alice"))

    notifier = ApprovingNotifier()
    r.engine._runner._notifier = notifier
    sweeps_during_step: list[int] = []
    real_execute = r.action.execute

    async def execute_with_a_sweep(params: Mapping[str, Any], token: str) -> StepOutcome:
        outcome = await real_execute(params, token)
        if len(sweeps_during_step) < 3:  # the daemon's sweeper, running meanwhile
            sweeps_during_step.append(await r.sweeper.sweep_once())
        return outcome

    r.action.execute = execute_with_a_sweep  # type: ignore[method-assign]
    opened = await r.engine.handle_event(ev())
    assert answered and opened is not None
    assert r.action.executed == []  # the approval is not the notifying worker's to run
    assert opened.workflow_state is S.PLANNING
    await r.sweeper.sweep_once()
    r.clock.advance(11)
    await r.sweeper.sweep_once()
    done = await r.store.get(answered[0])
    assert done is not None and done.workflow_state is S.COMPLETED
    assert len(r.action.executed) == 1
