"""CloudTrail Insights: an API's call (or error) rate far from its baseline, start and end.

A bare Insights record has no `eventName`: its `eventCategory` is `Insight` and its
`insightDetails` says which call of which service. It is wrapped as the "AWS Insight via
CloudTrail" event EventBridge delivers. The resource is the service (as ARNs spell it) and the
call: `ssm` / `UpdateInstanceAssociationStatus`. An End resolves its Start.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.cloudtrail import service_of
from aiops_agent.intake.envelope import (
    DEFAULT_REGION,
    Envelope,
    InvalidEvent,
    content_id,
    parse_time,
    text_field,
)
from aiops_agent.intake.registry import ANY_SOURCE, normalizer

INSIGHT_DETAIL_TYPE = "AWS Insight via CloudTrail"


def looks_like_insight(payload: Mapping[str, Any]) -> bool:
    return isinstance(payload.get("insightDetails"), Mapping) and (
        text_field(payload.get("eventCategory"), 32).lower() == "insight"
        or text_field(payload.get("eventType"), 64) == "AwsCloudTrailInsight"
    )


def wrap_insight(
    record: Mapping[str, Any], received_at: datetime | None, default_region: str = DEFAULT_REGION
) -> Envelope:
    notes: dict[str, Any] = {"envelope": "bare-cloudtrail-insight"}
    when = parse_time(record.get("eventTime"))
    if when is None:
        when = received_at or datetime.now(UTC)
        notes["time_source"] = "received"
    return Envelope(
        event_id=text_field(record.get("eventID"), 256) or content_id(record),
        source="aws.cloudtrail",
        detail_type=INSIGHT_DETAIL_TYPE,
        time=when,
        region=text_field(record.get("awsRegion"), 64) or default_region,
        account=text_field(record.get("recipientAccountId"), 32) or None,
        resources=(),
        detail=record,
        notes=notes,
    )


def _average(statistics: Mapping[str, Any], key: str) -> float | None:
    part = statistics.get(key)
    value = part.get("average") if isinstance(part, Mapping) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@normalizer(ANY_SOURCE, INSIGHT_DETAIL_TYPE)
def insight_event(env: Envelope) -> list[NormalizedEvent]:
    insight = env.detail.get("insightDetails")
    if not isinstance(insight, Mapping):
        raise InvalidEvent("missing_field", f"{INSIGHT_DETAIL_TYPE}: no 'insightDetails'")
    call = text_field(insight.get("eventName"), 128)
    service = service_of(text_field(insight.get("eventSource"), 128))
    if not call or not service:
        raise InvalidEvent("missing_field", f"{INSIGHT_DETAIL_TYPE}: no call in 'insightDetails'")
    state = text_field(insight.get("state"), 16).lower() or "start"
    details: dict[str, Any] = {
        "state": state,
        "insight_type": text_field(insight.get("insightType"), 64),
    }
    error = text_field(insight.get("errorCode"), 128)
    if error:
        details["error_code"] = error
    context = insight.get("insightContext")
    statistics = context.get("statistics") if isinstance(context, Mapping) else None
    if isinstance(statistics, Mapping):
        for key in ("baseline", "insight"):
            value = _average(statistics, key)
            if value is not None:
                details[f"{key}_average"] = value
    if state == "end":
        details["resolves"] = True
    return [
        env.normalized(
            resource_type=service, resource_id=call, action=f"insight:{state}", details=details
        )
    ]
