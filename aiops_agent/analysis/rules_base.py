"""What every rule module shares: verdict constructors, plan builders, the rule registries.

A rule is a function of one `NormalizedEvent` returning an `Analysis`, or None to let the
analyzer's fallback decide. Rules for API calls are registered per (resource type, call name),
rules for other events per detail-type. Plans use only the action names and parameters of the
action catalog's contract, and every step carries the event's region.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiops_agent.domain.models import Analysis, Classification, NormalizedEvent, PlanStep, Severity
from aiops_agent.intake.envelope import clip

Rule = Callable[[NormalizedEvent], Analysis | None]

START_INSTANCE = "ec2.start_instances"
STOP_START_INSTANCE = "ec2.stop_start_instances"
IAC_RESTORE = "iac.restore"
RESTORE_PARAMETER = "ssm.restore_parameter"
REVOKE_INGRESS = "ec2.revoke_ingress"
FORCE_NEW_DEPLOYMENT = "ecs.force_new_deployment"

DESTRUCTIVE_VERBS = ("Delete", "Terminate", "Remove", "Stop", "Disable", "Deregister")
NOTIFY_CONFIDENCE = 0.85
"""Notify-only verdicts sit above the default confidence bar: they notify, not ask for review."""

CALL_RULES: dict[tuple[str, str], Rule] = {}
EVENT_RULES: dict[str, Rule] = {}


def call_rule(resource_type: str, *actions: str) -> Callable[[Rule], Rule]:
    """Register the rule of API calls `actions` on `resource_type`."""

    def decorate(fn: Rule) -> Rule:
        for action in actions:
            key = (resource_type, action)
            if key in CALL_RULES:
                raise ValueError(f"call rule {key!r} is already registered")
            CALL_RULES[key] = fn
        return fn

    return decorate


def event_rule(*detail_types: str) -> Callable[[Rule], Rule]:
    """Register the rule of events of `detail_types`."""

    def decorate(fn: Rule) -> Rule:
        for detail_type in detail_types:
            if detail_type in EVENT_RULES:
                raise ValueError(f"event rule {detail_type!r} is already registered")
            EVENT_RULES[detail_type] = fn
        return fn

    return decorate


# ---------------------------------------------------------------- verdicts


def verdict(
    classification: Classification,
    confidence: float,
    *reasons: str,
    severity: Severity = Severity.MEDIUM,
    plan: Iterable[PlanStep] = (),
    requires_approval: bool = False,
) -> Analysis:
    return Analysis(
        classification=classification,
        confidence=confidence,
        severity=severity,
        reasons=tuple(reasons),
        plan=tuple(plan),
        requires_approval=requires_approval,
    )


def normal(confidence: float, *reasons: str) -> Analysis:
    return verdict(Classification.NORMAL, confidence, *reasons, severity=Severity.LOW)


def notify(
    classification: Classification,
    *reasons: str,
    confidence: float = NOTIFY_CONFIDENCE,
    severity: Severity = Severity.MEDIUM,
) -> Analysis:
    """A verdict with an empty plan: the incident is recorded and notified, nothing runs."""
    return verdict(classification, confidence, *reasons, severity=severity)


def who(event: NormalizedEvent) -> str:
    return clip(event.principal or "an unknown principal", 160)


def what(event: NormalizedEvent) -> str:
    return f"{clip(event.resource_type, 32)} {clip(event.resource_id, 160)}"


def is_root(event: NormalizedEvent) -> bool:
    return event.principal_type == "Root" or (event.principal or "").endswith(":root")


def destructive(
    event: NormalizedEvent,
    description: str,
    then: str,
    plan: Iterable[PlanStep] = (),
    *,
    classification: Classification = Classification.FAILURE,
    confidence: float = 0.9,
    requires_approval: bool = False,
) -> Analysis:
    """A change someone made: HIGH severity, CRITICAL when done with the root user."""
    reasons = [description]
    severity = Severity.HIGH
    if is_root(event):
        severity = Severity.CRITICAL
        reasons.append("done with the account's root user: critical")
    reasons.append(then)
    return verdict(
        classification,
        confidence,
        *reasons,
        severity=severity,
        plan=plan,
        requires_approval=requires_approval,
    )


def tampering_notice(event: NormalizedEvent, change: str) -> Analysis:
    """A configuration/policy change outside IaC that no catalog action reverts: notify."""
    return destructive(
        event,
        f"{clip(event.action, 80)} by {who(event)} {change} on {what(event)}",
        "no automated revert for this change: notify only",
        classification=Classification.TAMPERING,
        confidence=NOTIFY_CONFIDENCE,
    )


# ---------------------------------------------------------------- plans


def step(action: str, event: NormalizedEvent, description: str, **params: Any) -> PlanStep:
    """One plan step; `None` params are left out; the event's region is always in."""
    clean = {key: value for key, value in params.items() if value is not None}
    clean["region"] = event.region
    return PlanStep(action=action, params=clean, description=description)


def start_plan(event: NormalizedEvent) -> tuple[PlanStep, ...]:
    iid = event.resource_id
    return (step(START_INSTANCE, event, f"start instance {iid} again", instance_id=iid),)


def stop_start_plan(event: NormalizedEvent) -> tuple[PlanStep, ...]:
    iid = event.resource_id
    return (
        step(
            STOP_START_INSTANCE,
            event,
            f"stop and start instance {iid} to move it off the retiring hardware",
            instance_id=iid,
        ),
    )


def restore_plan(event: NormalizedEvent) -> tuple[PlanStep, ...]:
    rtype, rid = event.resource_type, event.resource_id
    return (
        step(
            IAC_RESTORE,
            event,
            f"restore {rtype} {rid} from infrastructure as code",
            resource_type=rtype,
            resource_id=rid,
        ),
    )


def restore_parameter_plan(event: NormalizedEvent, bad_version: int | None) -> tuple[PlanStep, ...]:
    name = event.resource_id
    before = f"version {bad_version}" if bad_version else "the current version"
    return (
        step(
            RESTORE_PARAMETER,
            event,
            f"put back the value parameter {name} had before {before}",
            name=name,
            bad_version=bad_version,
        ),
    )


def revoke_plan(event: NormalizedEvent, rules: Iterable[Mapping[str, Any]]) -> tuple[PlanStep, ...]:
    steps = []
    for rule in rules:
        cidr, protocol = str(rule.get("cidr", "")), str(rule.get("ip_protocol", "-1"))
        ports = ""
        if "from_port" in rule:
            ports = f" ports {rule.get('from_port')}-{rule.get('to_port', rule.get('from_port'))}"
        steps.append(
            step(
                REVOKE_INGRESS,
                event,
                f"revoke ingress {protocol}{ports} from {cidr} on {event.resource_id}",
                group_id=event.resource_id,
                cidr=cidr,
                ip_protocol=protocol,
                from_port=rule.get("from_port"),
                to_port=rule.get("to_port"),
            )
        )
    return tuple(steps)


def force_deployment_plan(
    event: NormalizedEvent, cluster: str, service: str
) -> tuple[PlanStep, ...]:
    return (
        step(
            FORCE_NEW_DEPLOYMENT,
            event,
            f"force a new deployment of ECS service {service} in cluster {cluster}",
            cluster=cluster,
            service=service,
        ),
    )
