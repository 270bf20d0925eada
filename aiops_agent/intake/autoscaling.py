"""EC2 Auto Scaling events: instance launch and terminate, successful or not, lifecycle actions.

The resource is the Auto Scaling group (`autoscaling`, its name): a failed launch is the group's
problem, and a successful terminate is the group's own capacity management. The instance, when
there is one (`EC2InstanceId` is an empty string in failed launches), is kept in `details`.
"""

from __future__ import annotations

from typing import Any

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.ec2 import instance_id
from aiops_agent.intake.envelope import Envelope, InvalidEvent, text_field
from aiops_agent.intake.registry import normalizer
from aiops_agent.intake.resources import id_from_resource_list

AUTOSCALING_SOURCE = "aws.autoscaling"
LAUNCH_SUCCESSFUL = "EC2 Instance Launch Successful"
LAUNCH_UNSUCCESSFUL = "EC2 Instance Launch Unsuccessful"
TERMINATE_SUCCESSFUL = "EC2 Instance Terminate Successful"
TERMINATE_UNSUCCESSFUL = "EC2 Instance Terminate Unsuccessful"
LAUNCH_LIFECYCLE = "EC2 Instance-launch Lifecycle Action"
TERMINATE_LIFECYCLE = "EC2 Instance-terminate Lifecycle Action"
DETAIL_TYPES = (
    LAUNCH_SUCCESSFUL,
    LAUNCH_UNSUCCESSFUL,
    TERMINATE_SUCCESSFUL,
    TERMINATE_UNSUCCESSFUL,
    LAUNCH_LIFECYCLE,
    TERMINATE_LIFECYCLE,
)

_FACTS = {
    "StatusCode": "status_code",
    "StatusMessage": "status_message",
    "Description": "description",
    "Cause": "cause",
    "ActivityId": "activity_id",
    "LifecycleTransition": "lifecycle_transition",
}


def autoscaling_event(env: Envelope) -> list[NormalizedEvent]:
    group = text_field(env.detail.get("AutoScalingGroupName"), 256) or id_from_resource_list(
        env.resources
    )
    if not group:
        raise InvalidEvent(
            "missing_field", f"{env.detail_type}: field 'detail.AutoScalingGroupName' is missing"
        )
    details: dict[str, Any] = {}
    for key, name in _FACTS.items():
        value = text_field(env.detail.get(key), 256)
        if value:
            details[name] = value
    found = instance_id(env.detail.get("EC2InstanceId"))
    if found is not None:
        details["instance_id"] = found
    return [
        env.normalized(
            resource_type="autoscaling",
            resource_id=group,
            action=env.detail_type,
            details=details,
            succeeded=env.detail_type not in (LAUNCH_UNSUCCESSFUL, TERMINATE_UNSUCCESSFUL),
        )
    ]


for _detail_type in DETAIL_TYPES:
    normalizer(AUTOSCALING_SOURCE, _detail_type)(autoscaling_event)
