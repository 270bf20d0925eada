"""The pure state machine: every (state, signal) pair, valid and invalid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aiops_agent.domain.machine import InvalidTransition, Policy, decide, valid_pairs
from aiops_agent.domain.messages import (
    AnalysisFailed,
    Analyzed,
    Approved,
    Escalated,
    EventReceived,
    Notified,
    PlanDeferred,
    PlanReady,
    Rejected,
    RelatedEvent,
    Signal,
    StepFailed,
    StepSucceeded,
    Suppressed,
    Tick,
    VerifyResult,
    command_to_dict,
)
from aiops_agent.domain.models import (
    Analysis,
    Classification,
    Incident,
    NormalizedEvent,
    PlanStep,
    WorkflowState,
    incident_id_for,
)

S = WorkflowState
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
START = PlanStep(action="ec2.start_instances", params={"instance_id": "i-1"})
RESTORE = PlanStep(action="iac.restore", params={"resource_type": "ec2", "resource_id": "i-1"})


def event(event_id: str = "ev-1", action: str = "state:stopped") -> NormalizedEvent:
    return NormalizedEvent(
        event_id=event_id,
        source="aws.ec2",
        detail_type="EC2 Instance State-change Notification",
        resource_type="ec2",
        resource_id="i-1",
        action=action,
        time=T0,
    )


def fresh() -> Incident:
    ev = event()
    return Incident(
        incident_id=incident_id_for(ev.event_id, ev.resource_key),
        event_id=ev.event_id,
        resource_type="ec2",
        resource_id="i-1",
        region="us-east-1",
        resource_key=ev.resource_key,
        event=ev,
        created_at=T0,
        updated_at=T0,
    )


def analysis(
    cls: Classification = Classification.FAILURE,
    confidence: float = 0.95,
    plan: tuple[PlanStep, ...] = (START,),
    requires_approval: bool = False,
) -> Analysis:
    return Analysis(
        classification=cls,
        confidence=confidence,
        reasons=("instance stopped",),
        plan=plan,
        requires_approval=requires_approval,
    )


def run(inc: Incident, *signals: Any, policy: Policy | None = None) -> tuple[Incident, list[Any]]:
    """Apply signals one after another, one second apart; return the last result."""
    commands: list[Any] = []
    for i, sig in enumerate(signals):
        inc, commands = decide(inc, sig, T0 + timedelta(seconds=i + 1), policy)
    return inc, commands


def pending_ids(inc: Incident) -> list[str]:
    return [p["id"] for p in inc.pending]


def to_executing(*steps: PlanStep) -> Incident:
    inc, _ = run(
        fresh(),
        EventReceived(event=event()),
        Analyzed(command_id="analyze", analysis=analysis(plan=steps)),
        PlanReady(command_id="plan", steps=steps),
    )
    return inc


def to_verifying() -> Incident:
    inc = to_executing(START)
    inc, _ = decide(inc, StepSucceeded(command_id="step-0", step=0, detail="started"), T0)
    return inc


# ---------------------------------------------------------------- the happy path


def test_happy_path_to_completed_with_timeline_and_outbox() -> None:
    inc, cmds = decide(fresh(), EventReceived(event=event()), T0)
    assert inc.workflow_state is S.ANALYZING
    assert [c.kind for c in cmds] == ["analyze"]
    assert pending_ids(inc) == ["analyze"]

    inc, cmds = decide(inc, Analyzed(command_id="analyze", analysis=analysis()), T0)
    assert inc.workflow_state is S.PLANNING
    assert inc.classification is Classification.FAILURE
    assert pending_ids(inc) == ["plan"]

    inc, cmds = decide(inc, PlanReady(command_id="plan", steps=(START,)), T0)
    assert inc.workflow_state is S.EXECUTING
    (cmd,) = cmds
    assert cmd.kind == "execute_step"
    assert cmd.idempotency_token == f"{inc.incident_id}-0"
    assert inc.recovery_actions[0].status == "STARTED"

    inc, cmds = decide(inc, StepSucceeded(command_id="step-0", step=0, detail="started"), T0)
    assert inc.workflow_state is S.VERIFYING
    assert inc.recovery_actions[0].status == "SUCCEEDED"
    assert [c.kind for c in cmds] == ["verify"]

    inc, cmds = decide(
        inc,
        VerifyResult(
            command_id="verify-1",
            status="PASSED",
            detail="running",
            checks=({"check": "instance_state", "actual": "running"},),
        ),
        T0,
    )
    assert inc.workflow_state is S.COMPLETED
    assert inc.verification is not None and inc.verification.status == "PASSED"
    assert [c.kind for c in cmds] == ["notify"]
    assert pending_ids(inc) == ["notify-completed"]

    inc, cmds = decide(inc, Notified(command_id="notify-completed"), T0)
    assert inc.pending == () and cmds == []
    states = [e.state for e in inc.timeline]
    assert states == [S.ANALYZING, S.PLANNING, S.EXECUTING, S.VERIFYING, S.COMPLETED, S.COMPLETED]


def test_multi_step_plan_runs_each_step_in_order() -> None:
    inc = to_executing(START, RESTORE)
    inc, cmds = decide(inc, StepSucceeded(command_id="step-0", step=0), T0)
    assert inc.workflow_state is S.EXECUTING
    assert cmds[0].kind == "execute_step" and cmds[0].step == 1
    inc, cmds = decide(inc, StepFailed(command_id="step-1", step=1, error="boom"), T0)
    assert inc.workflow_state is S.PARTIAL
    assert [r.status for r in inc.recovery_actions] == ["SUCCEEDED", "FAILED"]


# ---------------------------------------------------------------- branches


@pytest.mark.parametrize(
    ("an", "state", "kinds"),
    [
        (analysis(Classification.NORMAL, plan=()), S.IGNORED, []),
        (analysis(Classification.ANOMALY, plan=()), S.NOTIFIED, ["notify"]),
        (analysis(confidence=0.5), S.AWAITING_APPROVAL, ["notify"]),
        (analysis(plan=()), S.NOTIFIED, ["notify"]),
        (analysis(Classification.TAMPERING), S.PLANNING, ["plan"]),
    ],
)
def test_analysis_outcomes(an: Analysis, state: WorkflowState, kinds: list[str]) -> None:
    inc, cmds = run(
        fresh(), EventReceived(event=event()), Analyzed(command_id="analyze", analysis=an)
    )
    assert inc.workflow_state is state
    assert [c.kind for c in cmds] == kinds


def test_confidence_threshold_comes_from_policy() -> None:
    sigs = (
        EventReceived(event=event()),
        Analyzed(command_id="analyze", analysis=analysis(confidence=0.85)),
    )
    assert run(fresh(), *sigs)[0].workflow_state is S.PLANNING
    strict = Policy(confidence_threshold=0.9)
    assert run(fresh(), *sigs, policy=strict)[0].workflow_state is S.AWAITING_APPROVAL


def test_analysis_failure_goes_to_manual_review() -> None:
    inc, _cmds = run(
        fresh(), EventReceived(event=event()), AnalysisFailed(command_id="analyze", error="timeout")
    )
    assert inc.workflow_state is S.AWAITING_APPROVAL
    assert "timeout" in inc.timeline[-1].detail


def test_manual_review_approve_then_execute() -> None:
    inc, _ = run(
        fresh(),
        EventReceived(event=event()),
        Analyzed(command_id="analyze", analysis=analysis(confidence=0.3)),
    )
    inc, _ = run(inc, Notified(command_id="notify-awaiting_approval"), Approved(by="alice"))
    assert inc.workflow_state is S.PLANNING and inc.approved_by == "alice"
    inc, _cmds = decide(inc, PlanReady(command_id="plan", steps=(START,)), T0)
    assert inc.workflow_state is S.EXECUTING


def test_plan_needing_approval_waits_once() -> None:
    inc, _ = run(
        fresh(),
        EventReceived(event=event()),
        Analyzed(command_id="analyze", analysis=analysis(requires_approval=True)),
        PlanReady(command_id="plan", steps=(START,)),
    )
    assert inc.workflow_state is S.AWAITING_APPROVAL
    inc, _ = run(inc, Approved(by="bob"), PlanReady(command_id="plan", steps=(START,)))
    assert inc.workflow_state is S.EXECUTING


def test_reject_closes_without_action() -> None:
    inc, _ = run(
        fresh(),
        EventReceived(event=event()),
        Analyzed(command_id="analyze", analysis=analysis(confidence=0.1)),
        Rejected(by="carol", reason="planned maintenance"),
    )
    assert inc.workflow_state is S.REJECTED
    assert "planned maintenance" in inc.timeline[-1].detail
    assert inc.recovery_actions == ()


def test_suppressed_by_planner() -> None:
    inc, cmds = run(
        fresh(),
        EventReceived(event=event()),
        Analyzed(command_id="analyze", analysis=analysis()),
        Suppressed(command_id="plan", reason="cooldown: recovered 2 min ago"),
    )
    assert inc.workflow_state is S.SUPPRESSED and cmds == []
    assert inc.pending == ()


def test_backoff_is_a_stored_wait_then_planning_again() -> None:
    until = T0 + timedelta(minutes=5)
    inc, cmds = run(
        fresh(),
        EventReceived(event=event()),
        Analyzed(command_id="analyze", analysis=analysis()),
        PlanDeferred(command_id="plan", until=until, reason="attempt 2 of 3"),
    )
    assert inc.workflow_state is S.PLANNING and cmds == [] and inc.pending == ()
    assert inc.next_check_at == until
    assert "attempt 2 of 3" in inc.timeline[-1].detail
    inc, cmds = decide(inc, Tick(), until)
    assert [c.kind for c in cmds] == ["plan"] and inc.next_check_at is None


def test_escalation_waits_for_a_person_and_expires() -> None:
    policy = Policy(review_timeout=timedelta(hours=2))
    inc, cmds = run(
        fresh(),
        EventReceived(event=event()),
        Analyzed(command_id="analyze", analysis=analysis()),
        Escalated(command_id="plan", reason="3 recovery attempts did not hold"),
        policy=policy,
    )
    assert inc.workflow_state is S.AWAITING_APPROVAL
    assert "3 recovery attempts" in inc.timeline[-1].detail
    assert [c.kind for c in cmds] == ["notify"]
    assert inc.next_check_at is not None
    inc, cmds = decide(inc, Tick(), inc.next_check_at, policy)
    assert inc.workflow_state is S.REJECTED
    assert "review expired" in inc.timeline[-1].detail


def test_shadow_mode_records_but_executes_nothing() -> None:
    inc, cmds = run(
        fresh(),
        EventReceived(event=event()),
        Analyzed(command_id="analyze", analysis=analysis()),
        PlanReady(command_id="plan", steps=(START,)),
        policy=Policy(shadow=True),
    )
    assert inc.workflow_state is S.NOTIFIED
    assert [r.status for r in inc.recovery_actions] == ["DRY_RUN"]
    assert all(c.kind != "execute_step" for c in cmds)


def test_empty_plan_from_planner_notifies() -> None:
    inc, _ = run(
        fresh(),
        EventReceived(event=event()),
        Analyzed(command_id="analyze", analysis=analysis()),
        PlanReady(command_id="plan", steps=()),
    )
    assert inc.workflow_state is S.NOTIFIED


def test_step_failure_first_step_is_failed() -> None:
    inc, cmds = decide(to_executing(START), StepFailed(command_id="step-0", step=0, error="x"), T0)
    assert inc.workflow_state is S.FAILED
    assert [c.kind for c in cmds] == ["notify"]


@pytest.mark.parametrize(
    ("status", "state"), [("PASSED", S.COMPLETED), ("FAILED", S.FAILED), ("PARTIAL", S.PARTIAL)]
)
def test_verification_outcomes(status: Any, state: WorkflowState) -> None:
    inc, _ = decide(to_verifying(), VerifyResult(command_id="verify-1", status=status), T0)
    assert inc.workflow_state is state
    assert inc.verification is not None and inc.verification.status == status


def test_pending_verification_is_a_stored_wait_then_a_tick() -> None:
    policy = Policy(verify_interval=timedelta(seconds=10), verify_timeout=timedelta(minutes=5))
    inc, cmds = decide(
        to_verifying(), VerifyResult(command_id="verify-1", status="PENDING"), T0, policy
    )
    assert cmds == [] and inc.pending == ()
    assert inc.next_check_at == T0 + timedelta(seconds=10)
    inc, cmds = decide(inc, Tick(), T0 + timedelta(seconds=10), policy)
    assert inc.next_check_at is None
    assert [c.kind for c in cmds] == ["verify"] and pending_ids(inc) == ["verify-2"]
    inc, _ = decide(inc, VerifyResult(command_id="verify-2", status="PASSED"), T0, policy)
    assert inc.workflow_state is S.COMPLETED
    assert inc.verification is not None and inc.verification.attempts == 2


def test_verification_deadline_fails_the_incident() -> None:
    inc = to_verifying()
    assert inc.verify_deadline is not None
    late = inc.verify_deadline + timedelta(seconds=1)
    inc, _cmds = decide(
        inc, VerifyResult(command_id="verify-1", status="PENDING", detail="stopped"), late
    )
    assert inc.workflow_state is S.FAILED
    assert "timed out" in inc.timeline[-1].detail


def test_related_event_joins_timeline_once() -> None:
    inc, _ = decide(fresh(), EventReceived(event=event()), T0)
    other = event("ev-2", "StopInstances")
    inc, cmds = decide(inc, RelatedEvent(event=other), T0)
    assert cmds == [] and inc.related_event_ids == ("ev-2",)
    assert inc.workflow_state is S.ANALYZING
    again, _ = decide(inc, RelatedEvent(event=other), T0)
    assert again == inc


def test_stale_outcome_is_invalid() -> None:
    inc = to_verifying()
    with pytest.raises(InvalidTransition):
        decide(inc, StepSucceeded(command_id="step-0", step=0), T0)


def test_decide_is_pure() -> None:
    inc = fresh()
    sig = EventReceived(event=event())
    assert decide(inc, sig, T0) == decide(inc, sig, T0)
    assert inc.workflow_state is S.RECEIVED


# ---------------------------------------------------------------- every pair

SAMPLE_SIGNALS: list[Signal] = [
    EventReceived(event=event()),
    RelatedEvent(event=event("ev-9")),
    Analyzed(command_id="analyze", analysis=analysis()),
    AnalysisFailed(command_id="analyze", error="x"),
    PlanReady(command_id="plan", steps=(START,)),
    Suppressed(command_id="plan", reason="cooldown"),
    PlanDeferred(command_id="plan", until=T0 + timedelta(minutes=5), reason="attempt 2"),
    Escalated(command_id="plan", reason="3 attempts did not hold"),
    Approved(by="a"),
    Rejected(by="a"),
    StepSucceeded(command_id="step-0", step=0),
    StepFailed(command_id="step-0", step=0, error="x"),
    VerifyResult(command_id="verify-1", status="PASSED"),
    Tick(),
    Notified(command_id="notify-completed"),
]
PENDING_FOR = {
    "analyzed": {"id": "analyze", "kind": "analyze"},
    "analysis_failed": {"id": "analyze", "kind": "analyze"},
    "plan_ready": {"id": "plan", "kind": "plan", "steps": []},
    "suppressed": {"id": "plan", "kind": "plan", "steps": []},
    "plan_deferred": {"id": "plan", "kind": "plan", "steps": []},
    "escalated": {"id": "plan", "kind": "plan", "steps": []},
    "step_succeeded": {"id": "step-0"},
    "step_failed": {"id": "step-0"},
    "verify_result": {"id": "verify-1"},
    "notified": {"id": "notify-completed"},
}


def in_state(state: WorkflowState, signal: Signal) -> Incident:
    """An incident in `state`, holding the pending command `signal` answers, with a plan."""
    pend = PENDING_FOR.get(signal.kind)
    return fresh().model_copy(
        update={
            "workflow_state": state,
            "plan": (START,),
            "pending": (pend,) if pend else (),
            "verify_deadline": T0 + timedelta(minutes=5),
        }
    )


@pytest.mark.parametrize("state", list(WorkflowState))
@pytest.mark.parametrize("signal", SAMPLE_SIGNALS, ids=lambda s: s.kind)
def test_every_state_signal_pair(state: WorkflowState, signal: Signal) -> None:
    inc = in_state(state, signal)
    if (state, signal.kind) not in valid_pairs():
        with pytest.raises(InvalidTransition):
            decide(inc, signal, T0)
        return
    new, commands = decide(inc, signal, T0)
    # Every command decided is in the outbox, and the answered one is gone from it.
    answered = getattr(signal, "command_id", None)
    ids = pending_ids(new)
    for command in commands:
        assert command_to_dict(command) in new.pending
    if answered is not None and answered not in [c.id for c in commands]:
        assert answered not in ids
    assert new.updated_at >= inc.updated_at or new == inc
    if state.terminal:
        assert new.workflow_state is state, "a terminal incident never moves"


def test_terminal_states_accept_only_notifications_and_related_events() -> None:
    terminal_pairs = {(s, k) for (s, k) in valid_pairs() if s.terminal}
    assert {k for _, k in terminal_pairs} == {"notified", "related_event"}


def trusted_call(event_id: str = "ct-1") -> NormalizedEvent:
    return event(event_id, "StopInstances").model_copy(
        update={
            "detail_type": "AWS API Call via CloudTrail",
            "principal": "arn:aws:iam::123456789012:role/deploy-pipeline",
            "details": {"explains": "change by trusted principal deploy-pipeline"},
        }
    )


def waiting_for_its_author() -> Incident:
    inc, _ = run(
        fresh(),
        EventReceived(event=event()),
        Analyzed(command_id="analyze", analysis=analysis()),
        PlanDeferred(command_id="plan", until=T0 + timedelta(minutes=2), reason="no author"),
    )
    return inc


def test_a_trusted_change_closes_an_incident_waiting_for_its_author() -> None:
    inc, cmds = decide(waiting_for_its_author(), RelatedEvent(event=trusted_call()), T0)
    assert inc.workflow_state is S.IGNORED and cmds == [] and inc.pending == ()
    assert inc.next_check_at is None and inc.related_event_ids == ("ct-1",)
    assert inc.timeline[-1].detail == (
        "explained by StopInstances by arn:aws:iam::123456789012:role/deploy-pipeline "
        "(change by trusted principal deploy-pipeline): an intended change, nothing to recover"
    )


def test_a_trusted_change_only_notes_an_incident_that_is_already_acting() -> None:
    acting = to_executing(START)
    inc, cmds = decide(acting, RelatedEvent(event=trusted_call()), T0)
    assert inc.workflow_state is S.EXECUTING and cmds == []
    assert "(intended: change by trusted principal" in inc.timeline[-1].detail
    planning, _ = run(
        fresh(), EventReceived(event=event()), Analyzed(command_id="analyze", analysis=analysis())
    )
    assert pending_ids(planning) == ["plan"]  # the plan is being made: no closing under it
    inc, _ = decide(planning, RelatedEvent(event=trusted_call()), T0)
    assert inc.workflow_state is S.PLANNING and pending_ids(inc) == ["plan"]


def test_a_trusted_change_that_joins_while_the_plan_is_made_closes_it_after() -> None:
    """The wait for the author ends and the planner runs; the CloudTrail record of the trusted
    call joins meanwhile. The plan's outcome must not undo the intended change (seen in the
    demo when the state change was handled before the call)."""
    planning, _ = run(
        fresh(), EventReceived(event=event()), Analyzed(command_id="analyze", analysis=analysis())
    )
    joined, _ = decide(planning, RelatedEvent(event=trusted_call()), T0)
    assert joined.workflow_state is S.PLANNING and joined.explained_by
    inc, cmds = decide(joined, PlanReady(command_id="plan", steps=(START,)), T0)
    assert inc.workflow_state is S.IGNORED, inc.timeline[-1]
    assert not any(c.kind == "execute_step" for c in cmds)
    assert inc.recovery_actions == ()
    assert inc.timeline[-1].detail.startswith("explained by StopInstances by ")
