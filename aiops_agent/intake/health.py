"""`AWS Health Event`: one event per affected resource, typed by the service that reports it.

An EC2 scheduled retirement names its instance in `affectedEntities[].entityValue` (and in the
envelope's `resources`): it becomes `ec2` / `i-...`. Entities that are ARNs take the ARN's
service and name; capacity-reservation summaries (`cr-... | us-east-1b | t3.medium | ...`) keep
the first field. An event with no entity (an account notification, a service issue, a test
event) is about the Health event itself: `health` / its `eventArn`. `eventTypeCategory` comes
in several spellings (`scheduledChange`, `accountnotification`): it is kept lower-case.
"""

from __future__ import annotations

import re
from typing import Any

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.envelope import Envelope, InvalidEvent, clip, text_field
from aiops_agent.intake.registry import normalizer
from aiops_agent.intake.resources import arn_resource_id

HEALTH_SOURCE = "aws.health"
HEALTH_EVENT = "AWS Health Event"
MAX_ENTITIES = 20

_INSTANCE = re.compile(r"^i-[0-9A-Za-z]{1,32}$")
_SERVICE_TYPES = {"ec2": "ec2", "ebs": "ec2", "elasticloadbalancing": "elasticloadbalancing"}


def service_type(service: str) -> str:
    """`EC2`, `AWS_EC2` -> `ec2`."""
    short = service.strip().lower().removeprefix("aws_")
    return _SERVICE_TYPES.get(short, short) or "health"


def entity_resource(entity: str, service: str) -> tuple[str, str] | None:
    value = entity.split(" | ", 1)[0].strip()
    if not value:
        return None
    if value.startswith("arn:"):
        parts = value.split(":", 5)
        name = arn_resource_id(value)
        return (parts[2], name) if len(parts) == 6 and name else None
    if _INSTANCE.match(value):
        return "ec2", value
    return service_type(service), clip(value, 512)


def _entities(env: Envelope) -> list[str]:
    raw = env.detail.get("affectedEntities")
    found: list[str] = []
    if isinstance(raw, list):
        for item in raw:
            value = text_field(item.get("entityValue"), 1024) if isinstance(item, dict) else ""
            if value and value not in found:
                found.append(value)
    if not found:
        found = [r for r in (text_field(r, 1024) for r in env.resources) if r]
    return found[:MAX_ENTITIES]


@normalizer(HEALTH_SOURCE, HEALTH_EVENT)
def health_event(env: Envelope) -> list[NormalizedEvent]:
    code = text_field(env.detail.get("eventTypeCode"), 128)
    if not code:
        raise InvalidEvent(
            "missing_field", f"{HEALTH_EVENT}: field 'detail.eventTypeCode' is missing"
        )
    service = text_field(env.detail.get("service"), 64)
    details: dict[str, Any] = {
        "event_type_code": code,
        "category": text_field(env.detail.get("eventTypeCategory"), 64).lower(),
        "service": service,
    }
    for key, name in (
        ("statusCode", "status"),
        ("startTime", "start_time"),
        ("endTime", "end_time"),
    ):
        value = text_field(env.detail.get(key), 64)
        if value:
            details[name] = value.lower() if key == "statusCode" else value
    if details.get("status") == "closed":
        details["resolves"] = True
    resources = [r for r in (entity_resource(e, service) for e in _entities(env)) if r]
    if not resources:
        event_arn = text_field(env.detail.get("eventArn"), 1024) or f"{code}/{env.event_id}"
        resources = [("health", event_arn)]
    else:
        details["affected_entities"] = len(resources)
    return [
        env.normalized(resource_type=rtype, resource_id=rid, action=code, details=details)
        for rtype, rid in dict.fromkeys(resources)
    ]
