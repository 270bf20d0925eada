"""CloudTrail API calls: the record model, a registry per (eventSource, eventName), a fallback.

A call arrives as the `detail` of an "AWS API Call via CloudTrail" event, or as a bare record
(which `normalize.parse_event` wraps in an envelope first). Every field of a record is
attacker-influenced text (the principal, the user agent, request parameters): it is kept as
data, clipped, and never interpreted beyond lookups.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.envelope import (
    CLOUDTRAIL_DETAIL_TYPE,
    Envelope,
    clip,
    from_validation_error,
    text_field,
)
from aiops_agent.intake.registry import ANY_SOURCE, Registry, normalizer
from aiops_agent.intake.resources import arn_resource_id, find_resource_id, trim

log = structlog.get_logger(__name__)

READ_ONLY_VERBS = ("Get", "Describe", "List", "Head", "BatchGet", "Lookup")
_API_VERSION_SUFFIX = re.compile(r"(?<=[a-z])20\d{6}(v\d{1,2})?$")
"""Lambda logs `DeleteFunction20150331`, `UpdateFunctionCode20150331v2`: the API version."""
_DENIED_RESOURCE = re.compile(r"on resource: (arn:[^\s\"']{1,512})")
_SERVICE_ALIASES = {"monitoring": "cloudwatch"}
"""eventSource prefixes that differ from the ARN service name."""


class CloudTrailRecord(BaseModel):
    """The fields of a CloudTrail record the agent reads; everything else is ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    eventName: str
    eventSource: str | None = None
    eventTime: str | None = None
    eventID: str | None = None
    eventType: str | None = None
    awsRegion: str | None = None
    recipientAccountId: str | None = None
    userIdentity: dict[str, Any] | None = None
    userAgent: str | None = None
    sourceIPAddress: str | None = None
    requestParameters: dict[str, Any] | None = None
    responseElements: Any = None
    resources: list[Any] | None = None
    errorCode: str | None = None
    errorMessage: str | None = None
    readOnly: bool | None = None


