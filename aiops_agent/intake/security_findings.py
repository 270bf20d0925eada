"""Security findings: GuardDuty, and Security Hub's imported findings and custom actions.

A finding is about the resource it names, as ARNs spell it: an instance (`ec2`), an access key's
user (`iam`), a bucket (`s3`), a function, a DB instance; else about the finding itself
(`guardduty` / its id). Keys are read case-blind: EventBridge delivers GuardDuty in camelCase,
the API (and samples copied from it) in PascalCase. The finding's own severity is kept as a
label (GuardDuty's 0-10 score, Security Hub's `Severity.Label` or normalized 0-100 score), with
its type, title and whether it is archived, suppressed or resolved.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.envelope import Envelope, InvalidEvent, clip, text_field
from aiops_agent.intake.generic import (
    arn_resource,
    label_of_score,
    lower_keys,
    severity_of,
    type_of_cfn,
)
from aiops_agent.intake.registry import normalizer

GUARDDUTY_SOURCE = "aws.guardduty"
GUARDDUTY_FINDING = "GuardDuty Finding"
SECURITYHUB_SOURCE = "aws.securityhub"
FINDINGS_IMPORTED = "Security Hub Findings - Imported"
FINDINGS_CUSTOM_ACTION = "Security Hub Findings - Custom Action"
FINDING_DETAIL_TYPES = (GUARDDUTY_FINDING, FINDINGS_IMPORTED, FINDINGS_CUSTOM_ACTION)
MAX_FINDINGS = 10

_GUARDDUTY_RESOURCES: tuple[tuple[str, str, str], ...] = (
    ("instancedetails", "instanceid", "ec2"),
    ("accesskeydetails", "username", "iam"),
    ("lambdadetails", "functionname", "lambda"),
    ("rdsdbinstancedetails", "dbinstanceidentifier", "rds"),
    ("eksclusterdetails", "name", "eks"),
    ("ecsclusterdetails", "name", "ecs"),
)
_CLOSED_WORKFLOW = frozenset({"SUPPRESSED", "RESOLVED"})


def _mapping(value: object) -> dict[str, Any]:
    return lower_keys(value) if isinstance(value, Mapping) else {}


def _guardduty_resource(resource: dict[str, Any]) -> tuple[str, str] | None:
    for section, key, rtype in _GUARDDUTY_RESOURCES:
        value = text_field(_mapping(resource.get(section)).get(key), 256)
        if value:
            return rtype, value
    buckets = resource.get("s3bucketdetails")
    for bucket in buckets if isinstance(buckets, list) else []:
        name = text_field(_mapping(bucket).get("name"), 256)
        if name:
            return "s3", name
    return None


@normalizer(GUARDDUTY_SOURCE, GUARDDUTY_FINDING)
def guardduty_finding(env: Envelope) -> list[NormalizedEvent]:
    finding = lower_keys(env.detail)
    finding_id = text_field(finding.get("id"), 256)
    found = _guardduty_resource(_mapping(finding.get("resource")))
    if found is None and not finding_id:
        raise InvalidEvent("missing_field", f"{GUARDDUTY_FINDING}: neither a resource nor an 'id'")
    rtype, rid = found or ("guardduty", finding_id)
    service = _mapping(finding.get("service"))
    details: dict[str, Any] = {
        "finding_type": text_field(finding.get("type"), 128),
        "title": text_field(finding.get("title"), 256),
        "severity_label": severity_of(env.detail) or "MEDIUM",
        "finding_id": finding_id,
        "archived": service.get("archived") is True,
    }
    score = finding.get("severity")
    if isinstance(score, int | float) and not isinstance(score, bool):
        details["severity_score"] = score
    return [
        env.normalized(
            resource_type=rtype, resource_id=clip(rid, 512), action="finding", details=details
        )
    ]


def _hub_severity(finding: dict[str, Any]) -> str:
    severity = _mapping(finding.get("severity"))
    label = text_field(severity.get("label"), 32).upper()
    if label:
        return label
    normalized = severity.get("normalized")
    if isinstance(normalized, int | float) and not isinstance(normalized, bool):
        return label_of_score(float(normalized), scale=100)
    fields = _mapping(finding.get("productfields"))
    return text_field(fields.get("aws/securityhub/severitylabel"), 32).upper() or "MEDIUM"


def _hub_resource(finding: dict[str, Any]) -> tuple[str, str] | None:
    resources = finding.get("resources")
    for item in resources if isinstance(resources, list) else []:
        resource = _mapping(item)
        raw = text_field(resource.get("id"), 1024)
        found = arn_resource(raw) if raw.startswith("arn:") else None
        if found is None and raw:
            rtype = type_of_cfn(text_field(resource.get("type"), 128))
            found = (rtype, raw) if rtype else None
        if found is not None:
            return found
    return None


def _closed(finding: dict[str, Any]) -> str | None:
    workflow = text_field(_mapping(finding.get("workflow")).get("status"), 32).upper()
    workflow = workflow or text_field(finding.get("workflowstate"), 32).upper()
    if workflow in _CLOSED_WORKFLOW:
        return f"workflow {workflow}"
    if text_field(finding.get("recordstate"), 32).upper() == "ARCHIVED":
        return "archived"
    if text_field(_mapping(finding.get("compliance")).get("status"), 32).upper() == "PASSED":
        return "compliance PASSED"
    return None


def securityhub_findings(env: Envelope) -> list[NormalizedEvent]:
    raw = env.detail.get("findings")
    findings = (
        [lower_keys(f) for f in raw if isinstance(f, Mapping)] if isinstance(raw, list) else []
    )
    if not findings:
        raise InvalidEvent("missing_field", f"{env.detail_type}: field 'detail.findings' is empty")
    action_name = text_field(env.detail.get("actionName"), 128)
    events = []
    for finding in findings[:MAX_FINDINGS]:
        finding_id = text_field(finding.get("id"), 1024) or env.event_id
        rtype, rid = _hub_resource(finding) or ("securityhub", finding_id)
        types = finding.get("types")
        details: dict[str, Any] = {
            "finding_type": text_field(types[0], 128) if isinstance(types, list) and types else "",
            "title": text_field(finding.get("title"), 256),
            "severity_label": _hub_severity(finding),
            "product": text_field(
                _mapping(finding.get("productfields")).get("aws/securityhub/productname"), 64
            ),
        }
        closed = _closed(finding)
        if closed:
            details["closed"] = closed
        if action_name:
            details["custom_action"] = action_name
        if len(findings) > 1:
            details["findings_in_event"] = len(findings)
        events.append(
            env.normalized(
                resource_type=rtype, resource_id=clip(rid, 512), action="finding", details=details
            )
        )
    return events


normalizer(SECURITYHUB_SOURCE, FINDINGS_IMPORTED)(securityhub_findings)
normalizer(SECURITYHUB_SOURCE, FINDINGS_CUSTOM_ACTION)(securityhub_findings)
