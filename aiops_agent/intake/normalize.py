"""`parse_event`: any accepted payload in, one `NormalizedEvent` per resource out.

Accepted: an EventBridge event (any source; `account` and `version` optional), or a bare
CloudTrail record, which is wrapped as the "AWS API Call via CloudTrail" event EventBridge would
have delivered. Anything else raises `InvalidEvent`, and nothing else is ever raised for any
input: the corpus test runs every sample through here to hold that promise.

Dispatch is by (source, detail-type) through the registry. An AWS event (`aws.*`) of a kind
without a normalizer of its own gets the generic one (intake/generic.py): it is handled, notified
or ignored, never dead-lettered. Only a payload that is no event at all, or one that claims a
source outside AWS, is `InvalidEvent` (the dead-letter queue). Shapes AWS really sends are
tolerated: `detail` as a JSON string, no `source` where the detail-type names it, a `time` that
is not a timestamp (the received time stands in, and `details` says so), a bare CloudTrail
Insights record (no `eventName`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import ValidationError

from aiops_agent.domain.models import NormalizedEvent

# Imported for their registrations.
from aiops_agent.intake import autoscaling as _autoscaling
from aiops_agent.intake import cloudtrail as _cloudtrail
from aiops_agent.intake import cloudwatch as _cloudwatch
from aiops_agent.intake import config_rules as _config_rules
from aiops_agent.intake import ebs as _ebs
from aiops_agent.intake import ec2 as _ec2
from aiops_agent.intake import ecs as _ecs
from aiops_agent.intake import health as _health
from aiops_agent.intake import insights as _insights
from aiops_agent.intake import kms as _kms
from aiops_agent.intake import rds as _rds
from aiops_agent.intake import security_findings as _security_findings
from aiops_agent.intake import security_groups as _security_groups
from aiops_agent.intake import services as _services
from aiops_agent.intake import spot as _spot
from aiops_agent.intake import ssm as _ssm
from aiops_agent.intake import storage as _storage
from aiops_agent.intake.envelope import (
    CLOUDTRAIL_DETAIL_TYPE,
    DEFAULT_REGION,
    Envelope,
    EventBridgeEnvelope,
    InvalidEvent,
    clip,
    content_id,
    decode_body,
    parse_time,
    text_field,
    validate_envelope,
)
from aiops_agent.intake.generic import generic_event
from aiops_agent.intake.registry import (
    EVENT_NORMALIZERS,
    EnvelopeNormalizer,
    find_normalizer,
    source_of,
)

__all__ = ["EVENT_NORMALIZERS", "InvalidEvent", "parse_event"]

AWS_SOURCE_PREFIX = "aws."

log = structlog.get_logger(__name__)

NORMALIZER_FAILED = "a field has a shape the normalizer cannot read"

_REGISTERED = (
    _autoscaling,
    _cloudtrail,
    _cloudwatch,
    _config_rules,
    _ebs,
    _ec2,
    _ecs,
    _health,
    _insights,
    _kms,
    _rds,
    _security_findings,
    _security_groups,
    _services,
    _spot,
    _ssm,
    _storage,
)
"""Importing a module registers its normalizers."""
_ACTION_KEYS = ("eventName", "eventTypeCode", "operation", "StatusCode", "lastStatus")


def parse_event(
    body: str | bytes | bytearray | Mapping[str, Any],
    *,
    received_at: datetime | None = None,
    default_region: str = DEFAULT_REGION,
) -> list[NormalizedEvent]:
    """Normalize one payload. `received_at` stands in for a time the payload lacks (else now)."""
    payload = decode_body(body)
    envelope = _envelope_of(payload, received_at, default_region)
    handler = _handler_of(envelope)
    try:
        events = handler(envelope)
    except InvalidEvent:
        raise
    except (ValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        # A normalizer's bug on a shape it did not expect: still a clean rejection (the message
        # goes to the dead-letter queue, not back to the queue forever), and loudly logged.
        log.error(
            "intake.normalizer_failed",
            source=envelope.source,
            detail_type=envelope.detail_type,
            error=type(exc).__name__,
        )
        raise InvalidEvent(
            "invalid_field",
            f"{clip(envelope.detail_type, 80)}: {NORMALIZER_FAILED} ({type(exc).__name__})",
        ) from None
    if not events:  # a normalizer's bug, not the sender's: still a clean rejection
        raise InvalidEvent("unsupported", f"{envelope.detail_type}: no resource in the event")
    log.debug(
        "intake.normalized",
        source=envelope.source,
        detail_type=envelope.detail_type,
        resources=len(events),
    )
    return events


def _handler_of(envelope: Envelope) -> EnvelopeNormalizer:
    """The kind's own normalizer; for any other AWS event the generic one; else unsupported."""
    handler = find_normalizer(envelope.source, envelope.detail_type)
    if handler is not None:
        return handler
    if envelope.source.startswith(AWS_SOURCE_PREFIX):
        return generic_event
    raise InvalidEvent(
        "unsupported",
        f"no normalizer for {clip(envelope.detail_type, 80)!r} from {clip(envelope.source, 64)}"
        " (not an AWS source)",
    )


