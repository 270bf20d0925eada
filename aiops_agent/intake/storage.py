"""Data stores' own events: S3 object events (EventBridge notifications) and RDS instance events.

An S3 object event is about its bucket (`s3`, the bucket name); the object key is a detail. An
RDS event names its DB instance in `SourceIdentifier` (or the ARN in `SourceArn`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.envelope import Envelope, InvalidEvent, text_field
from aiops_agent.intake.registry import normalizer
from aiops_agent.intake.resources import arn_resource_id, id_from_resource_list

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
RDS_SOURCE = "aws.rds"
RDS_EVENTS = (
    "RDS DB Instance Event",
    "RDS DB Cluster Event",
    "RDS DB Snapshot Event",
    "RDS DB Parameter Group Event",
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


def rds_event(env: Envelope) -> list[NormalizedEvent]:
    source_arn = text_field(env.detail.get("SourceArn"), 1024)
    name = text_field(env.detail.get("SourceIdentifier"), 256) or (
        arn_resource_id(source_arn) if source_arn.startswith("arn:") else None
    )
    name = name or id_from_resource_list(env.resources)
    if not name:
        raise InvalidEvent(
            "missing_field", f"{env.detail_type}: field 'detail.SourceIdentifier' is missing"
        )
    categories = env.detail.get("EventCategories")
    details: dict[str, Any] = {
        "categories": [text_field(c, 64).lower() for c in categories[:10] if text_field(c, 64)]
        if isinstance(categories, list)
        else [],
        "message": text_field(env.detail.get("Message"), 256),
        "source_type": text_field(env.detail.get("SourceType"), 64),
    }
    event_code = text_field(env.detail.get("EventID"), 64)
    action = event_code or env.detail_type
    if event_code:
        details["event_code"] = event_code
    return [env.normalized(resource_type="rds", resource_id=name, action=action, details=details)]


for _detail_type in S3_OBJECT_EVENTS:
    normalizer(S3_SOURCE, _detail_type)(s3_object_event)
for _detail_type in RDS_EVENTS:
    normalizer(RDS_SOURCE, _detail_type)(rds_event)
