"""`ec2.revoke_ingress`'s pure parts: params, rule matching, the check."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from aiops_agent.actions.security_groups import (
    RevokeIngressParams,
    as_reported,
    interpret_rules,
    matching_rules,
    normalize_protocol,
)

GROUP: list[dict[str, Any]] = [
    {
        "IpProtocol": "tcp",
        "FromPort": 22,
        "ToPort": 22,
        "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "oops"}, {"CidrIp": "10.0.0.0/8"}],
        "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
    },
    {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8100, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
    {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": []},
    {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
]


def _rule(**kw: Any) -> RevokeIngressParams:
    base: dict[str, Any] = {"group_id": "sg-0abc1234", "cidr": "0.0.0.0/0", "ip_protocol": "tcp"}
    return RevokeIngressParams.model_validate({**base, **kw})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("TCP", "tcp"),
        ("6", "tcp"),
        ("17", "udp"),
        ("1", "icmp"),
        ("58", "icmpv6"),
        ("all", "-1"),
        (-1, "-1"),
        ("50", "50"),
    ],
)
def test_normalize_protocol(value: str | int, expected: str) -> None:
    assert normalize_protocol(value) == expected


@pytest.mark.parametrize(
    "bad",
    [
        {"cidr": "everyone"},
        {"ip_protocol": "carrier-pigeon"},
        {"ip_protocol": "256"},
        {"from_port": 70000},
        {"group_id": "default"},
        {"extra": 1},
    ],
)
def test_params_refuse_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _rule(**bad)


def test_params_normalize_cidr_and_protocol() -> None:
    rule = _rule(cidr="0.0.0.0/0 ", ip_protocol="6")
    assert rule.cidr == "0.0.0.0/0" and rule.ip_protocol == "tcp" and not rule.ipv6
    assert _rule(cidr="::/0").ipv6
    assert _rule(cidr="10.1.2.3/8").cidr == "10.0.0.0/8"


def test_match_exactly_one_ipv4_rule_without_its_description() -> None:
    assert matching_rules(GROUP, _rule(from_port=22, to_port=22)) == [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    ]


def test_match_ipv6_uses_ipv6_ranges() -> None:
    assert matching_rules(GROUP, _rule(cidr="::/0", from_port=22, to_port=22)) == [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}
    ]


def test_match_without_ports_takes_every_range_of_the_protocol() -> None:
    found = matching_rules(GROUP, _rule())
    assert [(r["FromPort"], r["ToPort"]) for r in found] == [(22, 22), (8000, 8100)]


def test_match_all_protocols_rule_has_no_ports() -> None:
    assert matching_rules(GROUP, _rule(ip_protocol="-1")) == [
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    ]


@pytest.mark.parametrize("ports", [(-1, -1), (0, 0), (0, 65535)])
def test_match_all_traffic_ignores_the_ports_cloudtrail_recorded(ports: tuple[int, int]) -> None:
    rule = _rule(ip_protocol="-1", from_port=ports[0], to_port=ports[1])
    assert matching_rules(GROUP, rule) == [
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    ]


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        (
            {"ip_protocol": "-1", "from_port": -1, "to_port": -1},
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        ),
        (
            {"from_port": 22, "to_port": 22, "cidr": "::/0"},
            {
                "IpProtocol": "tcp",
                "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
                "FromPort": 22,
                "ToPort": 22,
            },
        ),
        ({}, None),  # tcp without ports is not one exact rule
    ],
)
def test_as_reported(kw: dict[str, Any], expected: dict[str, Any] | None) -> None:
    assert as_reported(_rule(**kw)) == expected


@pytest.mark.parametrize(
    "rule",
    [
        {"from_port": 23, "to_port": 23},
        {"cidr": "10.0.0.0/16", "from_port": 22, "to_port": 22},
        {"ip_protocol": "icmp"},
        {"cidr": "::/0", "from_port": 8000, "to_port": 8100},
    ],
)
def test_no_match(rule: dict[str, Any]) -> None:
    assert matching_rules(GROUP, _rule(**rule)) == []


@pytest.mark.parametrize(
    ("exists", "remaining", "status", "actual"),
    [
        (True, [], "PASSED", "absent"),
        (True, [{"IpProtocol": "tcp"}], "FAILED", "present"),
        (False, [], "PASSED", "group-gone"),
    ],
)
def test_interpret_rules(
    exists: bool, remaining: list[dict[str, Any]], status: str, actual: str
) -> None:
    outcome = interpret_rules(exists, remaining, "tcp 22-22 from 0.0.0.0/0")
    assert outcome.status == status
    assert outcome.checks[0]["actual"] == actual
    assert outcome.checks[0]["expected"] == "absent"
