"""The incident state machine: `decide(incident, signal, now) -> (incident, commands)`.

Every transition is a row of `_TABLE`, keyed by (state, signal kind). A pair that is not in the
table raises `InvalidTransition`: the caller logs it and drops the signal (a stale outcome after a
redelivery, an approval for an incident that is already closed). No I/O and no clock reads here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiops_agent.domain.messages import (
    AnalysisFailed,
    Analyze,
    Analyzed,
    Approved,
    Command,
    Escalated,
    EventReceived,
    ExecuteStep,
    Notified,
    Notify,
    Plan,
    PlanDeferred,
    PlanReady,
    Rejected,
    RelatedEvent,
    Signal,
    StepFailed,
    StepSucceeded,
    Suppressed,
    Tick,
    Verify,
    VerifyResult,
    command_to_dict,
)
from aiops_agent.domain.models import (
    RELATED_IDS_KEPT,
    TIMELINE_HEAD,
    TIMELINE_TAIL,
    ActionRecord,
    Autonomy,
    Classification,
    Incident,
    TimelineEntry,
    Verification,
    WorkflowState,
)

S = WorkflowState


@dataclass(frozen=True)
class Policy:
    """The knobs of the workflow, narrowed from the settings."""

    confidence_threshold: float = 0.8
    verify_timeout: timedelta = timedelta(minutes=5)
    verify_interval: timedelta = timedelta(seconds=10)
    review_timeout: timedelta = timedelta(hours=24)
    shadow: bool = False


class InvalidTransition(Exception):
    def __init__(self, state: WorkflowState, signal_kind: str) -> None:
        super().__init__(f"signal {signal_kind!r} is not valid in state {state.value}")
        self.state = state
        self.signal_kind = signal_kind


Result = tuple[Incident, list[Command]]
_Handler = Callable[[Incident, Any, datetime, Policy], Result]


# ---------------------------------------------------------------- helpers


def _note(incident: Incident, now: datetime, detail: str, **changes: Any) -> Incident:
    """Apply `changes`, then append a timeline entry in the (possibly new) state."""
    state = changes.get("workflow_state", incident.workflow_state)
    entry = TimelineEntry(at=now, state=state, detail=detail)
    timeline = (*incident.timeline, entry)
    elided = incident.timeline_elided
    if len(timeline) > TIMELINE_HEAD + TIMELINE_TAIL:
        # Drop the oldest entry after the head: the kept ones keep their audit index.
        drop = len(timeline) - TIMELINE_HEAD - TIMELINE_TAIL
        timeline = timeline[:TIMELINE_HEAD] + timeline[TIMELINE_HEAD + drop :]
        elided += drop
    return incident.model_copy(
        update={**changes, "timeline": timeline, "timeline_elided": elided, "updated_at": now}
    )


def _notify(incident: Incident, state: WorkflowState, subject: str, message: str) -> Notify:
    return Notify(
        id=f"notify-{state.value.lower()}",
        subject=f"[aiops] {state.value}: {incident.resource_type} {incident.resource_id}: "
        f"{subject}"[:100],
        message=message,
    )


def _close(
    incident: Incident, now: datetime, state: WorkflowState, detail: str, *, notify: bool = True
) -> Result:
    closed = _note(incident, now, detail, workflow_state=state, next_check_at=None)
    if not notify:
        return closed, []
    return closed, [_notify(closed, state, detail, detail)]


def _await_review(
    incident: Incident, now: datetime, policy: Policy, detail: str, subject: str, message: str
) -> Result:
    """Wait for a person; the wait expires after the policy's review timeout."""
    waiting = _note(
        incident,
        now,
        detail,
        workflow_state=S.AWAITING_APPROVAL,
        next_check_at=now + policy.review_timeout,
    )
    return waiting, [_notify(waiting, S.AWAITING_APPROVAL, subject, message)]


