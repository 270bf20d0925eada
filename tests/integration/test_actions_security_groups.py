"""`ec2.revoke_ingress` against the moto server: exactly the world-open rule goes, nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from aiops_agent.actions.registry import CATALOG, ActionDeps, BoundCatalog
from aiops_agent.aws.clients import AwsClients
from tests.aws_proxy import AwsProxy


def _action(aws: AwsClients) -> Any:
    return BoundCatalog(CATALOG, ActionDeps(clients=aws)).get("ec2.revoke_ingress")


async def _group(aws: AwsClients, unique: str, region: str | None = None) -> str:
    """A group with SSH open to the world (IPv4 and IPv6), SSH from 10/8 and HTTPS to the world."""
    ec2 = await aws.client("ec2", region=region)
    gid = str(
        (await ec2.create_security_group(GroupName=f"sg-{unique}", Description="t"))["GroupId"]
    )
    await ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}, {"CidrIp": "10.0.0.0/8"}],
                "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
            },
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            },
        ],
    )
    return gid


async def _rules(aws: AwsClients, gid: str, region: str | None = None) -> set[tuple[Any, ...]]:
    ec2 = await aws.client("ec2", region=region)
    group = (await ec2.describe_security_groups(GroupIds=[gid]))["SecurityGroups"][0]
    found: set[tuple[Any, ...]] = set()
    for perm in group["IpPermissions"]:
        key = (perm["IpProtocol"], perm.get("FromPort"), perm.get("ToPort"))
        found |= {(*key, r["CidrIp"]) for r in perm.get("IpRanges", [])}
        found |= {(*key, r["CidrIpv6"]) for r in perm.get("Ipv6Ranges", [])}
    return found


def _ssh(gid: str, cidr: str) -> dict[str, Any]:
    return {"group_id": gid, "cidr": cidr, "ip_protocol": "tcp", "from_port": 22, "to_port": 22}


async def test_revokes_exactly_the_world_open_rule(aws: AwsClients, unique: str) -> None:
    gid = await _group(aws, unique)
    action = _action(aws)
    params = _ssh(gid, "0.0.0.0/0")
    before = await action.verify(params, {})
    assert before.status == "FAILED"
    assert before.checks[0]["actual"] == "present"

    outcome = await action.execute(params, "tok")

    assert outcome.ok, outcome.detail
    assert outcome.result["revoked"] == 1
    assert await _rules(aws, gid) == {
        ("tcp", 22, 22, "10.0.0.0/8"),
        ("tcp", 22, 22, "::/0"),
        ("tcp", 443, 443, "0.0.0.0/0"),
    }
    check = await action.verify(params, outcome.result)
    assert check.status == "PASSED", check.detail
    assert check.checks[0]["actual"] == "absent"

    again = await action.execute(params, "tok")
    assert again.ok and again.result["revoked"] == 0 and "nothing to do" in again.detail
    assert len(await _rules(aws, gid)) == 3


async def test_ipv6_rule_is_revoked_from_ipv6_ranges(aws: AwsClients, unique: str) -> None:
    gid = await _group(aws, unique)
    action = _action(aws)
    params = {**_ssh(gid, "::/0"), "ip_protocol": "6"}  # protocol number as CloudTrail may say

    outcome = await action.execute(params, "tok")

    assert outcome.ok and outcome.result["revoked"] == 1
    assert ("tcp", 22, 22, "::/0") not in await _rules(aws, gid)
    assert ("tcp", 22, 22, "0.0.0.0/0") in await _rules(aws, gid)
    assert (await action.verify(params, outcome.result)).status == "PASSED"


async def test_all_protocols_rule_and_region(aws: AwsClients, unique: str) -> None:
    gid = await _group(aws, unique, region="eu-west-1")
    ec2 = await aws.client("ec2", region="eu-west-1")
    await ec2.authorize_security_group_ingress(
        GroupId=gid, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    action = _action(aws)
    params = {"group_id": gid, "region": "eu-west-1", "cidr": "0.0.0.0/0", "ip_protocol": "-1"}

    outcome = await action.execute(params, "tok")

    assert outcome.ok and outcome.result["revoked"] == 1
    rules = await _rules(aws, gid, region="eu-west-1")
    assert not any(r[0] == "-1" for r in rules)
    assert ("tcp", 443, 443, "0.0.0.0/0") in rules  # other world-open rules are not this one
    assert (await action.verify(params, outcome.result)).status == "PASSED"


async def test_missing_group_is_a_no_op(aws: AwsClients) -> None:
    action = _action(aws)
    params = _ssh("sg-0123456789abcdef0", "0.0.0.0/0")
    outcome = await action.execute(params, "tok")
    assert outcome.ok and outcome.result["group_exists"] is False
    check = await action.verify(params, outcome.result)
    assert check.status == "PASSED"
    assert check.checks[0]["actual"] == "group-gone"


async def test_dry_run_names_rule_and_group(aws: AwsClients) -> None:
    text = await _action(aws).dry_run(_ssh("sg-0123456789abcdef0", "0.0.0.0/0"))
    assert (
        text
        == "would revoke ingress tcp 22-22 from 0.0.0.0/0 on security group sg-0123456789abcdef0"
    )


async def _all_traffic_group(ec2: Any, unique: str) -> str:
    """A group with all traffic (IpProtocol -1) open to the world, and HTTPS open as well."""
    gid = str(
        (await ec2.create_security_group(GroupName=f"all-{unique}", Description="t"))["GroupId"]
    )
    await ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            },
        ],
    )
    return gid


@pytest.mark.parametrize(
    "ports", [(-1, -1), (0, 0), (None, None)], ids=["minus-one", "zero", "none"]
)
async def test_all_traffic_rule_is_revoked_whatever_ports_cloudtrail_recorded(
    aws: AwsClients, unique: str, ports: tuple[int | None, int | None]
) -> None:
    """CloudTrail records the ports the caller sent (-1/-1, 0/0); DescribeSecurityGroups has
    none for protocol -1. Each form must close the rule, and verify must see it closed."""
    ec2 = await aws.client("ec2")
    gid = await _all_traffic_group(ec2, unique)
    action = _action(aws)
    params = {"group_id": gid, "cidr": "0.0.0.0/0", "ip_protocol": "-1"}
    params |= {k: v for k, v in zip(("from_port", "to_port"), ports, strict=True) if v is not None}
    assert (await action.verify(params, {})).status == "FAILED"  # open: verify sees it

    outcome = await action.execute(params, "tok")

    assert outcome.ok and outcome.result["revoked"] == 1, outcome.detail
    assert "nothing to do" not in outcome.detail
    assert await _rules(aws, gid) == {("tcp", 443, 443, "0.0.0.0/0")}
    assert (await action.verify(params, outcome.result)).status == "PASSED"


async def test_a_stale_read_does_not_make_an_open_rule_nothing_to_do(
    aws: AwsClients, moto_endpoint: str, unique: str
) -> None:
    """EC2 reads are eventually consistent: right after the rule is opened, DescribeSecurityGroups
    may not show it yet. Execute revokes the reported rule anyway instead of trusting the read."""
    async with (
        AwsProxy(moto_endpoint) as proxy,
        AwsClients(endpoint_url=proxy.url, max_attempts=1) as through,
    ):
        ec2 = await through.client("ec2")
        gid = str(
            (await ec2.create_security_group(GroupName=f"st-{unique}", Description="t"))["GroupId"]
        )
        action = _action(through)
        params = {"group_id": gid, "cidr": "0.0.0.0/0", "ip_protocol": "tcp"}
        params |= {"from_port": 22, "to_port": 22}
        stale = proxy.stale_reads(
            "DescribeSecurityGroups", after="AuthorizeSecurityGroupIngress", reads=1
        )
        await action.verify(params, {})  # the group as it was (remembered): no rule
        await ec2.authorize_security_group_ingress(
            GroupId=gid,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                }
            ],
        )

        outcome = await action.execute(params, "tok")

        assert stale.served == 1  # execute's read was stale
        assert outcome.ok and outcome.result["revoked"] == 1, outcome.detail
        assert await _rules(aws, gid) == set()
        assert (await action.verify(params, outcome.result)).status == "PASSED"
