"""Rules for events that report a state rather than a call: CloudWatch alarms, AWS Health, ECS.

An alarm in ALARM is an ANOMALY to notify (the rules cannot know what fixes a metric); back to
OK it is NORMAL and its event carries `details["resolves"]`, for the engine to close what the
alarm opened. A Health retirement of an instance plans a stop/start, with approval. An ECS
deployment that failed or a service whose tasks cannot start plans a new deployment, with
approval; a task that exited 0 simply finished.
"""

from __future__ import annotations

from typing import Any

from aiops_agent.analysis.rules_base import (
    event_rule,
    force_deployment_plan,
    normal,
    notify,
    stop_start_plan,
    verdict,
    what,
)
from aiops_agent.domain.models import Analysis, Classification, NormalizedEvent, Severity
from aiops_agent.intake.cloudwatch import ALARM_CONFIGURATION_CHANGE, ALARM_STATE_CHANGE
from aiops_agent.intake.ecs import (
    CONTAINER_INSTANCE_STATE_CHANGE,
    DEPLOYMENT_STATE_CHANGE,
    SERVICE_ACTION,
    TASK_STATE_CHANGE,
)
from aiops_agent.intake.envelope import clip
from aiops_agent.intake.health import HEALTH_EVENT

# ---------------------------------------------------------------- CloudWatch alarms


def _watching(event: NormalizedEvent) -> str:
    watched = event.details.get("monitored")
    if isinstance(watched, dict) and watched.get("resource_id"):
        return (
            f"; it watches {clip(watched.get('resource_type'), 32)} "
            f"{clip(watched.get('resource_id'), 128)}"
        )
    return ""


@event_rule(ALARM_STATE_CHANGE)
def alarm_state(event: NormalizedEvent) -> Analysis:
    alarm = clip(event.resource_id, 128)
    state = str(event.details.get("state") or event.action.removeprefix("state:"))
    previous = clip(event.details.get("previous_state") or "?", 32)
    if state == "OK":
        return normal(0.95, f"alarm {alarm} is back to OK (from {previous}): recovered")
    if state == "ALARM":
        suppressed = event.details.get("actions_suppressed_by")
        if suppressed:
            by = clip(event.details.get("actions_suppressor") or "its suppressor", 128)
            return normal(
                0.85,
                f"alarm {alarm} is in ALARM but its actions are suppressed "
                f"({clip(suppressed, 32)}, by {by}): respected, no action",
            )
        reason = clip(event.details.get("reason") or "", 160)
        return notify(
            Classification.ANOMALY,
            f"alarm {alarm} went {previous} -> ALARM{_watching(event)}",
            *((reason,) if reason else ()),
            "no rule knows what fixes this metric: notify",
            severity=Severity.HIGH,
        )
    return normal(0.7, f"alarm {alarm} is {clip(state, 32)}: not enough data to judge")


@event_rule(ALARM_CONFIGURATION_CHANGE)
def alarm_configuration(event: NormalizedEvent) -> Analysis:
    alarm = clip(event.resource_id, 128)
    operation = str(event.details.get("operation") or "unknown")
    if operation == "delete":
        return notify(
            Classification.TAMPERING,
            f"alarm {alarm} was deleted{_watching(event)}: monitoring removed",
            "no automated revert: notify only",
        )
    if event.details.get("actions_enabled") is False:
        return notify(
            Classification.TAMPERING,
            f"alarm {alarm} was {operation}d with its actions disabled",
            "no automated revert: notify only",
        )
    return normal(0.8, f"alarm {alarm} configuration {clip(operation, 32)}: monitoring in place")


# ---------------------------------------------------------------- AWS Health

_RETIREMENT = ("INSTANCE_RETIREMENT_SCHEDULED", "INSTANCE_STOP_SCHEDULED")


@event_rule(HEALTH_EVENT)
def health(event: NormalizedEvent) -> Analysis:
    code = str(event.details.get("event_type_code") or event.action)
    category = str(event.details.get("category") or "")
    status = str(event.details.get("status") or "")
    short = clip(code, 96)
    named = event.resource_type != "health"
    target = f" for {what(event)}" if named else ""
    if "TEST" in code.upper() or "TEST_ALERT" in event.resource_id:
        return normal(0.9, f"AWS Health test event {short}: nothing happened")
    if status == "closed":
        return normal(0.9, f"AWS Health event {short}{target} is closed: resolved")
    if (
        event.resource_type == "ec2"
        and event.resource_id.startswith("i-")
        and any(marker in code for marker in _RETIREMENT)
    ):
        return verdict(
            Classification.FAILURE,
            0.9,
            f"AWS Health: {short}: instance {clip(event.resource_id, 64)} runs on degraded "
            "hardware and will be stopped or retired",
            "plan: stop and start it now to move it to healthy hardware (needs approval)",
            severity=Severity.HIGH,
            plan=stop_start_plan(event),
            requires_approval=True,
        )
    if category == "issue":
        if named:
            return notify(
                Classification.FAILURE,
                f"AWS Health issue {short}{target}",
                "no automated recovery for this issue: notify only",
                severity=Severity.HIGH,
            )
        return notify(Classification.ANOMALY, f"AWS Health service issue {short}: notify")
    if category == "scheduledchange" or "SCHEDULED" in code or "MAINTENANCE" in code:
        return notify(
            Classification.ANOMALY,
            f"AWS Health scheduled change {short}{target}: plan for it",
            "no automated action: notify",
        )
    return normal(0.85, f"AWS Health {category or 'notification'} {short}{target}: informational")


