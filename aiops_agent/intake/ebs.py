"""EBS's own notifications: volume created, deleted, modified, (re)attach failed; snapshots.

The resource is the volume or snapshot (`ec2`, `vol-...` / `snap-...`: EBS ARNs are EC2's),
from `resources` (the other ARNs, a KMS key that broke an attach, are kept as related), else
from `snapshot_id` / `source` in the detail. `event`, `result` and `cause` are kept as they are.
"""

from __future__ import annotations

from typing import Any

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.ec2 import EC2_SOURCE
from aiops_agent.intake.envelope import Envelope, InvalidEvent, text_field
from aiops_agent.intake.generic import arn_resource, from_resources
from aiops_agent.intake.registry import normalizer

VOLUME_NOTIFICATION = "EBS Volume Notification"
SNAPSHOT_NOTIFICATION = "EBS Snapshot Notification"
MULTI_VOLUME_SNAPSHOTS = "EBS Multi-Volume Snapshots Completion Status"
DETAIL_TYPES = (VOLUME_NOTIFICATION, SNAPSHOT_NOTIFICATION, MULTI_VOLUME_SNAPSHOTS)


def _subject(env: Envelope) -> tuple[tuple[str, str], list[str]]:
    named = from_resources(env.resources)
    ebs = [item for item in named if item[1].startswith(("vol-", "snap-"))]
    if not ebs:
        for key in ("snapshot_id", "source"):
            item = arn_resource(text_field(env.detail.get(key), 512))
            if item is not None:
                ebs.append(item)
                break
    if not ebs:
        raise InvalidEvent("missing_field", f"{env.detail_type}: no volume or snapshot ARN")
    subject = ebs[0]
    return subject, [f"{t}/{i}" for t, i in named if (t, i) != subject][:5]


def ebs_event(env: Envelope) -> list[NormalizedEvent]:
    (rtype, rid), related = _subject(env)
    name = text_field(env.detail.get("event"), 64) or env.detail_type
    details: dict[str, Any] = {
        "event": name,
        "result": text_field(env.detail.get("result"), 64).lower(),
    }
    cause = text_field(env.detail.get("cause"), 256)
    if cause:
        details["cause"] = cause
    if related:
        details["related_resources"] = related
    return [
        env.normalized(
            resource_type=rtype,
            resource_id=rid,
            action=f"ebs:{name}",
            details=details,
            succeeded=details["result"] != "failed",
        )
    ]


for _detail_type in DETAIL_TYPES:
    normalizer(EC2_SOURCE, _detail_type)(ebs_event)
