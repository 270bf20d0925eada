"""Any well-formed AWS event without a normalizer of its own: handled, never poison.

The resource is the first thing in the event that names one, most certain first: an ARN in the
envelope's `resources` (service and name as ARNs spell them), a bare id there that says what it
is (`i-...`, `vol-...`), then the detail's well-known id fields (`instance-id`, `resourceId` with
its `resourceType`, `AutoScalingGroupName`, ...). An event that names nothing is about itself:
its service (from `aws.<service>`) and its own id, flagged `resource_unknown` so no plan is ever
attached to it.

What the event says about itself is kept as `signal` in `details`: its own severity where it has
one (findings' labels and scores, Health categories), and an outcome word (a `result` of
`failed`, a detail-type that ends in `Failed`), for the generic rule to notify or ignore.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.envelope import Envelope, clip, text_field
from aiops_agent.intake.resources import arn_resource_id, trim

GENERIC = "generic"
"""`details[GENERIC]` is True on events made here: counted apart, judged by the generic rule."""

MAX_RELATED = 5
_BARE_IDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(rf"^{prefix}-[0-9a-f]{{8,17}}$"), "ec2")
    for prefix in ("i", "vol", "snap", "sg", "ami", "eni", "vpc", "subnet")
)
_ID_FIELDS: tuple[tuple[str, str], ...] = (
    ("instance-id", "ec2"),
    ("instanceid", "ec2"),
    ("ec2instanceid", "ec2"),
    ("volume-id", "ec2"),
    ("autoscalinggroupname", "autoscaling"),
    ("functionname", "lambda"),
    ("tablename", "dynamodb"),
    ("bucketname", "s3"),
    ("dbinstanceidentifier", "rds"),
    ("dbclusteridentifier", "rds"),
    ("key-id", "kms"),
    ("keyid", "kms"),
    ("alarmname", "cloudwatch"),
    ("clustername", "ecs"),
)
_TYPE_ALIASES = {"elasticloadbalancingv2": "elasticloadbalancing"}
_SEVERITY_WORDS = {
    "informational": "INFORMATIONAL",
    "info": "INFORMATIONAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "moderate": "MEDIUM",
    "high": "HIGH",
    "critical": "CRITICAL",
}
_FAILED_WORDS = ("failed", "failure", "unsuccessful", "error", "non_compliant", "impaired")
_OK_WORDS = ("succeeded", "successful", "success", "completed", "available", "compliant", "ok")
_WARNING_WORDS = ("warning", "interruption", "degraded", "unhealthy", "risk")
_OUTCOME_KEYS = ("result", "status", "state", "statuscode", "compliancetype", "eventtype")


def lower_keys(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A shallow copy with lower-cased keys: AWS spells the same field `Id`, `id`, `ID`."""
    return {str(key).lower(): value for key, value in mapping.items()}


def type_of_cfn(resource_type: str) -> str:
    """`AWS::IAM::User` -> `iam`, `AwsS3Bucket` (Security Hub) -> `s3`, else ''."""
    text = resource_type.strip()
    if text.startswith("AWS::"):
        parts = text.split("::")
        short = parts[1].lower() if len(parts) > 2 else ""
        return _TYPE_ALIASES.get(short, short)
    match = re.match(r"^Aws([A-Z0-9][a-z0-9]*)", text)
    return match.group(1).lower() if match else ""