# ---------------------------------------------------------------- ECS

_SERVICE_REDEPLOY = ("SERVICE_DEPLOYMENT_FAILED", "SERVICE_TASK_START_IMPAIRED")
_STOPPED = ("STOPPING", "DEPROVISIONING", "STOPPED")
_BENIGN_STOP_CODES = ("UserInitiated", "ServiceSchedulerInitiated")
_INTERRUPTIONS = ("SpotInterruption", "TerminationNotice")


@event_rule(SERVICE_ACTION, DEPLOYMENT_STATE_CHANGE)
def ecs_service(event: NormalizedEvent) -> Analysis:
    name = str(event.details.get("event_name") or event.action)
    level = str(event.details.get("event_type") or "").upper()
    reason = clip(event.details.get("reason") or "", 160)
    service = f"ECS service {clip(event.resource_id, 160)}"
    said = f"{service}: {clip(name, 64)}" + (f" ({reason})" if reason else "")
    if name in _SERVICE_REDEPLOY:
        cluster = str(event.details.get("cluster") or "default")
        svc = str(event.details.get("service") or event.resource_id.rpartition("/")[2])
        return verdict(
            Classification.FAILURE,
            0.85,
            said,
            "plan: force a new deployment of the service (needs approval)",
            severity=Severity.HIGH,
            plan=force_deployment_plan(event, cluster, svc),
            requires_approval=True,
        )
    if level == "ERROR":
        return notify(
            Classification.FAILURE,
            said,
            "a new deployment would not fix this (placement or configuration): notify only",
            severity=Severity.HIGH,
        )
    if level == "WARN":
        return notify(Classification.ANOMALY, said, "notify")
    return normal(0.9, f"{said}: informational")


def _exit_codes(event: NormalizedEvent) -> list[int]:
    raw = event.details.get("containers")
    containers: list[Any] = raw if isinstance(raw, list) else []
    return [
        c["exit_code"]
        for c in containers
        if isinstance(c, dict) and isinstance(c.get("exit_code"), int)
    ]


def _out_of_memory(event: NormalizedEvent) -> str | None:
    """The name of a container ECS killed for its memory (`OutOfMemoryError: ...`), if any."""
    raw = event.details.get("containers")
    for container in raw if isinstance(raw, list) else []:
        if isinstance(container, dict) and "OutOfMemory" in str(container.get("reason") or ""):
            return clip(container.get("name") or "?", 64)
    if "OutOfMemory" in str(event.details.get("stopped_reason") or ""):
        return "?"
    return None


@event_rule(TASK_STATE_CHANGE)
def ecs_task(event: NormalizedEvent) -> Analysis:
    task = f"ECS task {clip(event.resource_id, 160)}"
    status = str(event.details.get("last_status") or "UNKNOWN").upper()
    stopping = status in _STOPPED or event.details.get("desired_status") == "STOPPED"
    if not stopping:
        return normal(0.9, f"{task} is {clip(status, 32)}")
    stop_code = str(event.details.get("stop_code") or "")
    reason = clip(event.details.get("stopped_reason") or stop_code or "no reason given", 160)
    codes = _exit_codes(event)
    failed = [code for code in codes if code != 0]
    oom = _out_of_memory(event)
    if oom is not None:
        return notify(
            Classification.FAILURE,
            f"{task} stopped: container {oom} was killed for exceeding its memory limit",
            "raise the task's memory or fix the leak; the scheduler replaces the task: notify only",
            severity=Severity.HIGH,
        )
    if failed or stop_code == "TaskFailedToStart":
        return notify(
            Classification.FAILURE,
            f"{task} stopped: {reason}"
            + (f"; exit code(s) {', '.join(map(str, failed[:5]))}" if failed else ""),
            "a service's scheduler replaces its tasks; notify only",
        )
    if stop_code in _INTERRUPTIONS:
        return notify(Classification.ANOMALY, f"{task} was interrupted ({stop_code}): notify")
    if codes or stop_code in _BENIGN_STOP_CODES:
        why = "every container exited 0" if codes else f"stopped by {stop_code}"
        return normal(0.9, f"{task} finished ({why}): {reason}")
    return notify(
        Classification.ANOMALY,
        f"{task} stopped without exit codes: {reason}",
        confidence=0.7,
    )


@event_rule(CONTAINER_INSTANCE_STATE_CHANGE)
def ecs_container_instance(event: NormalizedEvent) -> Analysis:
    instance = f"ECS container instance {clip(event.resource_id, 160)}"
    status = clip(event.details.get("status") or "UNKNOWN", 32)
    if event.details.get("agent_connected") is False and status == "ACTIVE":
        return notify(Classification.ANOMALY, f"{instance} is ACTIVE but its agent is disconnected")
    return normal(0.9, f"{instance} is {status}")
