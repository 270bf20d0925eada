"""EC2 events: instance state-change notifications and the instance lifecycle API calls."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import structlog

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.cloudtrail import CloudTrailCall, cloudtrail_normalizer, generic_call
from aiops_agent.intake.envelope import Envelope, InvalidEvent, text_field
from aiops_agent.intake.registry import normalizer

log = structlog.get_logger(__name__)

EC2_SOURCE = "aws.ec2"
EC2_STATE_CHANGE = "EC2 Instance State-change Notification"
EC2_EVENT_SOURCE = "ec2.amazonaws.com"
INSTANCE_CALLS = ("TerminateInstances", "StopInstances", "StartInstances", "RunInstances")

_INSTANCE_ID = re.compile(r"^i-[0-9A-Za-z]{1,32}$")
_INSTANCE_ARN = re.compile(r"^arn:aws[\w-]*:ec2:[^:]*:[^:]*:instance/(i-[0-9A-Za-z]{1,32})$")


def instance_id(value: object) -> str | None:
    """A well-formed instance id (whitespace stripped), else None."""
    text = text_field(value, 64)
    return text if _INSTANCE_ID.match(text) else None


@normalizer(EC2_SOURCE, EC2_STATE_CHANGE)
def ec2_state_change(env: Envelope) -> list[NormalizedEvent]:
    """`detail.state` and `detail.instance-id` (`instance_id` in some samples; may be padded)."""
    state = text_field(env.detail.get("state"), 32).lower()
    if not state:
        raise InvalidEvent(
            "missing_field", "EC2 state-change event: field 'detail.state' is missing"
        )
    raw_id = env.detail.get("instance-id", env.detail.get("instance_id"))
    found = instance_id(raw_id)
    if found is None:
        found = next(
            (m.group(1) for m in map(_INSTANCE_ARN.match, env.resources) if m is not None), None
        )
    if found is None:
        message = "EC2 state-change event: no valid 'detail.instance-id'"
        if raw_id is None:
            raise InvalidEvent("missing_field", message)
        raise InvalidEvent("invalid_field", message)
    return [
        env.normalized(
            resource_type="ec2",
            resource_id=found,
            action=f"state:{state}",
            details={"state": state},
        )
    ]


def _items(container: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """`container[key]["items"]`, the EC2 query-protocol list shape, as mappings only."""
    wrapper = container.get(key)
    items = wrapper.get("items") if isinstance(wrapper, Mapping) else None
    if not isinstance(items, list):
        return []
    return [item for item in items if isinstance(item, Mapping)]


def _ids(items: Iterable[Mapping[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        found = instance_id(item.get("instanceId"))
        if found is not None:
            seen.setdefault(found, None)
        elif item.get("instanceId") is not None:
            log.warning("intake.bad_instance_id", detail="dropped a malformed instanceId")
    return list(seen)


def _state_name(item: Mapping[str, Any], key: str) -> str:
    state = item.get(key)
    return text_field(state.get("name"), 32) if isinstance(state, Mapping) else ""


def _instance_facts(item: Mapping[str, Any] | None) -> dict[str, str]:
    """What a response item says about one instance: its states, type and image."""
    if item is None:
        return {}
    facts = {
        "previous_state": _state_name(item, "previousState"),
        "current_state": _state_name(item, "currentState") or _state_name(item, "instanceState"),
        "instance_type": text_field(item.get("instanceType"), 64),
        "image_id": text_field(item.get("imageId"), 64),
    }
    return {key: value for key, value in facts.items() if value}


@cloudtrail_normalizer(EC2_EVENT_SOURCE, *INSTANCE_CALLS)
def ec2_instance_call(call: CloudTrailCall) -> list[NormalizedEvent]:
    """One event per instance: ids from the request, else (RunInstances) from the response."""
    request_items = _items(call.request, "instancesSet")
    response_items = _items(call.response, "instancesSet")
    ids = _ids(request_items) or _ids(response_items)
    if not ids:
        return generic_call(call)
    by_id = {text_field(item.get("instanceId"), 64): item for item in response_items}
    shared: dict[str, Any] = {}
    instance_type = text_field(call.request.get("instanceType"), 64)
    if instance_type:
        shared["instance_type"] = instance_type
    for flag in ("force", "hibernate"):
        if isinstance(call.request.get(flag), bool):
            shared[flag] = call.request[flag]
    events = []
    for iid in ids:
        details = {**shared, **_instance_facts(by_id.get(iid))}
        if len(ids) > 1:
            details["instances_in_call"] = len(ids)
        events.append(call.event(resource_type="ec2", resource_id=iid, details=details))
    return events
