"""Security groups: revoke an ingress rule that opened a group to the world.

`ec2.revoke_ingress` removes exactly the rule named by its params (protocol, port range, one
CIDR), found in the group as it is now; an IPv6 CIDR (`::/0`) is matched against `Ipv6Ranges`,
an IPv4 one against `IpRanges`. A rule that is already gone, or a group that no longer exists,
is a no-op that reports success: the exposure is closed either way. Without ports in the params
(CloudTrail always records them for TCP and UDP), every port range of that protocol open to the
CIDR is revoked, each one exactly as the group holds it.

An all-traffic rule (`IpProtocol -1`) has no ports: DescribeSecurityGroups omits FromPort/ToPort
for it, while CloudTrail records whatever the caller sent (`-1/-1`, `0/0`, or nothing), so its
ports are ignored. The read before the revoke is not trusted to be fresh (EC2 is eventually
consistent): when it shows no such rule, the rule as reported is revoked anyway, and only AWS's
answer (`InvalidPermission.NotFound`, or the rule listed in `UnknownIpPermissions`) makes it a
no-op. A revoke AWS answers with the rule unknown is not reported as done.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from aiops_agent.actions.registry import CATALOG, BaseAction, Region, error_code
from aiops_agent.domain.ports import CheckOutcome, StepOutcome

log = structlog.get_logger(__name__)

_GROUP_GONE = frozenset({"InvalidGroup.NotFound", "InvalidGroupId.Malformed"})
_PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "all": "-1"}


def normalize_protocol(value: str | int) -> str:
    """EC2's spelling of a protocol: `tcp`, `udp`, `icmp`, `icmpv6`, `-1`, or another number."""
    text = str(value).strip().lower()
    return _PROTOCOL_NAMES.get(text, text)


def normalize_cidr(value: str) -> str:
    return str(ipaddress.ip_network(value.strip(), strict=False))


class RevokeIngressParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    group_id: str = Field(pattern=r"^sg-[0-9a-f]{8,17}$", description="the security group")
    region: Region = None
    cidr: str = Field(description="the IPv4 or IPv6 range the rule opens, e.g. 0.0.0.0/0 or ::/0")
    ip_protocol: str = Field(description="tcp, udp, icmp, icmpv6, -1 (all) or a protocol number")
    from_port: int | None = Field(default=None, ge=-1, le=65535)
    to_port: int | None = Field(default=None, ge=-1, le=65535)

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            return normalize_cidr(value)
        except ValueError as exc:
            raise ValueError(f"not a CIDR range: {value!r}") from exc

    @field_validator("ip_protocol")
    @classmethod
    def _protocol(cls, value: str) -> str:
        text = normalize_protocol(value)
        if text not in ("tcp", "udp", "icmp", "icmpv6", "-1") and not (
            text.isdigit() and 0 <= int(text) <= 255
        ):
            raise ValueError(f"not an IP protocol: {value!r}")
        return text

    @property
    def ipv6(self) -> bool:
        return ipaddress.ip_network(self.cidr).version == 6


def matching_rules(
    permissions: Sequence[Mapping[str, Any]], rule: RevokeIngressParams
) -> list[dict[str, Any]]:
    """The group's rules (one CIDR each, in IpPermissions form) that `rule` names. Pure."""
    ranges_key, cidr_key = ("Ipv6Ranges", "CidrIpv6") if rule.ipv6 else ("IpRanges", "CidrIp")
    found: list[dict[str, Any]] = []
    any_port = rule.ip_protocol == "-1"  # all traffic: AWS reports no ports, CloudTrail any
    for perm in permissions:
        if normalize_protocol(perm.get("IpProtocol", "")) != rule.ip_protocol:
            continue
        if not any_port and rule.from_port is not None and perm.get("FromPort") != rule.from_port:
            continue
        if not any_port and rule.to_port is not None and perm.get("ToPort") != rule.to_port:
            continue
        for entry in perm.get(ranges_key, []):
            cidr = str(entry.get(cidr_key, ""))
            try:
                same = normalize_cidr(cidr) == rule.cidr
            except ValueError:
                continue
            if same:
                exact: dict[str, Any] = {
                    "IpProtocol": perm["IpProtocol"],
                    ranges_key: [{cidr_key: cidr}],
                }
                for key in ("FromPort", "ToPort"):
                    if key in perm:
                        exact[key] = perm[key]
                found.append(exact)
    return found


def as_reported(rule: RevokeIngressParams) -> dict[str, Any] | None:
    """The rule in IpPermissions form, as the event named it; None when that is not one exact
    rule (TCP or UDP without ports). Pure."""
    ranges_key, cidr_key = ("Ipv6Ranges", "CidrIpv6") if rule.ipv6 else ("IpRanges", "CidrIp")
    exact: dict[str, Any] = {"IpProtocol": rule.ip_protocol, ranges_key: [{cidr_key: rule.cidr}]}
    if rule.ip_protocol == "-1":
        return exact
    if rule.from_port is None or rule.to_port is None:
        return None if rule.ip_protocol in ("tcp", "udp") else exact
    return {**exact, "FromPort": rule.from_port, "ToPort": rule.to_port}