def _start_step(incident: Incident, now: datetime, index: int, detail: str) -> Result:
    step = incident.plan[index]
    record = ActionRecord(step=index, action=step.action, status="STARTED", started_at=now)
    command = ExecuteStep(
        id=f"step-{index}",
        step=index,
        action=step.action,
        params=dict(step.params),
        idempotency_token=f"{incident.incident_id}-{index}",
    )
    updated = _note(
        incident,
        now,
        detail,
        workflow_state=S.EXECUTING,
        recovery_actions=(*incident.recovery_actions, record),
    )
    return updated, [command]


def _finish_record(incident: Incident, index: int, **changes: Any) -> tuple[ActionRecord, ...]:
    return tuple(
        r.model_copy(update=changes) if r.step == index and r.status == "STARTED" else r
        for r in incident.recovery_actions
    )


def _plan_text(incident: Incident) -> str:
    return ", ".join(step.action for step in incident.plan) or "none"


# ---------------------------------------------------------------- handlers


def _on_event_received(inc: Incident, sig: EventReceived, now: datetime, _: Policy) -> Result:
    ev = sig.event
    who = f" by {ev.principal}" if ev.principal else ""
    detail = f"{ev.detail_type}: {ev.action}{who}"
    return _note(inc, now, detail, workflow_state=S.ANALYZING), [Analyze()]


def _on_related(inc: Incident, sig: RelatedEvent, now: datetime, _: Policy) -> Result:
    ev = sig.event
    if ev.event_id == inc.event_id or ev.event_id in inc.related_event_ids:
        return inc, []
    related_ids = (*inc.related_event_ids, ev.event_id)[-RELATED_IDS_KEPT:]
    related = {"related_event_ids": related_ids, "related_events": inc.related_events + 1}
    explains = ev.details.get("explains")
    if explains:
        by = f"{ev.action} by {ev.principal or 'unknown'}"
        if inc.workflow_state is S.PLANNING and not inc.pending and not inc.recovery_actions:
            # Waiting for the author of a change reported without one, and it is a trusted
            # principal: an intended change (a deploy), nothing to undo.
            detail = f"explained by {by} ({explains}): an intended change, nothing to recover"
            closed = _close(inc, now, S.IGNORED, detail, notify=False)[0]
            return closed.model_copy(update=related), []
        detail = f"related event joined: {ev.detail_type}: {by} (intended: {explains})"
        if inc.workflow_state is S.PLANNING and not inc.recovery_actions:
            # A plan is being made right now (the wait for the author just ended): its outcome
            # closes the incident instead (_on_plan_ready).
            related["explained_by"] = f"{by} ({explains})"
        return _note(inc, now, detail, **related), []
    author = ev.details.get("authors")
    if author and inc.workflow_state is S.PLANNING and not inc.recovery_actions:
        # The CloudTrail record of the call behind a change reported without its author, and
        # not a trusted principal's: the wait for the author is over. Due now: the plan is
        # made again at once, every other wait decided again from what is stored.
        detail = f"related event joined: {ev.detail_type}: {ev.action} by {author}: the author"
        wake = {} if inc.pending else {"next_check_at": now}
        return _note(inc, now, detail, authored_by=str(author), **wake, **related), []
    kind = "resolved" if ev.details.get("resolves") else "related event joined"
    detail = f"{kind}: {ev.detail_type}: {ev.action}"
    return _note(inc, now, detail, **related), []


