"""S3's own events (EventBridge notifications): about the bucket (`s3`, its name); the object
key is a detail. RDS events are in rds.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.envelope import Envelope, InvalidEvent, text_field
from aiops_agent.intake.registry import normalizer
from aiops_agent.intake.resources import id_from_resource_list

S3_SOURCE = "aws.s3"
S3_OBJECT_EVENTS = (
    "Object Created",
    "Object Deleted",
    "Object Restore Initiated",
    "Object Restore Completed",
    "Object Restore Expired",
    "Object Tags Added",
    "Object Tags Deleted",
    "Object ACL Updated",
    "Object Storage Class Changed",
    "Object Access Tier Changed",
)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def s3_object_event(env: Envelope) -> list[NormalizedEvent]:
    bucket = text_field(_mapping(env.detail.get("bucket")).get("name"), 256)
    bucket = bucket or id_from_resource_list(env.resources) or ""
    if not bucket:
        raise InvalidEvent(
            "missing_field", f"{env.detail_type}: field 'detail.bucket.name' is missing"
        )
    details: dict[str, Any] = {
        "key": text_field(_mapping(env.detail.get("object")).get("key"), 1024)
    }
    for key in ("reason", "deletion-type", "requester", "source-ip-address"):
        value = text_field(env.detail.get(key), 256)
        if value:
            details[key.replace("-", "_")] = value
    return [
        env.normalized(
            resource_type="s3", resource_id=bucket, action=env.detail_type, details=details
        )
    ]


for _detail_type in S3_OBJECT_EVENTS:
    normalizer(S3_SOURCE, _detail_type)(s3_object_event)
