"""The shapes AWS really sends, read as AWS means them (issue 14): detail in a string, ids in
ARNs or with prefixes, findings in either key case, Insights records, kinds without a rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aiops_agent.intake.envelope import InvalidEvent, parse_event
from aiops_agent.intake.generic import label_of_score, type_of_cfn


def envelope(source: str, detail_type: str, detail: Any, **extra: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "e-1",
        "detail-type": detail_type,
        "source": source,
        "time": "2026-11-25T10:00:00Z",
        "region": "eu-west-1",
        "resources": extra.pop("resources", []),
        "detail": detail,
        **extra,
    }


def test_detail_as_a_json_string_is_read() -> None:
    body = envelope(
        "aws.ec2",
        "EC2 Spot Instance Interruption Warning",
        json.dumps({"instance-id": "i-0abc1234", "instance-action": "stop"}),
    )
    (event,) = parse_event(body)
    assert (event.resource_id, event.details["instance_action"]) == ("i-0abc1234", "stop")


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", "42"])
def test_detail_a_string_that_is_no_object_is_refused(raw: str) -> None:
    with pytest.raises(InvalidEvent) as err:
        parse_event(envelope("aws.ec2", "EBS Volume Notification", raw))
    assert err.value.reason == "invalid_field"


def test_rds_identifier_without_an_arn_loses_the_samples_prefix_but_a_snapshot_keeps_it() -> None:
    instance = {"SourceIdentifier": "rds:orders", "SourceType": "DB_INSTANCE", "EventID": "X"}
    snapshot = {"SourceIdentifier": "rds:orders-2026-11-25", "SourceType": "SNAPSHOT"}
    (a,) = parse_event(envelope("aws.rds", "RDS DB Instance Event", instance))
    (b,) = parse_event(envelope("aws.rds", "RDS DB Snapshot Event", snapshot))
    assert (a.resource_id, b.resource_id) == ("orders", "rds:orders-2026-11-25")


def test_a_guardduty_finding_names_its_resource_in_either_key_case() -> None:
    camel = {
        "id": "f1",
        "severity": 8,
        "type": "T",
        "resource": {"instanceDetails": {"instanceId": "i-0abc1234"}},
    }
    pascal = {
        "Id": "f1",
        "Severity": 8,
        "Type": "T",
        "Resource": {"InstanceDetails": {"InstanceId": "i-0abc1234"}},
    }
    for detail in (camel, pascal):
        (event,) = parse_event(envelope("aws.guardduty", "GuardDuty Finding", detail))
        assert (event.resource_type, event.resource_id) == ("ec2", "i-0abc1234")
        assert event.details["severity_label"] == "HIGH"


def test_security_hub_gives_one_event_per_finding() -> None:
    findings = [
        {"Id": "a", "Severity": {"Label": "CRITICAL"}, "Resources": [{"Id": "arn:aws:s3:::b1"}]},
        {
            "Id": "b",
            "Severity": {"Normalized": 0},
            "Resources": [{"Type": "AwsEc2Instance", "Id": "i-0abc1234"}],
        },
    ]
    events = parse_event(
        envelope("aws.securityhub", "Security Hub Findings - Imported", {"findings": findings})
    )
    assert [(e.resource_type, e.resource_id, e.details["severity_label"]) for e in events] == [
        ("s3", "b1", "CRITICAL"),
        ("ec2", "i-0abc1234", "INFORMATIONAL"),
    ]


def test_a_bare_insights_record_is_an_event() -> None:
    record = {
        "eventVersion": "1.08",
        "eventTime": "2026-11-25 10:00:00",
        "awsRegion": "eu-west-1",
        "eventID": "ins-1",
        "eventType": "AwsCloudTrailInsight",
        "eventCategory": "Insight",
        "insightDetails": {
            "state": "Start",
            "eventSource": "iam.amazonaws.com",
            "eventName": "CreateAccessKey",
            "insightType": "ApiErrorRateInsight",
            "errorCode": "AccessDenied",
        },
    }
    (event,) = parse_event(record)
    assert (event.resource_type, event.resource_id, event.action) == (
        "iam",
        "CreateAccessKey",
        "insight:start",
    )
    assert event.details["error_code"] == "AccessDenied"


def test_an_aws_kind_without_a_rule_takes_its_resource_from_the_detail() -> None:
    detail = {"AutoScalingGroupName": "web", "InstanceRefreshId": "r-1"}
    (event,) = parse_event(
        envelope("aws.autoscaling", "EC2 Auto Scaling Instance Refresh Failed", detail)
    )
    assert (event.resource_type, event.resource_id) == ("autoscaling", "web")
    assert event.details["generic"] is True and event.details["signal"] == {"outcome": "failed"}


def test_an_aws_kind_naming_nothing_is_about_itself_and_never_planned() -> None:
    (event,) = parse_event(
        envelope("aws.backup", "Backup Job State Change", {"state": "COMPLETED"})
    )
    assert (event.resource_type, event.resource_id) == ("backup", "e-1")
    assert event.details["resource_unknown"] is True


@pytest.mark.parametrize(
    ("score", "scale", "label"),
    [
        (0, 100, "INFORMATIONAL"),
        (15, 100, "LOW"),
        (71, 100, "HIGH"),
        (2, 10, "LOW"),
        (5.5, 10, "MEDIUM"),
        (9, 10, "CRITICAL"),
    ],
)
def test_finding_scores_map_to_labels(score: float, scale: int, label: str) -> None:
    assert label_of_score(score, scale=scale) == label


@pytest.mark.parametrize(
    ("cfn", "short"),
    [
        ("AWS::IAM::User", "iam"),
        ("AWS::EC2::Instance", "ec2"),
        ("AwsS3Bucket", "s3"),
        ("AWS::ElasticLoadBalancingV2::LoadBalancer", "elasticloadbalancing"),
        ("junk", ""),
    ],
)
def test_resource_type_names_become_arn_service_names(cfn: str, short: str) -> None:
    assert type_of_cfn(cfn) == short


def test_identity_keys_are_read_in_any_case_and_session_context_may_be_missing() -> None:
    record = {
        "eventVersion": "1.08",
        "eventTime": "2026-11-25 10:00:00.000000000",
        "eventSource": "kms.amazonaws.com",
        "eventName": "ScheduleKeyDeletion",
        "awsRegion": "eu-west-1",
        "userIdentity": {
            "Type": "AssumedRole",
            "Arn": "arn:aws:sts::123456789012:assumed-role/ops/alice",
            "SessionContext": {"SessionIssuer": {"Arn": "arn:aws:iam::123456789012:role/ops"}},
        },
        "requestParameters": {"keyId": "arn:aws:kms:eu-west-1:123456789012:key/k-1"},
    }
    (event,) = parse_event(record)
    assert (event.resource_type, event.resource_id) == ("kms", "k-1")
    assert event.principal == "arn:aws:sts::123456789012:assumed-role/ops/alice"
    assert event.principal_type == "AssumedRole"
    assert event.details["session_issuer"] == "arn:aws:iam::123456789012:role/ops"
    del record["userIdentity"]["SessionContext"]  # type: ignore[attr-defined]
    (bare,) = parse_event(record)
    assert bare.principal == event.principal and "session_issuer" not in bare.details