def _on_analyzed(inc: Incident, sig: Analyzed, now: datetime, policy: Policy) -> Result:
    a = sig.analysis
    d = sig.policy
    inc = inc.model_copy(
        update={
            "classification": a.classification,
            "confidence": a.confidence,
            "severity": a.severity,
            "reasons": a.reasons,
            "plan": a.plan,
            "approval_required": a.requires_approval,
            "policy": d,
            "tags": sig.tags or inc.tags,
            "tags_read_at": sig.tags_read_at or inc.tags_read_at,
        }
    )
    summary = f"{a.classification.value} ({a.confidence:.2f}, {a.analyzer}): " + "; ".join(
        a.reasons
    )
    if a.classification is Classification.NORMAL:
        return _close(inc, now, S.IGNORED, summary, notify=False)
    if d is not None:
        said = f"policy {d.autonomy.value}: {d.because}"
        summary = f"{summary}; {said}"
        if d.silence_id is not None:
            return _close(inc, now, S.SUPPRESSED, f"{summary}: silenced", notify=False)
        if d.autonomy is Autonomy.OFF:
            detail = f"{summary}: no action, no notification"
            return _close(inc, now, S.IGNORED, detail, notify=False)
    if a.classification is Classification.ANOMALY:
        return _close(inc, now, S.NOTIFIED, summary)
    if d is not None and d.autonomy is Autonomy.NOTIFY:
        return _close(inc, now, S.NOTIFIED, f"{summary}: notify only, no action")
    if a.confidence < policy.confidence_threshold:
        return _await_review(
            inc,
            now,
            policy,
            f"{summary}; confidence below {policy.confidence_threshold:.2f}: manual review",
            "manual review needed",
            f"{summary}. Proposed plan: {_plan_text(inc)}. "
            f"Approve or reject: aiops-agent incidents approve {inc.incident_id}",
        )
    if not a.plan:
        return _close(inc, now, S.NOTIFIED, f"{summary}; no automated recovery: notify only")
    if d is not None and d.autonomy is Autonomy.ASK:
        # Planned first (the catalog, the author's wait, prechecks), then a person decides.
        inc = inc.model_copy(update={"approval_required": True})
    planning = _note(inc, now, summary, workflow_state=S.PLANNING)
    return planning, [Plan(id="plan", steps=a.plan)]


def _on_analysis_failed(
    inc: Incident, sig: AnalysisFailed, now: datetime, policy: Policy
) -> Result:
    d = sig.policy
    inc = inc.model_copy(
        update={
            "policy": d,
            "tags": sig.tags or inc.tags,
            "tags_read_at": sig.tags_read_at or inc.tags_read_at,
        }
    )
    detail = f"analysis failed ({sig.error})"
    if d is not None:
        detail = f"{detail}; policy {d.autonomy.value}: {d.because}"
        if d.silence_id is not None:
            return _close(inc, now, S.SUPPRESSED, f"{detail}: silenced", notify=False)
        if d.autonomy is Autonomy.OFF:
            return _close(inc, now, S.IGNORED, f"{detail}: no notification", notify=False)
        if d.autonomy is Autonomy.NOTIFY:
            return _close(inc, now, S.NOTIFIED, f"{detail}: notify only")
    return _await_review(inc, now, policy, f"{detail}: manual review", "analysis failed", sig.error)


def _on_plan_ready(inc: Incident, sig: PlanReady, now: datetime, policy: Policy) -> Result:
    inc = inc.model_copy(update={"plan": sig.steps})
    plan_text = _plan_text(inc)
    if inc.explained_by and not inc.recovery_actions and inc.approved_by is None:
        detail = f"explained by {inc.explained_by}: an intended change, nothing to recover"
        return _close(inc, now, S.IGNORED, detail, notify=False)
    if not sig.steps:
        return _close(inc, now, S.NOTIFIED, "no catalog action applies: notify only")
    if policy.shadow:
        records = tuple(
            ActionRecord(
                step=i,
                action=s.action,
                status="DRY_RUN",
                started_at=now,
                finished_at=now,
                detail="shadow mode: not executed",
            )
            for i, s in enumerate(sig.steps)
        )
        inc = inc.model_copy(update={"recovery_actions": (*inc.recovery_actions, *records)})
        return _close(inc, now, S.NOTIFIED, f"shadow mode: would run {plan_text}")
    approved = inc.approved_by is not None
    needs_approval = inc.approval_required or sig.requires_approval
    note = f"{sig.note}; " if sig.note else ""
    if needs_approval and not approved:
        why = ""
        if inc.policy is not None and inc.policy.autonomy is Autonomy.ASK:
            why = f" (policy ask: {inc.policy.because})"
        return _await_review(
            inc,
            now,
            policy,
            f"{note}plan {plan_text} needs approval{why}",
            "approval needed",
            f"Plan: {plan_text}. aiops-agent incidents approve {inc.incident_id}",
        )
    return _start_step(inc, now, 0, f"{note}plan: {plan_text}; executing step 1/{len(sig.steps)}")


