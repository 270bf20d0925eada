"""Security group ingress calls: which rules of an `AuthorizeSecurityGroupIngress` open the world.

The resource is the group (`ec2`, its `sg-` id). `details["world_open_rules"]` lists every
permission the call added for `0.0.0.0/0` or `::/0` (any prefix of length zero), each as
`{cidr, ip_protocol, from_port?, to_port?}`: exactly what revoking it takes. CloudTrail writes
permissions as `ipPermissions.items[]` with `ipRanges.items[].cidrIp` and
`ipv6Ranges.items[].cidrIpv6`; the legacy form puts `cidrIp`, `ipProtocol` and the ports at the
top of the request. A call that names the group only by `groupName` (default VPC) takes the id
from the response's `securityGroupRuleSet`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.cloudtrail import CloudTrailCall, cloudtrail_normalizer, generic_call
from aiops_agent.intake.ec2 import EC2_EVENT_SOURCE
from aiops_agent.intake.envelope import text_field

INGRESS_CALLS = ("AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress")
MAX_RULES = 50

_GROUP_ID = re.compile(r"^sg-[0-9A-Za-z]{1,32}$")


def _items(container: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    wrapper = container.get(key)
    items = wrapper.get("items") if isinstance(wrapper, Mapping) else wrapper
    if not isinstance(items, list):
        return []
    return [item for item in items[:MAX_RULES] if isinstance(item, Mapping)]


def world_open(cidr: str) -> bool:
    """`0.0.0.0/0`, `::/0` and their spellings: a prefix of length zero."""
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


def _port(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _rule(cidr: str, permission: Mapping[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "cidr": cidr,
        "ip_protocol": text_field(permission.get("ipProtocol"), 16) or "-1",
    }
    for key, name in (("fromPort", "from_port"), ("toPort", "to_port")):
        port = _port(permission.get(key))
        if port is not None:
            rule[name] = port
    return rule


def open_rules(request: Mapping[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    """(how many CIDR rules the call carries, the world-open ones)."""
    cidrs: list[tuple[str, Mapping[str, Any]]] = []
    for permission in _items(request, "ipPermissions"):
        for item in _items(permission, "ipRanges"):
            cidrs.append((text_field(item.get("cidrIp"), 64), permission))
        for item in _items(permission, "ipv6Ranges"):
            cidrs.append((text_field(item.get("cidrIpv6"), 64), permission))
    legacy = text_field(request.get("cidrIp"), 64)
    if legacy:
        cidrs.append((legacy, request))
    cidrs = [(cidr, permission) for cidr, permission in cidrs if cidr]
    found: list[dict[str, Any]] = []
    for cidr, permission in cidrs:
        rule = _rule(cidr, permission)
        if world_open(cidr) and rule not in found:
            found.append(rule)
    return len(cidrs), found


def _group_id(call: CloudTrailCall) -> str | None:
    given = text_field(call.request.get("groupId"), 64)
    if _GROUP_ID.match(given):
        return given
    for item in _items(call.response, "securityGroupRuleSet"):
        from_response = text_field(item.get("groupId"), 64)
        if _GROUP_ID.match(from_response):
            return from_response
    return None


@cloudtrail_normalizer(EC2_EVENT_SOURCE, *INGRESS_CALLS)
def ingress_call(call: CloudTrailCall) -> list[NormalizedEvent]:
    group_id = _group_id(call)
    if group_id is None:
        return generic_call(call)
    count, world = open_rules(call.request)
    details: dict[str, Any] = {"rules_in_call": count, "world_open_rules": world}
    group_name = text_field(call.request.get("groupName"), 256)
    if group_name:
        details["group_name"] = group_name
    return [call.event(resource_type="ec2", resource_id=group_id, details=details)]
