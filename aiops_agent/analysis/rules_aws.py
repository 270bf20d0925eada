"""Rules for AWS's own notices: Spot interruptions, EBS, KMS keys, CloudTrail Insights, Config.

None of these ever carries a plan. Spot capacity is AWS's to take back: the warning is notified
and nothing restarts the instance (the planner also refuses to recover its stop or termination).
A KMS key deleted, disabled or scheduled for deletion is the same loss, judged alike whether AWS
reports it or the call does: the data it protects becomes unreadable, and no catalog action
brings a key back.
"""

from __future__ import annotations

from aiops_agent.analysis.rules_base import (
    call_rule,
    destructive,
    event_rule,
    normal,
    notify,
    what,
    who,
)
from aiops_agent.domain.models import Analysis, Classification, NormalizedEvent, Severity
from aiops_agent.intake.config_rules import COMPLIANCE_CHANGE
from aiops_agent.intake.ebs import DETAIL_TYPES as EBS_DETAIL_TYPES
from aiops_agent.intake.envelope import clip
from aiops_agent.intake.insights import INSIGHT_DETAIL_TYPE
from aiops_agent.intake.kms import CMK_DELETION, CMK_ROTATION, KEY_LOSS_CALLS, MATERIAL_EXPIRATION
from aiops_agent.intake.spot import REBALANCE_RECOMMENDATION, SPOT_INTERRUPTION

# ---------------------------------------------------------------- Spot


@event_rule(SPOT_INTERRUPTION)
def spot_interruption(event: NormalizedEvent) -> Analysis:
    verb = clip(event.details.get("instance_action") or "interrupt", 16)
    return notify(
        Classification.ANOMALY,
        f"AWS is reclaiming Spot instance {clip(event.resource_id, 64)}: it will {verb} it "
        "in about two minutes",
        "Spot capacity is AWS's to take back: notify only, never restarted",
        severity=Severity.HIGH,
    )


@event_rule(REBALANCE_RECOMMENDATION)
def rebalance(event: NormalizedEvent) -> Analysis:
    return notify(
        Classification.ANOMALY,
        f"Spot instance {clip(event.resource_id, 64)} is at elevated risk of interruption "
        "(rebalance recommendation)",
        "move its work to other capacity: notify only",
    )


# ---------------------------------------------------------------- EBS


@event_rule(*EBS_DETAIL_TYPES)
def ebs(event: NormalizedEvent) -> Analysis:
    name = clip(event.details.get("event") or event.action, 64)
    result = clip(event.details.get("result") or "", 32)
    cause = clip(event.details.get("cause") or "", 200)
    if result == "failed":
        key_gone = "pending deletion" in cause or "is disabled" in cause
        return notify(
            Classification.FAILURE,
            f"EBS {name} failed for {what(event)}" + (f": {cause}" if cause else ""),
            "its KMS key is unusable: cancel the key's deletion or enable it"
            if key_gone
            else "no automated recovery: notify only",
            severity=Severity.HIGH if key_gone or "attach" in name.lower() else Severity.MEDIUM,
        )
    return normal(0.85, f"EBS {name} on {what(event)}: {result or 'done'}")


# ---------------------------------------------------------------- KMS

_KEY_LOSS = "the data this key protects cannot be decrypted"


@event_rule(CMK_DELETION)
def key_deleted(event: NormalizedEvent) -> Analysis:
    return notify(
        Classification.FAILURE,
        f"KMS key {clip(event.resource_id, 128)} was deleted at the end of its waiting period",
        f"{_KEY_LOSS}, and a deleted key cannot be restored: notify only",
        confidence=0.9,
        severity=Severity.HIGH,
    )


@event_rule(MATERIAL_EXPIRATION)
def key_material_expired(event: NormalizedEvent) -> Analysis:
    return notify(
        Classification.FAILURE,
        f"the imported key material of KMS key {clip(event.resource_id, 128)} expired",
        f"{_KEY_LOSS} until the material is imported again: notify only",
        severity=Severity.HIGH,
    )


@event_rule(CMK_ROTATION)
def key_rotated(event: NormalizedEvent) -> Analysis:
    return normal(0.9, f"KMS key {clip(event.resource_id, 128)} rotated its key material")


@call_rule("kms", *KEY_LOSS_CALLS)
def key_loss_call(event: NormalizedEvent) -> Analysis:
    window = event.details.get("pendingWindowInDays")
    undo = {
        "ScheduleKeyDeletion": "CancelKeyDeletion"
        + (f" within {clip(window, 8)} days" if window else " during the waiting period"),
        "DisableKey": "EnableKey",
    }.get(event.action, "no undo")
    return destructive(
        event,
        f"{event.action} by {who(event)} on {what(event)}: {_KEY_LOSS}",
        f"undo: {undo}; no automated recovery: notify only",
        confidence=0.85,
    )


# ---------------------------------------------------------------- CloudTrail Insights


@event_rule(INSIGHT_DETAIL_TYPE)
def insight(event: NormalizedEvent) -> Analysis:
    call = f"{clip(event.resource_type, 32)}:{clip(event.resource_id, 96)}"
    kind = clip(event.details.get("insight_type") or "Insight", 48)
    if event.details.get("state") == "end":
        return normal(0.85, f"CloudTrail {kind} on {call} ended: back to its baseline")
    baseline, seen = event.details.get("baseline_average"), event.details.get("insight_average")
    rate = ""
    if isinstance(baseline, float) and isinstance(seen, float):
        rate = f": {seen:.4g} per minute against a baseline of {baseline:.4g}"
    error = event.details.get("error_code")
    return notify(
        Classification.ANOMALY,
        f"CloudTrail {kind} on {call}{rate}" + (f" (errors: {clip(error, 64)})" if error else ""),
        "an unusual API rate: look at who calls it; notify",
    )


# ---------------------------------------------------------------- Config


@event_rule(COMPLIANCE_CHANGE)
def compliance(event: NormalizedEvent) -> Analysis:
    rule = clip(event.details.get("rule") or "a Config rule", 128)
    now = clip(event.details.get("compliance") or "UNKNOWN", 32)
    if now == "NON_COMPLIANT":
        return notify(
            Classification.ANOMALY,
            f"{what(event)} is NON_COMPLIANT with {rule}"
            f" (was {clip(event.details.get('previous_compliance') or 'unknown', 32)})",
            "no automated remediation: notify",
        )
    return normal(0.9, f"{what(event)} is {now} with {rule}")
