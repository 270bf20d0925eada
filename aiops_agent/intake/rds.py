"""RDS's own events: DB instances, clusters, snapshots, parameter and security groups.

The resource is named as its ARN names it (`SourceArn`: `db:my-db` -> `my-db`; an automated
snapshot `snapshot:rds:my-db-2024-...` keeps its `rds:` prefix, which is part of its name), else
by `SourceIdentifier`, whose `rds:` prefix the AWS samples add to instances and clusters is
dropped. The event id (`RDS-EVENT-0087`), the categories and the message are kept for the rules.
"""

from __future__ import annotations

from typing import Any

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.envelope import Envelope, InvalidEvent, text_field
from aiops_agent.intake.registry import normalizer
from aiops_agent.intake.resources import arn_resource_id, id_from_resource_list

RDS_SOURCE = "aws.rds"
RDS_EVENTS = (
    "RDS DB Instance Event",
    "RDS DB Cluster Event",
    "RDS DB Snapshot Event",
    "RDS DB Cluster Snapshot Event",
    "RDS DB Parameter Group Event",
    "RDS DB Security Group Event",
    "RDS DB Proxy Event",
)
_PREFIXED_TYPES = frozenset({"DB_INSTANCE", "CLUSTER", "DB_CLUSTER"})


def rds_name(env: Envelope) -> str:
    source_arn = text_field(env.detail.get("SourceArn"), 1024)
    if source_arn.startswith("arn:"):
        name = arn_resource_id(source_arn)
        if name:
            return name
    identifier = text_field(env.detail.get("SourceIdentifier"), 256)
    source_type = text_field(env.detail.get("SourceType"), 64).upper()
    if identifier.startswith("rds:") and source_type in _PREFIXED_TYPES:
        identifier = identifier.removeprefix("rds:")
    name = identifier or id_from_resource_list(env.resources) or ""
    if not name:
        raise InvalidEvent(
            "missing_field", f"{env.detail_type}: field 'detail.SourceIdentifier' is missing"
        )
    return name


def rds_event(env: Envelope) -> list[NormalizedEvent]:
    name = rds_name(env)
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


for _detail_type in RDS_EVENTS:
    normalizer(RDS_SOURCE, _detail_type)(rds_event)