def describe_rule(rule: RevokeIngressParams) -> str:
    if rule.ip_protocol == "-1":
        return f"all traffic from {rule.cidr}"
    ports = ""
    if rule.from_port is not None or rule.to_port is not None:
        ports = f" {rule.from_port}-{rule.to_port}"
    return f"{rule.ip_protocol}{ports} from {rule.cidr}"


def interpret_rules(
    group_exists: bool, remaining: Sequence[Mapping[str, Any]], rule: str
) -> CheckOutcome:
    """Whether the rule is gone from the group: the revoke's post-condition. Pure."""
    actual = "group-gone" if not group_exists else "present" if remaining else "absent"
    checks = [{"check": "ingress_rule", "rule": rule, "expected": "absent", "actual": actual}]
    if not group_exists:
        return CheckOutcome("PASSED", f"group is gone, so is its ingress {rule}", checks)
    if remaining:
        return CheckOutcome("FAILED", f"ingress {rule} is still open", checks)
    return CheckOutcome("PASSED", f"ingress {rule} is closed", checks)


@CATALOG.register("ec2.revoke_ingress")
class RevokeIngress(BaseAction[RevokeIngressParams]):
    resource_types = ("ec2",)
    description = "Revoke a security group ingress rule that opened the group to the world."
    permissions = ("ec2:DescribeSecurityGroups", "ec2:RevokeSecurityGroupIngress")
    params_model = RevokeIngressParams

    async def _rules(self, ec2: Any, p: RevokeIngressParams) -> list[dict[str, Any]] | None:
        """The matching rules as the group holds them now; None if the group does not exist."""
        try:
            resp = await ec2.describe_security_groups(GroupIds=[p.group_id])
        except ClientError as exc:
            if error_code(exc) in _GROUP_GONE:
                return None
            raise
        groups = [g for g in resp.get("SecurityGroups", []) if g.get("GroupId") == p.group_id]
        if not groups:
            return None
        return matching_rules(groups[0].get("IpPermissions", []), p)

    async def execute(self, params: Mapping[str, Any], idempotency_token: str) -> StepOutcome:
        p = self.parse(params)
        ec2 = await self.deps.clients.client("ec2", region=p.region)
        rule = describe_rule(p)
        result: dict[str, Any] = {"group_id": p.group_id, "rule": rule, "revoked": 0}
        found = await self._rules(ec2, p)
        if found is None:
            result["group_exists"] = False
            return StepOutcome(True, f"group {p.group_id} does not exist; nothing to do", result)
        blind = False
        if not found:
            # The read may be stale (a rule opened a moment ago): revoke the rule as reported
            # and let AWS say whether it exists.
            reported = as_reported(p)
            if reported is None:
                return StepOutcome(
                    True, f"{p.group_id} has no ingress {rule}; nothing to do", result
                )
            found, blind = [reported], True
        try:
            resp = await ec2.revoke_security_group_ingress(GroupId=p.group_id, IpPermissions=found)
        except ClientError as exc:
            code = error_code(exc)
            if code == "InvalidPermission.NotFound":  # not there (or revoked meanwhile)
                detail = "no ingress" if blind else "ingress"
                suffix = "; nothing to do" if blind else " already revoked"
                return StepOutcome(True, f"{p.group_id} {detail} {rule}{suffix}", result)
            if code in _GROUP_GONE:
                return StepOutcome(True, f"group {p.group_id} no longer exists", result)
            raise
        unknown = resp.get("UnknownIpPermissions") or []
        result["revoked"] = len(found) - len(unknown)
        if unknown and blind:
            return StepOutcome(True, f"{p.group_id} has no ingress {rule}; nothing to do", result)
        if unknown or resp.get("Return") is False:
            # AWS did not remove what the group was read to hold: not done.
            return StepOutcome(
                False,
                f"revoke of ingress {rule} on {p.group_id} left {len(unknown)} rule(s)",
                result,
            )
        log.info("ec2.ingress_revoked", group_id=p.group_id, rules=result["revoked"], blind=blind)
        return StepOutcome(True, f"revoked ingress {rule} on {p.group_id}", result)

    async def verify(self, params: Mapping[str, Any], result: Mapping[str, Any]) -> CheckOutcome:
        p = self.parse(params)
        ec2 = await self.deps.clients.client("ec2", region=p.region)
        remaining = await self._rules(ec2, p)
        return interpret_rules(remaining is not None, remaining or [], describe_rule(p))

    async def dry_run(self, params: Mapping[str, Any]) -> str:
        p = self.parse(params)
        return f"would revoke ingress {describe_rule(p)} on security group {p.group_id}"