def arn_resource(arn: str) -> tuple[str, str] | None:
    """(service, name) of an ARN, or None."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn" or not parts[2]:
        return None
    name = arn_resource_id(arn)
    return (parts[2], clip(name, 512)) if name else None


def bare_resource(value: str) -> tuple[str, str] | None:
    text = value.strip()
    for pattern, rtype in _BARE_IDS:
        if pattern.match(text):
            return rtype, text
    return None


def from_resources(resources: Iterable[str]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for raw in resources:
        text = text_field(raw, 1024)
        item = arn_resource(text) if text.startswith("arn:") else bare_resource(text)
        if item is not None and item not in found:
            found.append(item)
    return found


def from_detail(detail: Mapping[str, Any]) -> tuple[str, str] | None:
    """A well-known id field of the detail (or of one mapping inside it)."""
    levels = [detail, *(v for v in detail.values() if isinstance(v, Mapping))]
    for level in levels:
        keys = lower_keys(level)
        rid = text_field(keys.get("resourceid"), 512)
        rtype = type_of_cfn(text_field(keys.get("resourcetype"), 128))
        if rid and rtype:
            return rtype, rid
        for key, rtype in _ID_FIELDS:
            value = text_field(keys.get(key), 1024)
            if not value:
                continue
            item = arn_resource(value) if value.startswith("arn:") else (rtype, value)
            if item is not None:
                return item
    return None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def severity_of(detail: Mapping[str, Any]) -> str | None:
    """The event's own severity, as a label: a word, or a 0-10 / 0-100 score."""
    keys = lower_keys(detail)
    raw = keys.get("severity")
    if isinstance(raw, Mapping):
        inner = lower_keys(raw)
        raw = inner.get("label") or inner.get("normalized")
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return label_of_score(float(raw), scale=100)
    word = text_field(raw, 32).lower()
    if word in _SEVERITY_WORDS:
        return _SEVERITY_WORDS[word]
    score = _number(raw)
    if score is not None:
        return label_of_score(score, scale=10)
    category = text_field(keys.get("eventtypecategory"), 64).lower()
    return {"issue": "HIGH", "scheduledchange": "MEDIUM"}.get(category)


def label_of_score(score: float, *, scale: int) -> str:
    """GuardDuty (0-10): <4 low, <7 medium, <9 high; Security Hub normalized (0-100): 0
    informational, <40 low, <70 medium, <90 high; the rest critical."""
    value = score * (10 / scale)
    if value <= 0:
        return "INFORMATIONAL"
    if value < 4:
        return "LOW"
    if value < 7:
        return "MEDIUM"
    if value < 9:
        return "HIGH"
    return "CRITICAL"


def outcome_of(detail_type: str, detail: Mapping[str, Any]) -> str | None:
    """`failed`, `warning` or `ok` from the detail's own outcome fields or the detail-type."""
    keys = lower_keys(detail)
    for key in _OUTCOME_KEYS:
        word = text_field(keys.get(key), 64).lower()
        if any(w in word for w in _FAILED_WORDS):
            return "failed"
        if word in _OK_WORDS:
            return "ok"
    kind = detail_type.lower()
    if any(w in kind for w in _FAILED_WORDS):
        return "failed"
    if any(w in kind for w in _WARNING_WORDS):
        return "warning"
    if any(w in kind for w in _OK_WORDS):
        return "ok"
    return None


def _self_id(env: Envelope) -> str:
    keys = lower_keys(env.detail)
    for key in ("findingarn", "arn", "id", "name"):
        value = text_field(keys.get(key), 1024)
        if value:
            return arn_resource_id(value) or value if value.startswith("arn:") else value
    return env.event_id


def generic_event(env: Envelope) -> list[NormalizedEvent]:
    """One event about the first resource the event names (the others kept as details)."""
    named = from_resources(env.resources)
    in_detail = from_detail(env.detail)
    details: dict[str, Any] = {GENERIC: True}
    if named:
        rtype, rid = named[0]
    elif in_detail is not None:
        rtype, rid = in_detail
    else:
        rtype = env.source.removeprefix("aws.") or "unknown"
        rid = _self_id(env)
        details["resource_unknown"] = True
    related = [f"{t}/{i}" for t, i in named[1 : 1 + MAX_RELATED]]
    if related:
        details["related_resources"] = related
    signal = {
        "severity": severity_of(env.detail),
        "outcome": outcome_of(env.detail_type, env.detail),
    }
    details["signal"] = {key: value for key, value in signal.items() if value}
    message = next(
        (
            text_field(v, 256)
            for k, v in lower_keys(env.detail).items()
            if k in ("message", "title", "description", "cause", "reason") and text_field(v)
        ),
        "",
    )
    if message:
        details["message"] = message
    details["detail"] = trim(env.detail, depth=3)
    return [
        env.normalized(
            resource_type=clip(rtype, 64),
            resource_id=clip(rid, 512),
            action=clip(env.detail_type, 128),
            details=details,
        )
    ]
