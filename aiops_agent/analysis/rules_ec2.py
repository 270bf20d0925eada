"""Rules for EC2: instance state changes, instance lifecycle calls, security group ingress, and
EC2 Auto Scaling's own events.

stopped -> start it; terminated -> restore it from IaC; a security group opened to the world ->
revoke exactly the world-open rules of that call; an Auto Scaling group that cannot launch ->
notify (the group retries by itself; what is wrong is its configuration).
"""

from __future__ import annotations

from typing import Any

from aiops_agent.analysis.rules_base import (
    call_rule,
    destructive,
    event_rule,
    normal,
    notify,
    restore_plan,
    revoke_plan,
    start_plan,
    verdict,
    who,
)
from aiops_agent.domain.models import Analysis, Classification, NormalizedEvent, Severity
from aiops_agent.intake.autoscaling import DETAIL_TYPES as AUTOSCALING_DETAIL_TYPES
from aiops_agent.intake.autoscaling import (
    LAUNCH_UNSUCCESSFUL,
    TERMINATE_SUCCESSFUL,
    TERMINATE_UNSUCCESSFUL,
)
from aiops_agent.intake.ec2 import EC2_STATE_CHANGE
from aiops_agent.intake.envelope import clip

_TRANSITIONAL_STATES = frozenset({"pending", "stopping", "shutting-down"})


@event_rule(EC2_STATE_CHANGE)
def instance_state(event: NormalizedEvent) -> Analysis:
    iid = clip(event.resource_id, 64)
    state = str(event.details.get("state") or event.action.removeprefix("state:"))
    if state == "stopped":
        return verdict(
            Classification.FAILURE,
            0.95,
            f"instance {iid} is stopped",
            "plan: start it again",
            severity=Severity.HIGH,
            plan=start_plan(event),
        )
    if state == "terminated":
        return verdict(
            Classification.FAILURE,
            0.95,
            f"instance {iid} is terminated",
            "plan: restore it from IaC",
            severity=Severity.HIGH,
            plan=restore_plan(event),
        )
    if state in _TRANSITIONAL_STATES:
        return normal(0.9, f"instance {iid} is {state}: transitional, the final state decides")
    if state == "running":
        return normal(0.95, f"instance {iid} is running: healthy")
    return normal(0.5, f"instance {iid} reported unknown state {clip(state, 32)}")


@call_rule("ec2", "StopInstances")
def stop_instances(event: NormalizedEvent) -> Analysis:
    return destructive(
        event,
        f"StopInstances by {who(event)} stopped instance {clip(event.resource_id, 64)}",
        "plan: start it again",
        start_plan(event),
    )


@call_rule("ec2", "TerminateInstances")
def terminate_instances(event: NormalizedEvent) -> Analysis:
    return destructive(
        event,
        f"TerminateInstances by {who(event)} terminated instance {clip(event.resource_id, 64)}",
        "plan: restore it from IaC",
        restore_plan(event),
    )


@call_rule("ec2", "StartInstances", "RunInstances")
def start_or_run(event: NormalizedEvent) -> Analysis:
    return normal(
        0.9,
        f"{event.action} on instance {clip(event.resource_id, 64)}: "
        "a start or launch, nothing to recover",
    )


def _rule_text(rule: dict[str, Any]) -> str:
    ports = ""
    if "from_port" in rule:
        ports = f":{rule['from_port']}-{rule.get('to_port', rule['from_port'])}"
    return f"{clip(rule.get('ip_protocol', '-1'), 8)}{ports} from {clip(rule.get('cidr'), 64)}"


@call_rule("ec2", "AuthorizeSecurityGroupIngress")
def authorize_ingress(event: NormalizedEvent) -> Analysis:
    raw = event.details.get("world_open_rules")
    rules = [r for r in raw if isinstance(r, dict)] if isinstance(raw, list) else []
    group = clip(event.resource_id, 64)
    if not rules:
        return normal(0.8, f"ingress added to {group} from specific ranges only: not world-open")
    opened = ", ".join(_rule_text(r) for r in rules[:5])
    return destructive(
        event,
        f"AuthorizeSecurityGroupIngress by {who(event)} opened {group} to the world ({opened})",
        f"plan: revoke the {len(rules)} world-open rule(s) of this call, and only those",
        revoke_plan(event, rules),
        classification=Classification.TAMPERING,
    )


@call_rule("ec2", "RevokeSecurityGroupIngress")
def revoke_ingress(event: NormalizedEvent) -> Analysis:
    return normal(0.9, f"ingress revoked on {clip(event.resource_id, 64)}: access reduced")


@event_rule(*AUTOSCALING_DETAIL_TYPES)
def autoscaling_activity(event: NormalizedEvent) -> Analysis:
    group = clip(event.resource_id, 128)
    instance = event.details.get("instance_id")
    message = clip(
        event.details.get("status_message") or event.details.get("description") or "", 200
    )
    if event.detail_type in (LAUNCH_UNSUCCESSFUL, TERMINATE_UNSUCCESSFUL):
        verb = "launch" if event.detail_type == LAUNCH_UNSUCCESSFUL else "terminate"
        return notify(
            Classification.FAILURE,
            f"Auto Scaling group {group} failed to {verb} an instance: "
            f"{message or 'no reason given'}",
            "the group retries by itself; its configuration needs a fix: notify only",
            severity=Severity.HIGH,
        )
    if event.detail_type == TERMINATE_SUCCESSFUL:
        return normal(
            0.9,
            f"Auto Scaling group {group} terminated {clip(instance or 'an instance', 64)}: "
            "expected scale-in, not recovered",
        )
    return normal(
        0.9, f"Auto Scaling group {group}: {clip(event.detail_type, 80)}: capacity management"
    )
