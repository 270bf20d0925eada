"""AWS Config: a resource's compliance with a rule changed.

The resource is the one the rule evaluated (`resourceType` as `AWS::IAM::User` -> `iam`,
`resourceId`); the new and the old compliance are kept, with the rule's name. COMPLIANT again
resolves what NON_COMPLIANT opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.envelope import Envelope, InvalidEvent, clip, text_field
from aiops_agent.intake.generic import type_of_cfn
from aiops_agent.intake.registry import normalizer

CONFIG_SOURCE = "aws.config"
COMPLIANCE_CHANGE = "Config Rules Compliance Change"


def _compliance(detail: Mapping[str, Any], key: str) -> str:
    result = detail.get(key)
    value = result.get("complianceType") if isinstance(result, Mapping) else None
    return text_field(value, 32).upper()


@normalizer(CONFIG_SOURCE, COMPLIANCE_CHANGE)
def compliance_change(env: Envelope) -> list[NormalizedEvent]:
    detail = env.detail
    rid = text_field(detail.get("resourceId"), 512)
    rtype = type_of_cfn(text_field(detail.get("resourceType"), 128))
    if not rid:
        raise InvalidEvent(
            "missing_field", f"{COMPLIANCE_CHANGE}: field 'detail.resourceId' is missing"
        )
    new = _compliance(detail, "newEvaluationResult")
    details: dict[str, Any] = {
        "rule": text_field(detail.get("configRuleName"), 256),
        "compliance": new,
        "previous_compliance": _compliance(detail, "oldEvaluationResult"),
        "config_resource_type": text_field(detail.get("resourceType"), 128),
    }
    if new == "COMPLIANT":
        details["resolves"] = True
    return [
        env.normalized(
            resource_type=rtype or "config",
            resource_id=clip(rid, 512),
            action=f"compliance:{new or 'UNKNOWN'}",
            details=details,
        )
    ]