def _lower_keys(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {str(key).lower(): value for key, value in mapping.items()}


def validate_record(detail: Mapping[str, Any]) -> CloudTrailRecord:
    try:
        return CloudTrailRecord.model_validate(detail)
    except ValidationError as exc:
        raise from_validation_error(exc, "CloudTrail record") from None


def service_of(event_source: str | None) -> str:
    """`ec2.amazonaws.com` -> `ec2`: the service's short name as ARNs spell it."""
    if not event_source:
        return ""
    short = event_source.strip().lower().split(".", 1)[0]
    return _SERVICE_ALIASES.get(short, short)


@dataclass(frozen=True)
class CloudTrailCall:
    """One API call: the resolved envelope plus the validated record."""

    envelope: Envelope
    record: CloudTrailRecord

    @property
    def event_name(self) -> str:
        """The call's name without an API-version suffix (`DeleteFunction20150331`)."""
        return canonical_name(self.record.eventName)

    @cached_property
    def event_source(self) -> str:
        """`eventSource`, or the one service whose normalizer knows this call's name."""
        given = text_field(self.record.eventSource, 128)
        return given or infer_event_source(self.event_name) or ""

    @cached_property
    def service(self) -> str:
        from_record = service_of(self.event_source)
        if from_record:
            return from_record
        source = self.envelope.source
        return source.removeprefix("aws.") if source.startswith("aws.") else "unknown"

    @cached_property
    def identity(self) -> Mapping[str, Any]:
        """`userIdentity` with lower-case keys: LookupEvents and some exporters spell them
        `Type`, `Arn`, `SessionContext` where EventBridge says `type`, `arn`, `sessionContext`."""
        return _lower_keys(self.record.userIdentity or {})

    @property
    def principal_type(self) -> str | None:
        return text_field(self.identity.get("type"), 64) or None

    @property
    def principal(self) -> str | None:
        arn = text_field(self.identity.get("arn"), 512)
        if arn:
            return arn
        if self.principal_type == "Root":
            account = text_field(self.identity.get("accountid"), 32)
            return f"arn:aws:iam::{account}:root" if account else "root"
        return None

    @property
    def invoked_by(self) -> str | None:
        return text_field(self.identity.get("invokedby"), 128) or None

    @property
    def session_issuer(self) -> str | None:
        context = self.identity.get("sessioncontext")
        issuer = _lower_keys(context).get("sessionissuer") if isinstance(context, dict) else None
        if not isinstance(issuer, dict):
            return None
        return text_field(_lower_keys(issuer).get("arn"), 512) or None

    @property
    def error_code(self) -> str | None:
        return text_field(self.record.errorCode, 128) or None

    @property
    def read_only(self) -> bool:
        if self.record.readOnly is not None:
            return self.record.readOnly
        return self.event_name.startswith(READ_ONLY_VERBS)

    @property
    def request(self) -> Mapping[str, Any]:
        return self.record.requestParameters or {}

    @property
    def response(self) -> Mapping[str, Any]:
        value = self.record.responseElements
        return value if isinstance(value, dict) else {}

    def common_details(self) -> dict[str, Any]:
        details: dict[str, Any] = {"event_source": self.event_source}
        optional: dict[str, Any] = {
            "event_name": clip(self.record.eventName, 128)
            if self.record.eventName != self.event_name
            else "",
            "event_source_inferred": not self.record.eventSource and bool(self.event_source),
            "event_type": text_field(self.record.eventType, 64),
            "source_ip": text_field(self.record.sourceIPAddress, 128),
            "session_issuer": self.session_issuer or "",
            "error_message": text_field(self.record.errorMessage, 256),
        }
        details.update({key: value for key, value in optional.items() if value})
        return details

    def event(
        self, *, resource_type: str, resource_id: str, details: Mapping[str, Any] | None = None
    ) -> NormalizedEvent:
        """A `NormalizedEvent` for this call about one resource."""
        merged = self.common_details()
        merged.update(details or {})
        return self.envelope.normalized(
            resource_type=resource_type,
            resource_id=resource_id,
            action=clip(self.event_name, 128),
            details=merged,
            principal=self.principal,
            principal_type=self.principal_type,
            invoked_by=self.invoked_by,
            user_agent=text_field(self.record.userAgent, 512) or None,
            succeeded=self.error_code is None,
            error_code=self.error_code,
            read_only=self.read_only,
        )


CloudTrailNormalizer = Callable[[CloudTrailCall], list[NormalizedEvent]]

CLOUDTRAIL_NORMALIZERS: Registry[tuple[str, str], CloudTrailNormalizer] = Registry(
    "CloudTrail normalizers"
)


def canonical_name(event_name: str) -> str:
    return _API_VERSION_SUFFIX.sub("", clip(event_name, 128))


def infer_event_source(event_name: str) -> str | None:
    """The eventSource of the only registered normalizer for this call name, if exactly one."""
    found = {source for source, name in CLOUDTRAIL_NORMALIZERS if name == event_name}
    return found.pop() if len(found) == 1 else None


def cloudtrail_normalizer(
    event_source: str, *event_names: str
) -> Callable[[CloudTrailNormalizer], CloudTrailNormalizer]:
    """Register the normalizer of one or more (eventSource, eventName) calls."""
    if not event_names:
        raise ValueError("cloudtrail_normalizer needs at least one event name")
    return CLOUDTRAIL_NORMALIZERS.register(*((event_source, name) for name in event_names))


@normalizer(ANY_SOURCE, CLOUDTRAIL_DETAIL_TYPE)
def cloudtrail_call(env: Envelope) -> list[NormalizedEvent]:
    """Dispatch an API call to its registered normalizer, or to the generic one."""
    call = CloudTrailCall(env, validate_record(env.detail))
    specific = CLOUDTRAIL_NORMALIZERS.get((call.event_source, call.event_name))
    if specific is not None:
        return specific(call)
    return generic_call(call)


def generic_call(call: CloudTrailCall) -> list[NormalizedEvent]:
    """Any API call: the service as resource type, the resource id as best one can find it."""
    resource_id = find_resource_id(
        call.request, call.record.resources, call.response, call.envelope.resources
    ) or denied_resource(call)
    details: dict[str, Any] = {}
    if not resource_id:
        resource_id = call.envelope.event_id
        details["resource_unknown"] = True
    if call.request:
        details["request"] = trim(call.request)
    log.debug("intake.generic_cloudtrail", service=call.service, event_name=call.event_name)
    return [call.event(resource_type=call.service, resource_id=resource_id, details=details)]


def denied_resource(call: CloudTrailCall) -> str | None:
    """A denied call names its target only in the message: `... on resource: arn:...`."""
    match = _DENIED_RESOURCE.search(call.record.errorMessage or "")
    return arn_resource_id(match.group(1).rstrip(".,;")) if match else None


def looks_like_record(payload: Mapping[str, Any]) -> bool:
    """A bare CloudTrail record: an `eventName` and some other CloudTrail-only field."""
    if not isinstance(payload.get("eventName"), str):
        return False
    return any(key in payload for key in ("eventSource", "eventTime", "eventID", "userIdentity"))