def _envelope_of(
    payload: Mapping[str, Any], received_at: datetime | None, default_region: str
) -> Envelope:
    if "detail-type" in payload:
        return _resolve(validate_envelope(payload), payload, received_at, default_region)
    if _cloudtrail.looks_like_record(payload):
        return _wrap_record(payload, received_at, default_region)
    if _insights.looks_like_insight(payload):
        return _insights.wrap_insight(payload, received_at, default_region)
    if "alarmData" in payload:
        raise InvalidEvent(
            "not_eventbridge",
            "a CloudWatch alarm action payload (alarmData), not an EventBridge event: "
            "route the alarm through an EventBridge rule instead",
        )
    if isinstance(payload.get("Records"), list):
        raise InvalidEvent(
            "unsupported", "a CloudTrail log file (Records): give one record or one event"
        )
    raise InvalidEvent(
        "not_eventbridge",
        "neither an EventBridge event (no 'detail-type') nor a CloudTrail record (no 'eventName')",
    )


def _source(env: EventBridgeEnvelope) -> str:
    """The envelope's source, or the only one registered for its detail-type (trimmed samples
    drop it: `GuardDuty Finding` can only be `aws.guardduty`)."""
    if env.source:
        return clip(env.source, 256)
    inferred = source_of(env.detail_type)
    if inferred is None:
        raise InvalidEvent("missing_field", "EventBridge event: field 'source' is missing")
    return inferred


def _resolve(
    env: EventBridgeEnvelope,
    payload: Mapping[str, Any],
    received_at: datetime | None,
    default_region: str,
) -> Envelope:
    detail = env.detail
    source = _source(env)
    notes: dict[str, Any] = {}
    if not env.source:
        notes["source_inferred"] = True
    when = parse_time(env.time) or parse_time(detail.get("eventTime"))
    if when is None:
        # AWS's own samples carry `"time": "yyyy-mm-ddThh:mm:ssZ"`: still an event, judged now.
        when = received_at or datetime.now(UTC)
        notes["time_source"] = "received"
        if env.time is not None:
            notes["time_unreadable"] = True
    event_id = (
        text_field(env.id, 256) or text_field(detail.get("eventID"), 256) or content_id(payload)
    )
    region = text_field(env.region, 64) or text_field(detail.get("awsRegion"), 64) or default_region
    return Envelope(
        event_id=event_id,
        source=source,
        detail_type=clip(env.detail_type, 256),
        time=when,
        region=region,
        account=text_field(env.account, 32) or None,
        resources=tuple(env.resources),
        detail=detail,
        replay_name=env.replay_name,
        notes=notes,
    )


def _wrap_record(
    record: Mapping[str, Any], received_at: datetime | None, default_region: str
) -> Envelope:
    """A bare record, as EventBridge would deliver it: source `aws.<service>`, id = eventID."""
    source = text_field(record.get("eventSource"), 128) or _cloudtrail.infer_event_source(
        _cloudtrail.canonical_name(text_field(record.get("eventName"), 128))
    )
    service = _cloudtrail.service_of(source) or "unknown"
    notes: dict[str, Any] = {"envelope": "bare-cloudtrail-record"}
    when = parse_time(record.get("eventTime"))
    if when is None:
        when = received_at or datetime.now(UTC)
        notes["time_source"] = "received"
    account = text_field(record.get("recipientAccountId"), 32)
    return Envelope(
        event_id=text_field(record.get("eventID"), 256) or content_id(record),
        source=f"aws.{service}",
        detail_type=CLOUDTRAIL_DETAIL_TYPE,
        time=when,
        region=text_field(record.get("awsRegion"), 64) or default_region,
        account=account or None,
        resources=(),
        detail=record,
        notes=notes,
    )
