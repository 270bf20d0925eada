"""SSM Parameter Store: the `Parameter Store Change` event and the parameter API calls.

The resource id is the parameter's name as users write it (`/app/db-host`, `MyParameter`). A
`PutParameter` records whether it overwrote (`overwrite`) and the version it wrote (from
`responseElements.version`): version 1 is a creation, a later one a change of value.
"""

from __future__ import annotations

from typing import Any

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.cloudtrail import CloudTrailCall, cloudtrail_normalizer, generic_call
from aiops_agent.intake.envelope import Envelope, InvalidEvent, clip, text_field
from aiops_agent.intake.registry import normalizer
from aiops_agent.intake.resources import arn_resource_id, id_from_resource_list

SSM_SOURCE = "aws.ssm"
SSM_EVENT_SOURCE = "ssm.amazonaws.com"
PARAMETER_STORE_CHANGE = "Parameter Store Change"
MAX_NAMES = 20


def parameter_name(raw: object) -> str:
    """A parameter name or ARN -> the name (`arn:...:parameter/a/b` -> `/a/b`)."""
    text = text_field(raw, 2048)
    if text.startswith("arn:"):
        return arn_resource_id(text) or ""
    return text


@normalizer(SSM_SOURCE, PARAMETER_STORE_CHANGE)
def parameter_store_change(env: Envelope) -> list[NormalizedEvent]:
    """`detail.operation` (Create, Update, Delete, LabelParameterVersion) on `detail.name`."""
    name = parameter_name(env.detail.get("name")) or (id_from_resource_list(env.resources) or "")
    if not name:
        raise InvalidEvent(
            "missing_field", "Parameter Store Change: field 'detail.name' is missing"
        )
    operation = text_field(env.detail.get("operation"), 64) or "Unknown"
    details: dict[str, Any] = {"operation": operation}
    for key in ("type", "dataType", "description", "labels"):
        value = text_field(env.detail.get(key), 256)
        if value:
            details[key] = value
    exception = text_field(env.detail.get("exception"), 256)
    if exception:
        details["exception"] = exception
    return [
        env.normalized(
            resource_type="ssm",
            resource_id=name,
            action=operation,
            details=details,
            succeeded=not exception,
            error_code=clip(exception, 128) if exception else None,
        )
    ]


def _version(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


@cloudtrail_normalizer(SSM_EVENT_SOURCE, "PutParameter")
def put_parameter(call: CloudTrailCall) -> list[NormalizedEvent]:
    name = parameter_name(call.request.get("name"))
    if not name:
        return generic_call(call)
    details: dict[str, Any] = {"overwrite": call.request.get("overwrite") is True}
    version = _version(call.response.get("version"))
    if version is not None:
        details["version"] = version
    for key in ("type", "tier", "dataType"):
        value = text_field(call.request.get(key), 64)
        if value:
            details[key] = value
    return [call.event(resource_type="ssm", resource_id=name, details=details)]


@cloudtrail_normalizer(
    SSM_EVENT_SOURCE,
    "DeleteParameter",
    "DeleteParameters",
    "GetParameter",
    "GetParameters",
    "GetParameterHistory",
    "LabelParameterVersion",
    "UnlabelParameterVersion",
)
def parameter_call(call: CloudTrailCall) -> list[NormalizedEvent]:
    """One event per parameter; `DeleteParameters` counts only the names it really deleted."""
    raw = call.request.get("names")
    names = [parameter_name(n) for n in raw] if isinstance(raw, list) else []
    if call.event_name == "DeleteParameters":
        deleted = call.response.get("deletedParameters")
        if isinstance(deleted, list):
            names = [parameter_name(n) for n in deleted]
    single = parameter_name(call.request.get("name"))
    names = [n for n in names if n] or ([single] if single else [])
    if not names:
        return generic_call(call)
    details: dict[str, Any] = {}
    if len(names) > 1:
        details["resources_in_call"] = len(names)
    if call.request.get("withDecryption") is True:
        details["with_decryption"] = True
    return [
        call.event(resource_type="ssm", resource_id=name, details=details)
        for name in names[:MAX_NAMES]
    ]
