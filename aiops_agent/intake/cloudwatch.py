"""CloudWatch alarms: `CloudWatch Alarm State Change` and `CloudWatch Alarm Configuration Change`.

The resource is the alarm itself (`cloudwatch`, its name), so that the alarm going back to OK
lands on the same resource as the ALARM that opened an incident. What the alarm watches, when its
metrics name exactly one resource by a well-known dimension, is kept as `details["monitored"]`
(`{"resource_type": "ec2", "resource_id": "i-..."}`) for the reasons and for correlation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.envelope import Envelope, InvalidEvent, clip, text_field
from aiops_agent.intake.registry import normalizer
from aiops_agent.intake.resources import id_from_resource_list

CLOUDWATCH_SOURCE = "aws.cloudwatch"
ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
ALARM_CONFIGURATION_CHANGE = "CloudWatch Alarm Configuration Change"
MAX_METRICS = 10

_DIMENSIONS: tuple[tuple[str, str], ...] = (
    ("InstanceId", "ec2"),
    ("FunctionName", "lambda"),
    ("TableName", "dynamodb"),
    ("DBInstanceIdentifier", "rds"),
    ("DBClusterIdentifier", "rds"),
    ("AutoScalingGroupName", "autoscaling"),
    ("BucketName", "s3"),
    ("QueueName", "sqs"),
)
"""Metric dimensions that name one resource, and its type."""


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _metrics(configuration: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    metrics = configuration.get("metrics")
    if not isinstance(metrics, list):
        return []
    found = []
    for item in metrics[:MAX_METRICS]:
        metric = _mapping(_mapping(_mapping(item).get("metricStat")).get("metric"))
        if metric:
            found.append(metric)
    return found


def monitored(metrics: Iterable[Mapping[str, Any]]) -> dict[str, str] | None:
    """The one resource the metrics are about, if they name exactly one (ECS: cluster/service)."""
    found: set[tuple[str, str]] = set()
    for metric in metrics:
        dims = _mapping(metric.get("dimensions"))
        cluster, service = text_field(dims.get("ClusterName")), text_field(dims.get("ServiceName"))
        if cluster and service:
            found.add(("ecs", f"{cluster}/{service}"))
            continue
        for key, resource_type in _DIMENSIONS:
            value = text_field(dims.get(key), 512)
            if value:
                found.add((resource_type, value))
                break
    if len(found) != 1:
        return None
    resource_type, resource_id = found.pop()
    return {"resource_type": resource_type, "resource_id": resource_id}


def _alarm_name(env: Envelope) -> str:
    name = text_field(env.detail.get("alarmName"), 512) or id_from_resource_list(env.resources)
    if not name:
        raise InvalidEvent(
            "missing_field", f"{env.detail_type}: field 'detail.alarmName' is missing"
        )
    return name


def _common(env: Envelope) -> dict[str, Any]:
    configuration = _mapping(env.detail.get("configuration"))
    metrics = _metrics(configuration)
    details: dict[str, Any] = {
        "metrics": sorted(
            {
                f"{text_field(m.get('namespace'), 64)}/{text_field(m.get('name'), 128)}"
                for m in metrics
            }
        )
    }
    watched = monitored(metrics)
    if watched is not None:
        details["monitored"] = watched
    if text_field(configuration.get("alarmRule")):
        details["composite"] = True
        details["alarm_rule"] = clip(configuration["alarmRule"], 256)
    description = text_field(configuration.get("description"), 256)
    if description:
        details["description"] = description
    return details


@normalizer(CLOUDWATCH_SOURCE, ALARM_STATE_CHANGE)
def alarm_state_change(env: Envelope) -> list[NormalizedEvent]:
    state = _mapping(env.detail.get("state"))
    value = text_field(state.get("value"), 32).upper()
    if not value:
        raise InvalidEvent(
            "missing_field", f"{ALARM_STATE_CHANGE}: field 'detail.state.value' is missing"
        )
    previous = _mapping(env.detail.get("previousState"))
    details = _common(env)
    details.update(
        {"state": value, "previous_state": text_field(previous.get("value"), 32).upper()}
    )
    reason = text_field(state.get("reason"), 256)
    if reason:
        details["reason"] = reason
    if value == "OK":
        details["resolves"] = True  # closes what this alarm opened (the engine's side)
    suppressed = text_field(state.get("actionsSuppressedBy"), 64)
    if suppressed:
        details["actions_suppressed_by"] = suppressed
        details["actions_suppressor"] = text_field(
            _mapping(env.detail.get("configuration")).get("actionsSuppressor"), 256
        )
    return [
        env.normalized(
            resource_type="cloudwatch",
            resource_id=_alarm_name(env),
            action=f"state:{value}",
            details=details,
        )
    ]


@normalizer(CLOUDWATCH_SOURCE, ALARM_CONFIGURATION_CHANGE)
def alarm_configuration_change(env: Envelope) -> list[NormalizedEvent]:
    operation = text_field(env.detail.get("operation"), 32).lower() or "unknown"
    details = _common(env)
    details["operation"] = operation
    configuration = _mapping(env.detail.get("configuration"))
    if isinstance(configuration.get("actionsEnabled"), bool):
        details["actions_enabled"] = configuration["actionsEnabled"]
    return [
        env.normalized(
            resource_type="cloudwatch",
            resource_id=_alarm_name(env),
            action=f"alarm:{operation}",
            details=details,
        )
    ]
