"""ECS events: task state, service actions, deployment state, container instance state.

Ids follow the new-format ARNs, which users see in the console: a service is `cluster/service`,
a task `cluster/task-id`, a container instance `cluster/container-instance-id`. Old-format ARNs
(`task/<id>`, `service/<name>`) take the cluster from `detail.clusterArn`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.envelope import Envelope, InvalidEvent, text_field
from aiops_agent.intake.registry import normalizer

ECS_SOURCE = "aws.ecs"
TASK_STATE_CHANGE = "ECS Task State Change"
SERVICE_ACTION = "ECS Service Action"
DEPLOYMENT_STATE_CHANGE = "ECS Deployment State Change"
CONTAINER_INSTANCE_STATE_CHANGE = "ECS Container Instance State Change"
MAX_CONTAINERS = 10


def _arn_path(arn: str, kind: str) -> list[str]:
    """`arn:aws:ecs:r:a:service/c/s` -> ["c", "s"] for kind "service"; [] if not that kind."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn" or not parts[5].startswith(f"{kind}/"):
        return []
    return [p for p in parts[5].split("/")[1:] if p]


def _cluster(env: Envelope) -> str:
    path = _arn_path(text_field(env.detail.get("clusterArn"), 1024), "cluster")
    return path[0] if path else ""


def scoped_id(env: Envelope, kind: str, arn: str) -> str | None:
    """`cluster/name` from an ARN of `kind` (or from the envelope's resources)."""
    candidates = [arn, *env.resources]
    for candidate in candidates:
        path = _arn_path(text_field(candidate, 1024), kind)
        if len(path) >= 2:
            return f"{path[0]}/{path[-1]}"
        if len(path) == 1:
            cluster = _cluster(env)
            return f"{cluster}/{path[0]}" if cluster else path[0]
    return None


def _require(found: str | None, env: Envelope, what: str) -> str:
    if not found:
        raise InvalidEvent("missing_field", f"{env.detail_type}: no {what} ARN in the event")
    return found


def _scalars(detail: Mapping[str, Any], keys: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, name in keys.items():
        value = detail.get(key)
        if isinstance(value, bool) and name == "agent_connected":
            out[name] = value
        elif text_field(value, 256):
            out[name] = text_field(value, 256)
    return out


@normalizer(ECS_SOURCE, SERVICE_ACTION)
@normalizer(ECS_SOURCE, DEPLOYMENT_STATE_CHANGE)
def service_event(env: Envelope) -> list[NormalizedEvent]:
    resource_id = _require(scoped_id(env, "service", ""), env, "service")
    cluster, _, service = resource_id.rpartition("/")
    details = _scalars(
        env.detail,
        {"eventType": "event_type", "eventName": "event_name", "reason": "reason"}
        | {"deploymentId": "deployment_id"},
    )
    details.update({"cluster": cluster or "default", "service": service})
    action = text_field(env.detail.get("eventName"), 128) or env.detail_type
    return [
        env.normalized(resource_type="ecs", resource_id=resource_id, action=action, details=details)
    ]


def _containers(detail: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = detail.get("containers")
    found: list[dict[str, Any]] = []
    for item in raw[:MAX_CONTAINERS] if isinstance(raw, list) else []:
        if not isinstance(item, Mapping):
            continue
        container: dict[str, Any] = {"name": text_field(item.get("name"), 128)}
        code = item.get("exitCode")
        if isinstance(code, int) and not isinstance(code, bool):
            container["exit_code"] = code
        reason = text_field(item.get("reason"), 256)
        if reason:
            container["reason"] = reason
        found.append(container)
    return found


@normalizer(ECS_SOURCE, TASK_STATE_CHANGE)
def task_state_change(env: Envelope) -> list[NormalizedEvent]:
    task_arn = text_field(env.detail.get("taskArn"), 1024)
    resource_id = _require(scoped_id(env, "task", task_arn), env, "task")
    details = _scalars(
        env.detail,
        {
            "lastStatus": "last_status",
            "desiredStatus": "desired_status",
            "stopCode": "stop_code",
            "stoppedReason": "stopped_reason",
            "group": "group",
            "launchType": "launch_type",
            "taskDefinitionArn": "task_definition",
        },
    )
    details["containers"] = _containers(env.detail)
    status = str(details.get("last_status", "UNKNOWN")).upper()
    return [
        env.normalized(
            resource_type="ecs", resource_id=resource_id, action=f"task:{status}", details=details
        )
    ]


@normalizer(ECS_SOURCE, CONTAINER_INSTANCE_STATE_CHANGE)
def container_instance_state_change(env: Envelope) -> list[NormalizedEvent]:
    arn = text_field(env.detail.get("containerInstanceArn"), 1024)
    resource_id = _require(scoped_id(env, "container-instance", arn), env, "container instance")
    details = _scalars(
        env.detail,
        {
            "status": "status",
            "agentConnected": "agent_connected",
            "ec2InstanceId": "ec2_instance_id",
        },
    )
    status = str(details.get("status", "UNKNOWN")).upper()
    return [
        env.normalized(
            resource_type="ecs",
            resource_id=resource_id,
            action=f"container-instance:{status}",
            details=details,
        )
    ]
