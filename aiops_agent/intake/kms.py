"""AWS KMS: its own key events (deletion, rotation, imported material expiry) and its calls.

A key is `kms` / its key id (`key-id` in the detail, the key ARN in `resources`; a call names it
by `keyId`, an ARN, an alias or a bare id). The calls that make a key unusable (DisableKey,
ScheduleKeyDeletion, ...) are judged alike: the data the key protects goes dark either way.
"""

from __future__ import annotations

from typing import Any

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.cloudtrail import CloudTrailCall, cloudtrail_normalizer, generic_call
from aiops_agent.intake.envelope import Envelope, InvalidEvent, text_field
from aiops_agent.intake.generic import from_resources
from aiops_agent.intake.registry import normalizer
from aiops_agent.intake.resources import arn_resource_id, id_from_resource_list

KMS_SOURCE = "aws.kms"
KMS_EVENT_SOURCE = "kms.amazonaws.com"
CMK_DELETION = "KMS CMK Deletion"
CMK_ROTATION = "KMS CMK Rotation"
MATERIAL_EXPIRATION = "KMS Imported Key Material Expiration"
DETAIL_TYPES = (CMK_DELETION, CMK_ROTATION, MATERIAL_EXPIRATION)
KEY_LOSS_CALLS = (
    "ScheduleKeyDeletion",
    "DisableKey",
    "DeleteImportedKeyMaterial",
    "DeleteKey",
)
KEY_CALLS = (
    *KEY_LOSS_CALLS,
    "CancelKeyDeletion",
    "EnableKey",
    "PutKeyPolicy",
    "DisableKeyRotation",
    "EnableKeyRotation",
    "CreateKey",
)


def key_id(raw: str) -> str:
    """`arn:aws:kms:...:key/1234` -> `1234`; aliases and bare ids as they are."""
    return arn_resource_id(raw) or raw if raw.startswith("arn:") else raw


def key_event(env: Envelope) -> list[NormalizedEvent]:
    raw = text_field(env.detail.get("key-id"), 512)
    if not raw:
        keys = [rid for rtype, rid in from_resources(env.resources) if rtype == "kms"]
        raw = keys[0] if keys else ""
    if not raw:
        raise InvalidEvent("missing_field", f"{env.detail_type}: field 'detail.key-id' is missing")
    return [env.normalized(resource_type="kms", resource_id=key_id(raw), action=env.detail_type)]


@cloudtrail_normalizer(KMS_EVENT_SOURCE, *KEY_CALLS)
def key_call(call: CloudTrailCall) -> list[NormalizedEvent]:
    response = call.response
    raw = (
        text_field(call.request.get("keyId"), 512)
        or text_field(response.get("keyId"), 512)
        or (id_from_resource_list(call.record.resources) or "")
    )
    if not raw:
        return [e.model_copy(update={"resource_type": "kms"}) for e in generic_call(call)]
    details: dict[str, Any] = {}
    for key in ("pendingWindowInDays", "keyState", "deletionDate"):
        value = call.request.get(key, response.get(key))
        if isinstance(value, int | str) and not isinstance(value, bool) and str(value):
            details[key] = value if isinstance(value, int) else text_field(value, 64)
    return [call.event(resource_type="kms", resource_id=key_id(raw), details=details)]


for _detail_type in DETAIL_TYPES:
    normalizer(KMS_SOURCE, _detail_type)(key_event)