def _on_plan_deferred(inc: Incident, sig: PlanDeferred, now: datetime, _: Policy) -> Result:
    detail = f"deferred until {sig.until.isoformat(timespec='seconds')}: {sig.reason}"
    return _note(inc, now, detail, next_check_at=sig.until), []


def _on_escalated(inc: Incident, sig: Escalated, now: datetime, policy: Policy) -> Result:
    return _await_review(
        inc,
        now,
        policy,
        f"escalated: {sig.reason}",
        "escalated to manual review",
        f"{sig.reason}. Plan: {_plan_text(inc)}. "
        f"Approve or reject: aiops-agent incidents approve {inc.incident_id}",
    )


def _on_plan_tick(inc: Incident, _sig: Tick, now: datetime, _: Policy) -> Result:
    planning = inc.model_copy(update={"next_check_at": None, "updated_at": now})
    return planning, [Plan(id="plan", steps=inc.plan)]


def _on_review_expired(inc: Incident, _sig: Tick, now: datetime, policy: Policy) -> Result:
    hours = policy.review_timeout.total_seconds() / 3600
    return _close(inc, now, S.REJECTED, f"review expired: no answer within {hours:g} h")


def _on_suppressed(inc: Incident, sig: Suppressed, now: datetime, _: Policy) -> Result:
    return _close(inc, now, S.SUPPRESSED, f"suppressed: {sig.reason}", notify=False)


def _on_approved(inc: Incident, sig: Approved, now: datetime, _: Policy) -> Result:
    why = f": {sig.reason}" if sig.reason else ""
    if not inc.plan:
        return _close(inc, now, S.NOTIFIED, f"approved by {sig.by}{why}; nothing to run")
    planning = _note(
        inc,
        now,
        f"approved by {sig.by}{why}",
        workflow_state=S.PLANNING,
        approved_by=sig.by,
        next_check_at=None,
    )
    return planning, [Plan(id="plan", steps=inc.plan)]


def _on_rejected(inc: Incident, sig: Rejected, now: datetime, _: Policy) -> Result:
    why = f": {sig.reason}" if sig.reason else ""
    return _close(inc, now, S.REJECTED, f"rejected by {sig.by}{why}", notify=False)


def _on_step_succeeded(inc: Incident, sig: StepSucceeded, now: datetime, policy: Policy) -> Result:
    records = _finish_record(
        inc, sig.step, status="SUCCEEDED", finished_at=now, detail=sig.detail, result=sig.result
    )
    inc = inc.model_copy(update={"recovery_actions": records})
    action = inc.plan[sig.step].action
    nxt = sig.step + 1
    if nxt < len(inc.plan):
        done = _note(inc, now, f"{action} succeeded: {sig.detail}")
        return _start_step(done, now, nxt, f"executing step {nxt + 1}/{len(inc.plan)}")
    verification = Verification(status="PENDING", started_at=now)
    verifying = _note(
        inc,
        now,
        f"{action} succeeded: {sig.detail}; verifying",
        workflow_state=S.VERIFYING,
        verification=verification,
        verify_deadline=now + policy.verify_timeout,
    )
    return verifying, [Verify(id="verify-1", attempt=1)]


def _on_step_failed(inc: Incident, sig: StepFailed, now: datetime, _: Policy) -> Result:
    records = _finish_record(inc, sig.step, status="FAILED", finished_at=now, detail=sig.error)
    inc = inc.model_copy(update={"recovery_actions": records})
    action = inc.plan[sig.step].action
    any_done = any(r.status == "SUCCEEDED" for r in records)
    state = S.PARTIAL if any_done else S.FAILED
    return _close(inc, now, state, f"{action} failed: {sig.error}")


