"""What EventBridge must route to the agent: derived from the registered normalizers.

The rule's pattern (`aiops-agent bootstrap`, deploy/terraform/event_pattern.json) is generated
from the two normalizer registries, so a new normalizer is routed without an edit here:

- every (source, detail-type) of `EVENT_NORMALIZERS` except the any-source CloudTrail entry and
  the detail types of `UNROUTED` (handled when they arrive, by replay or a queue of one's own,
  but not asked for: one event per S3 object written would flood the queue);
- for "AWS API Call via CloudTrail", one source per eventSource a CloudTrail normalizer knows:
  EventBridge names the event `aws.<first label of eventSource>` (`monitoring.amazonaws.com`
  arrives as `aws.monitoring`, `events.amazonaws.com` as `aws.events`).

CloudTrail API-call events exist only where a trail logs management events (the bootstrap
checks for one: provision/trail.py).
"""

from __future__ import annotations

from aiops_agent.intake import normalize as _normalize  # noqa: F401  (registers everything)
from aiops_agent.intake.cloudtrail import CLOUDTRAIL_NORMALIZERS
from aiops_agent.intake.envelope import CLOUDTRAIL_DETAIL_TYPE
from aiops_agent.intake.registry import ANY_SOURCE, EVENT_NORMALIZERS

UNROUTED: frozenset[str] = frozenset(
    {
        "Object Created",
        "Object ACL Updated",
        "Object Access Tier Changed",
        "Object Restore Completed",
        "Object Restore Expired",
        "Object Restore Initiated",
        "Object Storage Class Changed",
        "Object Tags Added",
        "Object Tags Deleted",
    }
)
"""Detail types a normalizer reads but the rule does not route: one per S3 object operation."""


def cloudtrail_source(event_source: str) -> str:
    """The EventBridge `source` of a CloudTrail record with this `eventSource`."""
    return "aws." + event_source.strip().lower().split(".", 1)[0]


def event_sources() -> tuple[str, ...]:
    """Every EventBridge `source` some normalizer handles, sorted."""
    sources = {source for source, _ in EVENT_NORMALIZERS if source != ANY_SOURCE}
    sources |= {cloudtrail_source(event_source) for event_source, _ in CLOUDTRAIL_NORMALIZERS}
    return tuple(sorted(sources))


def detail_types() -> tuple[str, ...]:
    """Every `detail-type` some normalizer handles, sorted."""
    return tuple(sorted({dt for _, dt in EVENT_NORMALIZERS if dt not in UNROUTED}))


def event_pattern() -> dict[str, list[str]]:
    """The EventBridge pattern of the events the agent consumes."""
    return {"source": list(event_sources()), "detail-type": list(detail_types())}


def routed(source: str, detail_type: str, pattern: dict[str, list[str]] | None = None) -> bool:
    """Whether an event with this source and detail-type matches `pattern` (default: ours)."""
    pattern = pattern or event_pattern()
    return source in pattern["source"] and detail_type in pattern["detail-type"]


__all__ = [
    "CLOUDTRAIL_DETAIL_TYPE",
    "UNROUTED",
    "cloudtrail_source",
    "detail_types",
    "event_pattern",
    "event_sources",
    "routed",
]
