"""Best-effort resource ids from request parameters, ARNs and resource lists; payload trimming.

Used by the generic normalizers, which must produce an event for any payload without knowing
its service. Specific normalizers (ec2.py, ...) know exactly where their ids live.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiops_agent.intake.envelope import clip

# Request-parameter keys that name the resource a call is about, most specific first
# (compared lower-case).
_ID_KEYS = (
    "instanceid",
    "functionname",
    "tablename",
    "bucketname",
    "dbinstanceidentifier",
    "dbclusteridentifier",
    "autoscalinggroupname",
    "alarmname",
    "rolename",
    "username",
    "groupname",
    "groupid",
    "clustername",
    "servicename",
    "name",
    "resourcearn",
    "arn",
)
_ID_SUFFIXES = ("id", "name", "identifier", "arn")
_NOT_IDS = frozenset(
    {
        "requestid",
        "accountid",
        "ownerid",
        "requesterid",
        "principalid",
        "accesskeyid",
        "sessionid",
        "clienttoken",
        "keyname",
        "imageid",
        "vpcid",
        "subnetid",
    }
)
_SECRET_MARKERS = ("value", "password", "secret", "token", "privatekey", "userdata", "content")
_MAX_SEARCH_DEPTH = 3


def arn_resource_id(arn: str) -> str | None:
    """The name users use for an ARN's resource (`arn:aws:lambda:...:function:f` -> `f`)."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn" or not parts[5]:
        return None
    service, resource = parts[2], parts[5]
    if service == "s3":
        return resource.split("/", 1)[0] or None
    if service == "autoscaling" and "autoScalingGroupName/" in resource:
        return resource.rsplit("autoScalingGroupName/", 1)[1] or None
    cut = [i for i in (resource.find("/"), resource.find(":")) if i > 0]
    if not cut:
        return resource
    rest = resource[min(cut) + 1 :]
    if service == "ssm" and "/" in rest:
        return "/" + rest  # a hierarchical parameter name starts with "/", the ARN drops it
    return rest or None


def _as_id(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.startswith("arn:"):
        text = arn_resource_id(text) or ""
    return clip(text, 512) or None


def _levels(root: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """The mapping and its nested mappings, breadth first, to a bounded depth."""
    level: list[Mapping[str, Any]] = [root]
    for _ in range(_MAX_SEARCH_DEPTH):
        yield from level
        nested: list[Mapping[str, Any]] = []
        for mapping in level:
            for value in mapping.values():
                if isinstance(value, Mapping):
                    nested.append(value)
                elif isinstance(value, list):
                    nested.extend(item for item in value[:10] if isinstance(item, Mapping))
        level = nested
        if not level:
            return


def id_from_parameters(params: Mapping[str, Any], *, by_suffix: bool = True) -> str | None:
    for mapping in _levels(params):
        lowered = {str(key).lower(): value for key, value in mapping.items()}
        for key in _ID_KEYS:
            found = _as_id(lowered.get(key))
            if found:
                return found
    if not by_suffix:
        return None
    for mapping in _levels(params):
        for key, value in mapping.items():
            name = str(key).lower()
            if name in _NOT_IDS or not name.endswith(_ID_SUFFIXES):
                continue
            found = _as_id(value)
            if found:
                return found
    return None


def id_from_resource_list(resources: Sequence[Any] | None) -> str | None:
    """From CloudTrail's `resources` ([{"ARN": ...}]) or an envelope's (["arn:...", "i-..."])."""
    for item in resources or ():
        if isinstance(item, Mapping):
            arn = item.get("ARN") or item.get("arn")
            found = _as_id(arn)
        elif isinstance(item, str):
            found = _as_id(item) if item.startswith("arn:") else _as_id(item.split(" ", 1)[0])
        else:
            found = None
        if found:
            return found
    return None


def find_resource_id(
    request: Mapping[str, Any],
    record_resources: Sequence[Any] | None,
    response: Mapping[str, Any],
    envelope_resources: Sequence[str],
) -> str | None:
    """The first plausible id: request, then the record's resources, the response, the envelope."""
    return (
        id_from_parameters(request)
        or id_from_resource_list(record_resources)
        or id_from_parameters(response, by_suffix=False)
        or id_from_resource_list(envelope_resources)
    )


def _secret(key: str) -> bool:
    lowered = key.lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


def trim(value: Any, depth: int = 4, *, max_items: int = 10, max_text: int = 256) -> Any:
    """A small, JSON-safe copy for `details`: bounded depth, lengths, sizes; secrets redacted."""
    if isinstance(value, Mapping):
        if depth <= 0:
            return "…"
        out: dict[str, Any] = {}
        for index, (key, item) in enumerate(value.items()):
            if index >= 2 * max_items:
                out["…"] = f"{len(value) - index} more keys"
                break
            name = clip(key, 64)
            out[name] = "<redacted>" if _secret(name) else trim(item, depth - 1)
        return out
    if isinstance(value, list | tuple):
        if depth <= 0:
            return "…"
        items = [trim(item, depth - 1) for item in value[:max_items]]
        if len(value) > max_items:
            items.append(f"… {len(value) - max_items} more")
        return items
    if value is None or isinstance(value, bool | int | float):
        return value
    return clip(value, max_text)