def _on_verify_result(inc: Incident, sig: VerifyResult, now: datetime, policy: Policy) -> Result:
    prior = inc.verification or Verification(status="PENDING", started_at=now)
    attempts = prior.attempts + 1
    if sig.status == "PENDING":
        deadline = inc.verify_deadline or now
        if now >= deadline:
            verification = prior.model_copy(
                update={
                    "status": "FAILED",
                    "checks": sig.checks,
                    "attempts": attempts,
                    "finished_at": now,
                    "detail": f"timed out: {sig.detail}",
                }
            )
            inc = inc.model_copy(update={"verification": verification})
            return _close(inc, now, S.FAILED, f"verification timed out: {sig.detail}")
        verification = prior.model_copy(
            update={"checks": sig.checks, "attempts": attempts, "detail": sig.detail}
        )
        return inc.model_copy(
            update={
                "verification": verification,
                "next_check_at": now + policy.verify_interval,
                "updated_at": now,
            }
        ), []
    verification = prior.model_copy(
        update={
            "status": sig.status,
            "checks": sig.checks,
            "attempts": attempts,
            "finished_at": now,
            "detail": sig.detail,
        }
    )
    inc = inc.model_copy(update={"verification": verification, "verify_deadline": None})
    outcome = {"PASSED": S.COMPLETED, "PARTIAL": S.PARTIAL, "FAILED": S.FAILED}[sig.status]
    return _close(inc, now, outcome, f"verification {sig.status.lower()}: {sig.detail}")


def _on_tick(inc: Incident, _sig: Tick, now: datetime, _: Policy) -> Result:
    attempt = (inc.verification.attempts if inc.verification else 0) + 1
    return inc.model_copy(update={"next_check_at": None, "updated_at": now}), [
        Verify(id=f"verify-{attempt}", attempt=attempt)
    ]


def _on_notified(inc: Incident, sig: Notified, now: datetime, _: Policy) -> Result:
    detail = "notification sent" if sig.ok else f"notification failed: {sig.detail}"
    return _note(inc, now, detail), []


_TABLE: dict[tuple[WorkflowState, str], _Handler] = {
    (S.RECEIVED, "event_received"): _on_event_received,
    (S.ANALYZING, "analyzed"): _on_analyzed,
    (S.ANALYZING, "analysis_failed"): _on_analysis_failed,
    (S.PLANNING, "plan_ready"): _on_plan_ready,
    (S.PLANNING, "suppressed"): _on_suppressed,
    (S.PLANNING, "plan_deferred"): _on_plan_deferred,
    (S.PLANNING, "escalated"): _on_escalated,
    (S.PLANNING, "tick"): _on_plan_tick,
    (S.AWAITING_APPROVAL, "tick"): _on_review_expired,
    (S.AWAITING_APPROVAL, "approved"): _on_approved,
    (S.AWAITING_APPROVAL, "rejected"): _on_rejected,
    (S.EXECUTING, "step_succeeded"): _on_step_succeeded,
    (S.EXECUTING, "step_failed"): _on_step_failed,
    (S.VERIFYING, "verify_result"): _on_verify_result,
    (S.VERIFYING, "tick"): _on_tick,
    # Further events about the resource join the timeline, even of a closed incident (the
    # engine decides which incident an event belongs to); they never move the state, except a
    # trusted change that explains an incident still waiting for its author (-> IGNORED).
    **{(s, "related_event"): _on_related for s in WorkflowState},
    **{(s, "notified"): _on_notified for s in WorkflowState},
}


def valid_pairs() -> frozenset[tuple[WorkflowState, str]]:
    return frozenset(_TABLE)


def decide(
    incident: Incident, signal: Signal, now: datetime, policy: Policy | None = None
) -> Result:
    """Apply one signal to one incident. Pure: same inputs, same outputs."""
    handler = _TABLE.get((incident.workflow_state, signal.kind))
    command_id = getattr(signal, "command_id", None)
    pending_ids = {p.get("id") for p in incident.pending}
    if handler is None or (command_id is not None and command_id not in pending_ids):
        # An outcome for a command that is no longer pending is stale (it was already applied).
        raise InvalidTransition(incident.workflow_state, signal.kind)
    remaining = tuple(p for p in incident.pending if p.get("id") != command_id)
    new, commands = handler(incident, signal, now, policy or Policy())
    pending = remaining + tuple(command_to_dict(c) for c in commands)
    return new.model_copy(update={"pending": pending}), commands
